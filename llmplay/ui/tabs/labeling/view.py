"""Pure formatting for the Labeling tab: an item as Markdown, the answer choices of a queue, the progress line,
the labeler's history table and the keyboard shortcut list. No gradio here, so it is tested without a server."""

from __future__ import annotations

import json
import re
from typing import Any

from llmplay.feedback.store import Item, Progress, Queue, Response

PREFERENCE_CHOICES = [("A is better", "a"), ("B is better", "b"), ("Tie", "tie")]
HISTORY_HEADERS = ["item", "status", "answer", "comment", "updated"]
SHORTCUTS = [
    ("1-9", "pick the n-th label / rating / preference and submit it"),
    ("Enter", "submit (outside a text field)"),
    ("Ctrl+Enter", "submit from inside a text field (the correction editor, comment, tags)"),
    ("Ctrl+S", "save a draft"),
    ("←", "previous item in your history"),
    ("→", "next item in your history; on a new item: skip it"),
]


def fence(text: str, info: str = "text") -> str:
    """``text`` in a fenced code block longer than any backtick run inside it, so it shows exactly as stored
    (model output may hold Markdown or HTML; a fence keeps both inert)."""
    longest = max((len(m) for m in re.findall(r"`+", text or "")), default=0)
    bar = "`" * max(3, longest + 1)
    return f"{bar}{info}\n{text or ''}\n{bar}"


def prompt_markdown(prompt: Any) -> str:
    """A text prompt as one block; chat messages as one block per turn under the speaker's role."""
    if isinstance(prompt, str):
        return fence(prompt)
    parts = []
    for message in prompt or []:
        content = message.get("content", "")
        if not isinstance(content, str):  # multi-part content: show it as stored
            content = json.dumps(content, ensure_ascii=False, indent=1)
        parts.append(f"*{message.get('role', '?')}*\n\n{fence(content)}")
    return "\n\n".join(parts)


def input_markdown(values: dict) -> str:
    if not values:
        return ""
    lines = []
    for name, value in values.items():
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        lines.append(f"**{name}**\n\n{fence(text)}")
    return "\n\n".join(lines)


def last_user_turn(prompt: Any) -> str | None:
    """What was asked: the last user message of a chat prompt (None for a text prompt: it is all context)."""
    if isinstance(prompt, str):
        return None
    turns = [m.get("content") for m in prompt or [] if isinstance(m, dict) and m.get("role") == "user"]
    return turns[-1] if turns and isinstance(turns[-1], str) else None


def prompt_section(item: Item) -> str:
    """The whole rendered prompt (system message, few-shot turns...), shown behind a toggle under the controls."""
    return prompt_markdown(item.prompt)


def item_markdown(item: Item, queue: Queue, *, response: Response | None = None) -> str:
    """What the labeler judges, first: the input variables (or, without any, the last question asked), the
    output(s), the reference when the queue shows it, and where it came from. The rendered prompt, often
    hundreds of tokens, is ``prompt_section``, behind a toggle. ``response``: an answer of theirs being edited."""
    head = f"#### Item {item.id} · {queue.task}"
    if response is not None:
        head += f" · your answer: **{value_text(response.value, queue.task)}** ({response.status})"
    parts = [head]
    if item.input:
        parts.append("##### Input\n\n" + input_markdown(item.input))
    elif (asked := last_user_turn(item.prompt)) is not None:
        parts.append("##### Asked\n\n" + fence(asked))
    if queue.task == "preference":
        parts.append("##### Output A\n\n" + fence(item.output or ""))
        parts.append("##### Output B\n\n" + fence(item.output_b or ""))
    elif item.output is not None:
        parts.append("##### Output\n\n" + fence(item.output))
    if queue.show_reference and item.reference is not None:
        parts.append("##### Reference\n\n" + fence(item.reference))
    origin = [f"source `{item.source}`"]
    if item.template:
        origin.append(f"template `{item.template}`")
    if item.model:
        origin.append(f"model `{item.model}`" + (f" + `{item.adapter}`" if item.adapter else ""))
    parts.append("<small>" + " · ".join(origin) + "</small>")
    return "\n\n".join(parts)


def choices(queue: Queue) -> list[tuple[str, str]]:
    """(button text, stored value) of a queue's one-click answers; none for corrections."""
    if queue.task == "rating":
        return [(str(n), str(n)) for n in range(queue.rating_min, queue.rating_max + 1)]
    if queue.task == "label":
        return [(label, label) for label in queue.labels]
    if queue.task == "preference":
        return list(PREFERENCE_CHOICES)
    return []


def value_text(value: Any, task: str) -> str:
    """A stored response value as a short text for tables."""
    if value is None:
        return ""
    if task == "preference":
        return {"a": "A", "b": "B", "tie": "tie"}.get(str(value), str(value))
    text = str(value).replace("\n", " ")
    return text if len(text) <= 80 else text[:79] + "…"


def progress_text(progress: Progress, queue: Queue) -> str:
    """'12 of 50 done' for this labeler, and the queue's own state (items complete with k answers)."""
    if not progress.total:
        return f"**{queue.name}**: the queue is empty."
    line = f"**{progress.text}** in {queue.name}"
    extra = f"{progress.complete} of {progress.total} items complete ({queue.k} answer(s) each)"
    if progress.drafts:
        extra += f" · {progress.drafts} draft(s) of yours"
    return f"{line} · {extra}"


def history_rows(entries: list[tuple[Item, Response]]) -> list[list]:
    """The labeler's own answers, newest first: item id, status, answer, comment, time."""
    return [
        [
            item.id,
            response.status,
            value_text(response.value, response.kind),
            (response.comment or "")[:60],
            (response.updated_at or response.created_at or "")[:19].replace("T", " "),
        ]
        for item, response in entries
    ]


def shortcuts_markdown() -> str:
    keys = " · ".join(f"<kbd>{key}</kbd> {what}" for key, what in SHORTCUTS)
    return f"<small>**Keyboard:** {keys}</small>"


def parse_labels(text: str) -> list[str]:
    """A comma-separated label list from the queue form."""
    return [label.strip() for label in (text or "").split(",") if label.strip()]
