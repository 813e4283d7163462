"""The Playground's turns, apart from its layout: the stats note each reply carries, Stop as a request the reply
honours (so it ends with the partial reply and its stats), and where retry, undo and edit cut the history.

A reply's stats travel in the chat as a *note*: an assistant message with no text and ``metadata.title`` (the
stats), just before the reply it describes. The Chatbot shows it as a small line above the reply, so every
reply keeps its own figures; the model never sees it (empty messages are not sent), and the reply stays the
history's last message for API callers. No gradio here: plain values, tested without a server.
"""

from __future__ import annotations

import threading
import time

from llmplay.engine import GenerationResult
from llmplay.errors import InvalidRequestError, short
from llmplay.ui.decoding import decode_rate, speed_parts

PENDING = "✍️ writing…"


def content_text(content) -> str:
    """The text of a chat message's content, in any of Gradio's shapes (str, part dict, list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return (content.get("text") or "") if content.get("type", "text") == "text" else ""
    if isinstance(content, list | tuple):
        return "".join(content_text(part) for part in content)
    return ""  # files and components carry no text for the model


def reply_at(history: list[dict], index) -> tuple[int, str]:
    """(index, text) of the assistant message ``history[index]`` (None: the last one), or a clear error. A
    reply's stats note stands for the reply after it."""
    if index is None or index == "":
        replies = (i for i in range(len(history) - 1, -1, -1) if history[i].get("role") == "assistant")
        index = next((i for i in replies if not is_note(history[i])), None)
        if index is None:
            raise InvalidRequestError("There is no reply yet: send a message first.")
    if isinstance(index, list | tuple):  # Gradio's (row, column) shape for two-dimensional chats
        index = index[0]
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(history):
        raise InvalidRequestError(f"There is no message {short(index, 40)} in this chat.")
    index = reply_index(history, index)
    if history[index].get("role") != "assistant":
        raise InvalidRequestError("Only the model's replies can be rated or corrected.")
    return index, content_text(history[index].get("content"))


def note(title: str, done: bool = True) -> dict:
    """The stats note put before a reply (``done`` False: still writing, with Gradio's spinner)."""
    return {"role": "assistant", "content": "", "metadata": {"title": title, "status": "done" if done else "pending"}}


def is_note(message) -> bool:
    if not isinstance(message, dict) or message.get("role") != "assistant":
        return False
    title = (message.get("metadata") or {}).get("title")
    content = message.get("content")
    empty = not content or (isinstance(content, list | tuple) and not any(_text(part) for part in content))
    return bool(title) and empty


def _text(part) -> str:
    return part if isinstance(part, str) else (part.get("text") or "") if isinstance(part, dict) else ""


def without_notes(history: list[dict]) -> list[dict]:
    return [m for m in history or [] if not is_note(m)]


def reply_index(history: list[dict], index):
    """The reply a click or a caller means: a note stands for the reply after it (the Chatbot reports the first
    message of a reply's group, which is its note)."""
    at = index[0] if isinstance(index, list | tuple) else index
    if isinstance(at, int) and not isinstance(at, bool) and 0 <= at < len(history) - 1 and is_note(history[at]):
        return at + 1
    return index


def stats_line(result: GenerationResult) -> str:
    """A reply's stats in one plain line (the note's title: no Markdown there)."""
    rate = decode_rate(result.completion_tokens, result.latency_s, result.time_to_first_token_s)
    parts = [f"{rate:.1f} tokens/s" if rate is not None else "tokens/s n/a"]
    if result.time_to_first_token_s is not None:
        parts.append(f"first token {result.time_to_first_token_s:.2f} s")
    parts.append(f"{result.completion_tokens} tokens in {result.latency_s:.2f} s")
    if result.backend:
        parts.insert(0, result.backend)
    finish = {"length": "hit max new tokens", "stopped": "stopped"}.get(result.finish_reason, result.finish_reason)
    return ("⏹️ " if result.finish_reason == "stopped" else "✅ ") + " · ".join(parts) + f" · {finish}"


def stopped_status(result: GenerationResult) -> str:
    """The status line of a reply Stop ended: the partial reply's own figures."""
    if not result.text:
        return "⏹️ Stopped before the first token."
    parts = speed_parts(result.completion_tokens, result.latency_s, result.time_to_first_token_s)
    parts.append(f"{result.completion_tokens} tokens in {result.latency_s:.2f} s")
    return "⏹️ Stopped · " + " · ".join(parts)


def cut_for_rerun(history: list[dict], index) -> tuple[list[dict], str]:
    """(the turns before the user message at ``index``, that message's text): what a retry, an edit or an
    undo of that message starts from."""
    at = index[0] if isinstance(index, list | tuple) else index
    if isinstance(at, bool) or not isinstance(at, int) or not 0 <= at < len(history or []):
        raise IndexError(at)
    content = history[at].get("content")
    parts = content if isinstance(content, list | tuple) else [content]
    return list(history[:at]), "".join(_text(p) for p in parts)


def kept_before(sent: dict | None, length: int) -> dict:
    """The session's stored-reply ids (index -> {"reply_id"}) of the replies still in a history cut to
    ``length`` messages: a retried or edited reply is a new stored reply, never the old one's id."""
    return {k: v for k, v in (sent or {}).items() if k.isdigit() and int(k) < length}


class PartialTimer:
    """What a reply cut short by Stop measured itself: the generation's start (after any model load), its first
    text and its end, so a stopped reply reports the same figures a finished one does."""

    def __init__(self):
        self.started = time.perf_counter()
        self.first: float | None = None

    def loading(self) -> None:
        """A model-load stage went by: generation starts after it (first token and speed leave the load out)."""
        self.started = time.perf_counter()

    def text(self) -> None:
        if self.first is None:
            self.first = time.perf_counter()

    def result(self, model: str, text: str, tokens: int) -> GenerationResult:
        now = time.perf_counter()
        first = self.first - self.started if self.first is not None else None
        return GenerationResult(
            text=text,
            completion_tokens=tokens,
            latency_s=now - self.started,
            finish_reason="stopped",
            model=model,
            time_to_first_token_s=first,
        )


class Stops:
    """Stop requests per browser session: Stop asks, the session's running reply checks between tokens and ends
    with what it has (Gradio's ``cancels`` would end it without a last update, so without its stats)."""

    def __init__(self):
        self._events: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def begin(self, session: str | None) -> threading.Event:
        event = threading.Event()
        if session:
            with self._lock:
                self._events[session] = event
        return event

    def end(self, session: str | None, event: threading.Event) -> None:
        with self._lock:
            if session and self._events.get(session) is event:
                del self._events[session]

    def stop(self, session: str | None) -> bool:
        """Ask the session's running reply to stop; False when none runs."""
        with self._lock:
            event = self._events.get(session or "")
        if event is None:
            return False
        event.set()
        return True
