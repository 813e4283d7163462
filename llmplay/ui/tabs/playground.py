"""The Playground tab: chat with one model, tune decoding, and watch the reply stream in.

API endpoints (gradio_client and scripts)
-----------------------------------------
``/chat`` streams updates ``(history, status)``. Inputs, in this order (or by these keyword names;
any left out take the UI defaults):

 1. ``message`` (str): the new user message.
 2. ``history`` (list): the conversation so far, as returned by the previous call; ``[]`` to start.
    Gradio's message format: ``{"role": "user" | "assistant", "content": [{"type": "text", "text": "..."}]}``.
 3. ``model`` (str): a catalog name, e.g. ``"smollm2-135m-instruct"``.
 4. ``system_message`` (str): ``""`` for none.
 5. ``max_new_tokens`` (int): 1 .. settings.max_new_tokens_limit.
 6. ``temperature`` (float): 0 = greedy.
 7. ``top_p`` (float), 8. ``top_k`` (int, 0 = off), 9. ``repetition_penalty`` (float).
10. ``seed`` (str | int): ``""`` = random.
    Ranges: llmplay/limits.py; a value outside its range is refused with an error naming it.
11. ``stop`` (str): stop strings separated by commas or newlines (``\\n`` stands for a newline).
12. ``dtype`` (str): ``""`` (the settings' default), ``"auto"`` (bf16 where the CPU has it), ``"float32"``
    or ``"bfloat16"`` (local models, transformers backend).
13. ``backend`` (str): ``""`` (the settings' default), ``"auto"``, ``"transformers"`` (the reference) or
    ``"fast/float16"`` / ``"fast/bfloat16"`` / ``"fast/float32"`` (llmplay/engine/backends.py).

``status`` is Markdown: the loading stages while a model loads for the first time, then the stats
(backend and precision, tokens/s, latency, time to first token, token counts, finish reason), or ``"⚠️ Error: ..."``, in
which case ``history`` comes back unchanged. tokens/s is the decoding speed after the first token (the time to the
first token is beside it). Each reply in ``history`` is preceded by its stats note: an assistant message with empty
content and ``metadata.title`` (llmplay/ui/tabs/chat_turns.py), which the model is never sent; the reply itself
stays the last message.

In the page, Stop ends the running reply with "⏹️ Stopped" and the partial reply's stats (the partial reply is
kept, like a finished one); the chat's own retry, undo and edit (of a user message) cut the history there, and
retry and edit make the reply again as a new stored reply.

``/add_model``: ``(name, source, location, kind, api_model, api_key_env) -> (model, message)``;
see models_panel.py.

Feedback on a reply (the 👍 / 👎 under it and "Correct this reply" do the same):
``/playground_rate``: ``(history, index, liked, model, system_message, user) -> str``: rate the assistant
message ``history[index]``: ``liked`` True (👍, rating 1) or False (👎, rating 0; the reply also waits in queue
``inbox`` for a correction) into queue ``playground-ratings``; None or ``""`` takes the rating back.
``/playground_correction``: ``(history, correction, model, system_message, user) -> str``: the answer the last
reply should have been, into ``inbox``. ``user`` ``""`` = anonymous. Both return ``"✅ ..."`` or
``"⚠️ Error: ..."``. Feedback is about replies the server produced: every finished reply is kept with the
caller it was made for (llmplay/chat_replies.py), and the rated reply must be one of the caller's (in the page,
by the id the session keeps; through the API, the one whose prompt, rebuilt from ``history``, ``model`` and
``system_message``, and text match). The prompt, reply and model recorded are the stored ones.

Chat models get the whole conversation as messages. A base model gets the message as raw text to
continue, unless there is history or a system message, which it then sees as a plain transcript.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from functools import partial

import gradio as gr

from llmplay.chat_replies import find_reply, load_reply, save_reply
from llmplay.engine import Engine, GenerationParams, GenerationRequest, GenerationResult, backends
from llmplay.errors import InvalidRequestError, LlmplayError, short
from llmplay.feedback.provenance import sender_for
from llmplay.feedback.sources import rate_reply, send_correction, sent_message
from llmplay.pacing import Pacer
from llmplay.services import Services
from llmplay.store import connect
from llmplay.ui import fields
from llmplay.ui.access import Guard, caller_of, declared
from llmplay.ui.common import ERROR, format_error
from llmplay.ui.decoding import BACKEND_CHOICES, UI_DTYPES, format_stats, parse_params
from llmplay.ui.models_panel import (
    build_add_model_panel,
    default_model,
    describe_model,
    generative_names,
    model_choices,
)
from llmplay.ui.queueing import GENERATION
from llmplay.ui.tabs.chat_turns import (
    PENDING,
    PartialTimer,
    Stops,
    content_text,
    cut_for_rerun,
    kept_before,
    note,
    reply_at,
    stats_line,
    stopped_status,
)

log = logging.getLogger(__name__)


# ---- plain helpers (no gradio state) --------------------------------------------------------------
ROLES = ("user", "assistant", "system")


def check_history(history) -> list[dict]:
    """The ``history`` input as a list of messages, or InvalidRequestError saying what is wrong with it.

    Gradio checks the chatbot's payload against its own model first, which lets any role through, and a script
    calling the handler directly is not checked at all: both deserve a message, not a traceback deeper down."""
    if history is None:
        return []
    if not isinstance(history, list | tuple):
        raise InvalidRequestError(
            "history must be a list of messages like {'role': 'user', 'content': 'Hi'}; "
            f"got {type(history).__name__}."
        )
    for i, msg in enumerate(history, 1):
        if not isinstance(msg, dict) or "role" not in msg or "content" not in msg:
            got = f"keys {', '.join(map(str, list(msg)[:5]))}" if isinstance(msg, dict) else type(msg).__name__
            raise InvalidRequestError(f"history message {i} must be a mapping with role and content; got {got}.")
        if msg["role"] not in ROLES:
            raise InvalidRequestError(
                f"history message {i} has role {short(msg['role'], 40)}; the roles are {', '.join(ROLES)}."
            )
        content = msg["content"]
        parts = content if isinstance(content, list | tuple) else [content]
        if not all(isinstance(part, str | dict) for part in parts):
            raise InvalidRequestError(
                f"history message {i}: content must be text or a list of parts like {{'type': 'text', 'text': ...}}."
            )
    return list(history)


def history_to_messages(history: list[dict] | None) -> list[dict]:
    turns = []
    for msg in history or []:
        text = content_text(msg.get("content"))
        if msg.get("role") in ("user", "assistant") and text:
            turns.append({"role": msg["role"], "content": text})
    return turns


def build_prompt(kind: str, message: str, history: list[dict] | None, system_message: str = "") -> str | list[dict]:
    turns = history_to_messages(history)
    system = (system_message or "").strip()
    if kind == "base" and not turns and not system:
        return message  # plain completion: the base model continues the text as typed
    head = [{"role": "system", "content": system}] if system else []
    return head + turns + [{"role": "user", "content": message}]


FEEDBACK_SOURCE = "playground"


def reply_prompt(kind: str, history: list[dict], index: int, system_message: str = "") -> str | list[dict]:
    """What the model was sent for the reply at ``index``: the turns before it, as ``build_prompt`` made them."""
    before = history[:index]
    last_user = next((i for i in range(len(before) - 1, -1, -1) if before[i].get("role") == "user"), None)
    if last_user is None:
        raise InvalidRequestError("This reply has no message before it to answer.")
    message = content_text(before[last_user].get("content"))
    return build_prompt(kind, message, before[:last_user], system_message)


# ---- handlers ---------------------------------------------------------------------------------------
class Playground:
    """The tab's handlers: plain values in, (history, status) updates out; exceptions never escape."""

    def __init__(self, engine: Engine):
        self.engine = engine
        self.stops = Stops()  # Stop asks the session's running reply to end with what it has

    # ---- feedback on a reply ------------------------------------------------------------------------
    def _stored_reply(self, db, history, index, model: str, system_message: str, sender, sent: dict | None):
        """The stored reply that ``history[index]`` shows (llmplay/chat_replies.py): by its id, which the page
        keeps per session, else (an API caller) the one made for ``sender`` with this prompt and text. What
        the client sends is only a pointer: the prompt, the reply and the model are the server's."""
        history = check_history(history)
        index, text = reply_at(history, index)
        kept = (sent or {}).get(str(index)) or {}
        if kept.get("reply_id") is not None:
            return index, load_reply(db, kept["reply_id"], sender)
        prompt = reply_prompt(self.engine.catalog.get(model or "").kind, history, index, system_message)
        return index, find_reply(db, sender, prompt, text)

    def rate(
        self,
        history: list[dict] | None,
        index: int | None,
        liked: bool | str | None,
        model: str = "",
        system_message: str = "",
        user: str = "",
        sent: dict | None = None,
    ) -> str:
        """👍 / 👎 (or taking it back) on the assistant message ``history[index]``; see the module docstring."""

        def send(db):
            sender = sender_for(self.engine.settings, user)
            at, reply = self._stored_reply(db, history, index, model, system_message, sender, sent)
            return rate_reply(db, reply.prompt, reply.output, liked, **_reply_fields(reply, at, sender))

        return self._feedback(send, taken_back="Rating taken back.")

    def correct(
        self,
        history: list[dict] | None,
        correction: str,
        model: str = "",
        system_message: str = "",
        user: str = "",
        sent: dict | None = None,
    ) -> str:
        """The answer the last reply should have been, into the feedback queue 'inbox'."""

        def send(db):
            if not (correction or "").strip():
                raise InvalidRequestError("Write the correct answer first; it is empty.")
            sender = sender_for(self.engine.settings, user)
            at, reply = self._stored_reply(db, history, None, model, system_message, sender, sent)
            return send_correction(db, reply.prompt, reply.output, correction, **_reply_fields(reply, at, sender))

        return self._feedback(send)

    def _feedback(self, send, taken_back: str = "") -> str:
        try:
            with connect(self.engine.settings.db_path) as db:
                result = send(db)
        except LlmplayError as exc:
            return format_error(str(exc))
        except Exception as exc:  # never let a handler fail: the app must keep serving
            log.exception("Playground feedback failed")
            return format_error(f"could not store it ({type(exc).__name__}: {exc}).")
        if result is None:
            return f"✅ {taken_back}"
        if result.kind == "rating" and result.response is not None and result.response.value == 0:
            return sent_message(result) + " The reply also waits in queue 'inbox' for a correction."
        return sent_message(result)

    def chat(
        self,
        message: str,
        history: list[dict] | None,
        model: str,
        system_message: str = "",
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        top_p: float = 1.0,
        top_k: int = 0,
        repetition_penalty: float = 1.0,
        seed: int | str | None = None,
        stop: str = "",
        dtype: str = "",
        backend: str = "",
        keep: Callable[[str, str | list[dict], str, int], None] | None = None,
        stop_event=None,
    ) -> Iterator[tuple[list[dict], str]]:
        """Stream a reply to ``message``; see the module docstring for the inputs. ``keep(model, prompt, reply,
        index)`` is called with each reply that ends without an error (or is stopped), before its last update.
        ``stop_event`` (a threading.Event): once set, the reply ends with the text so far and its stats."""
        try:
            history = check_history(history)
        except InvalidRequestError as exc:
            yield [], format_error(str(exc))  # nothing usable to give back
            return
        try:
            limits = (max_new_tokens, temperature, top_p, top_k, repetition_penalty, seed, stop)
            params = parse_params(*limits, settings=self.engine.settings)
            backend = backends.check_choice(backend) if backend else None
            run = (message, history, model, system_message, params, dtype, backend, keep, stop_event)
            yield from self._stream_reply(*run)
        except LlmplayError as exc:
            yield history, format_error(str(exc))
        except Exception as exc:  # never let a handler fail: the app must keep serving
            log.exception("Playground chat failed")
            yield history, format_error(f"something unexpected went wrong ({type(exc).__name__}: {exc}).")

    def _stream_reply(
        self,
        message: str,
        history: list[dict],
        model: str,
        system_message: str,
        params: GenerationParams,
        dtype: str,
        backend: str | None = None,
        keep=None,
        stop_event=None,
    ) -> Iterator[tuple[list[dict], str]]:
        if not (message or "").strip():
            raise InvalidRequestError("The message is empty: type a message first.")
        spec = self.engine.catalog.get(model or "")  # UnknownModelError lists the known names
        prompt = build_prompt(spec.kind, message, history, system_message)
        request = GenerationRequest.of(prompt, params)
        dtype = None if dtype in (None, "", self.engine.settings.dtype) else dtype
        # Validate (empty, too long, parameter ranges) before a possibly long first load.
        self.engine.provider(spec, dtype).check_request(request)  # the spec: one catalog lookup per message

        sent = history + [{"role": "user", "content": message}]
        writing = f"✍️ Generating with **{model}**…"
        yield sent, writing
        reply, stages, notes, load_started, load_s = "", [], [], None, None
        result: GenerationResult | None = None
        timer, pacer = PartialTimer(), Pacer()
        with closing(self.engine.stream(spec, request, dtype=dtype, backend=backend)) as events:
            for event in events:
                if stop_event is not None and stop_event.is_set():
                    break  # closing the stream stops decoding
                if event.status and event.status.startswith(backends.FALLBACK):
                    notes.append(event.status)  # why the fast path was not used: shown with the stats
                    continue
                if event.status:
                    load_started = load_started or time.perf_counter()
                    timer.loading()  # generation starts after the load's last stage
                    stages.append(event.status)
                    yield sent, "⏳ " + "  \n".join(stages)
                    continue
                if load_started and load_s is None:
                    load_s = time.perf_counter() - load_started
                if event.done:
                    result = event.result
                elif event.delta:
                    timer.text()
                    reply += event.delta
                    if pacer.due():  # not per token: the page would fall behind the stream (llmplay/pacing.py)
                        yield sent + [note(PENDING, done=False), {"role": "assistant", "content": reply}], writing
        if result is None and stop_event is not None and stop_event.is_set():
            result = timer.result(model, reply, self._count_tokens(spec, dtype, reply))
            status = stopped_status(result)
        elif result is None:
            raise LlmplayError(f"{model} ended the reply without a result; try again.")
        elif result.error:
            raise LlmplayError(result.error)
        else:
            status = format_stats(result, load_s, notes)
        if not result.text:  # stopped before the first token: nothing to keep or show
            yield sent, status
            return
        if keep is not None:
            keep(model, prompt, result.text, len(sent) + 1)  # the reply's index: after its stats note
        yield sent + [note(stats_line(result)), {"role": "assistant", "content": result.text}], status

    def _count_tokens(self, spec, dtype, text: str) -> int:
        """The tokens of a stopped reply's text (local models: their tokenizer, already loaded)."""
        provider = self.engine.provider(spec, dtype)
        if not text or not hasattr(provider, "load"):
            return len(text.split())  # an endpoint's tokenizer is not here: words, a close count
        return len(provider.load().tokenizer.encode(text, add_special_tokens=False))

    def chat_kept(
        self,
        message: str,
        history: list[dict] | None,
        model: str,
        system_message: str = "",
        max_new_tokens: int = 256,
        temperature: float = 0.0,
        top_p: float = 1.0,
        top_k: int = 0,
        repetition_penalty: float = 1.0,
        seed: int | str | None = None,
        stop: str = "",
        dtype: str = "",
        backend: str = "",
        sent: dict | None = None,
        request: gr.Request = None,
    ) -> Iterator[tuple]:
        """``chat`` (the same inputs: the ``/chat`` endpoint), with each finished reply kept on the server for the
        caller it was made for (llmplay/chat_replies.py) and its id in the session's ``sent`` (reply index ->
        {"reply_id"}): ratings and corrections name it. Yields (history, status, sent)."""
        args = (message, history, model, system_message, max_new_tokens, temperature, top_p, top_k)
        args += (repetition_penalty, seed, stop, dtype, backend)
        caller = caller_of(self.engine.settings, request)
        # the ids of the replies still shown (a retry or an edit cut the rest: their new replies are new rows)
        kept = kept_before(sent, len(history) if isinstance(history, list) else 0)
        session = getattr(request, "session_hash", None)
        stop_event = self.stops.begin(session)

        def keep(model, prompt, reply, index):
            with connect(self.engine.settings.db_path) as db:
                kept[str(index)] = {"reply_id": save_reply(db, caller.name, model, prompt, reply)}

        last = None
        try:
            for update in self.chat(*args, keep=keep, stop_event=stop_event):  # one behind: the last has the id
                if last is not None:
                    yield *last, gr.skip()
                last = update
        finally:
            self.stops.end(session, stop_event)
        if last is not None:
            yield *last, kept

    def rerun(self, history, index, text: str | None, *settings, sent=None, request=None) -> Iterator[tuple]:
        """Retry (``text`` None) or edit the user message ``history[index]``: the turns after it go, and its
        reply is made again (a new stored reply). Yields (history, status, sent) like ``chat_kept``."""
        try:
            before, old = cut_for_rerun(check_history(history), index)
        except (InvalidRequestError, IndexError):
            yield history, format_error("That message is no longer in this chat; send it again."), gr.skip()
            return
        yield from self.chat_kept(old if text is None else text, before, *settings, sent=sent, request=request)

    def undo(self, history, index, sent=None) -> tuple:
        """Undo the user message ``history[index]`` and what followed: (history, the message back in the box for
        editing, status, sent)."""
        try:
            before, old = cut_for_rerun(check_history(history), index)
        except (InvalidRequestError, IndexError):
            return history, gr.skip(), format_error("That message is no longer in this chat."), gr.skip()
        return before, old, "↩️ Undone: the message is back in the box.", kept_before(sent, len(before))

    def stop(self, request: gr.Request = None):
        """Stop: the session's running reply ends with what it has, and says so itself (with nothing running, the
        last reply's stats stay)."""
        self.stops.stop(getattr(request, "session_hash", None))
        return gr.skip()


def _reply_fields(reply, index: int, sender) -> dict:
    """What a rating or a correction records about the stored ``reply`` it is about, and who sent it."""
    return {
        "source": FEEDBACK_SOURCE,
        "user": sender.name,
        "role": sender.role,
        "model": reply.model,
        "origin": {"chat_reply": reply.id},
        "meta": {"index": index},
    }


def _clear_sent_message(status: str):
    """Empty the message box after a reply, but keep it when the send failed so nothing is lost."""
    return gr.skip() if (status or "").startswith(ERROR) else ""


def _reset() -> tuple[list, str, str]:
    return [], "", ""


# ---- layout -----------------------------------------------------------------------------------------
def build_playground(services: Services, demo: gr.Blocks) -> Playground:
    """Lay out the tab inside the current Blocks context and wire its events."""
    engine = services.engine
    pg = Playground(engine)
    settings = engine.settings
    limit = settings.max_new_tokens_limit
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            chatbot = gr.Chatbot(
                label="Chat",
                elem_id="playground-chat",
                height=480,
                feedback_options=("Like", "Dislike"),  # 👍 / 👎 under each reply (see the module docstring)
                editable="user",  # edit a message of yours: its reply is made again (the .edit event below)
                buttons=["copy", "copy_all"],  # no "share": it posts to the Hugging Face Hub
                placeholder="Replies stream in here. The first message to a model loads it, which can take a while.",
            )
            message = gr.Textbox(
                label="Message",
                placeholder="Type a message and press Enter",
                lines=1,  # one line: Enter sends (in a multi-line box Gradio sends on Shift+Enter)
                max_lines=12,
                autofocus=True,
                elem_id="playground-message",
            )
            with gr.Row():
                send = gr.Button("Send", variant="primary")
                stop_button = gr.Button("Stop", elem_id="playground-stop")
                clear = gr.Button("Clear")
            status = gr.Markdown(label="status", elem_id="playground-status")
            # Recorded with 👍 / 👎 and corrections (no logins yet: people name themselves).
            feedback_user = gr.Textbox(
                "", label="Your name (for feedback)", placeholder="anonymous", max_lines=1, elem_id="playground-user"
            )
            with gr.Accordion("Correct this reply", open=False, elem_id="playground-correct"):
                correction = gr.Textbox(
                    label="What the last reply should have been", lines=2, elem_id="playground-correction"
                )
                send_fix = gr.Button("Send correction", size="sm", elem_id="playground-send-correction")
            feedback_status = gr.Markdown(elem_id="playground-feedback-status")
        with gr.Column(scale=2, min_width=320):
            first = default_model(engine)
            model = gr.Dropdown(
                generative_names(engine),
                value=first,
                label="Model",
                allow_custom_value=True,  # the engine reports unknown names clearly; Gradio's check would not
            )
            model_info = gr.Markdown(describe_model(engine, first))
            system_message = gr.Textbox("", label="System message (optional)", lines=2, max_lines=8)
            with gr.Accordion("Decoding", open=True):
                max_new_tokens = fields.number(
                    "max_new_tokens", min(256, limit), settings, label=f"Max new tokens (1–{limit})"
                )
                temperature = fields.slider("temperature", 0, step=0.05, label="Temperature (0 = greedy)")
                top_p = fields.slider("top_p", 1, step=0.05, label="Top-p")
                top_k = fields.slider("top_k", 0, step=1, label="Top-k (0 = off)")
                repetition_penalty = fields.slider("repetition_penalty", 1, step=0.05, label="Repetition penalty")
                # A Textbox, not a Number: the browser shows an empty Number as 0, which would fix the seed.
                seed = gr.Textbox("", label="Seed (blank = random)", placeholder="random")
                stop = gr.Textbox("", label="Stop strings", placeholder="comma or newline separated; \\n = newline")
                dtype = gr.Dropdown(
                    list(UI_DTYPES),
                    value=settings.dtype if settings.dtype in UI_DTYPES else "auto",
                    label="Weights dtype (transformers backend)",
                )
                backend = gr.Dropdown(
                    BACKEND_CHOICES,
                    value=settings.backend if settings.backend in {v for _, v in BACKEND_CHOICES} else "auto",
                    label="Backend for streamed replies (local models)",
                    info="auto = ONNX Runtime int8 where it runs the model, else the fast decoder; "
                    "transformers float32 is the reference",
                )
            build_add_model_panel(engine, model)

    inputs = [message, chatbot, model, system_message, max_new_tokens, temperature, top_p, top_k]
    inputs += [repetition_penalty, seed, stop, dtype, backend]
    guard = Guard(settings)  # every state-changing handler checks its caller's role (llmplay/ui/access.py)
    sent = gr.State({})  # reply index -> {"reply_id": the stored reply} (what feedback on it names)
    reply = gr.on(
        [send.click, message.submit],
        guard("generate", "chat with models", pg.chat_kept),
        [*inputs, sent],
        [chatbot, status, sent],
        api_name="chat",
        show_progress="minimal",  # the status line says what is happening
        **GENERATION,
    )
    reply.then(declared("view", _clear_sent_message), status, message, api_visibility="private")
    settings_inputs = inputs[2:]  # model .. backend: what a retried or edited message is sent with

    # Plain positional parameters: Gradio fills the event data and the request by their place and type.
    def retry(history, m, sm, mnt, t, tp, tk, rp, sd, st, dt, be, sent_, data: gr.RetryData, request: gr.Request):
        values = (m, sm, mnt, t, tp, tk, rp, sd, st, dt, be)
        yield from pg.rerun(history, data.index, None, *values, sent=sent_, request=request)

    def edit(history, m, sm, mnt, t, tp, tk, rp, sd, st, dt, be, sent_, data: gr.EditData, request: gr.Request):
        values = (m, sm, mnt, t, tp, tk, rp, sd, st, dt, be)
        text = data.value if isinstance(data.value, str) else None  # None: the edited history's own text
        yield from pg.rerun(history, data.index, text, *values, sent=sent_, request=request)

    rerun_options = {"show_progress": "minimal", "api_visibility": "private", **GENERATION}
    rerun_inputs = [chatbot, *settings_inputs, sent]
    retried = chatbot.retry(
        guard("generate", "chat with models", retry), rerun_inputs, [chatbot, status, sent], **rerun_options
    )
    edited = chatbot.edit(
        guard("generate", "chat with models", edit), rerun_inputs, [chatbot, status, sent], **rerun_options
    )

    def undo(history, sent_, data: gr.UndoData):
        return pg.undo(history, data.index, sent_)

    chatbot.undo(declared("view", undo), [chatbot, sent], [chatbot, message, status, sent], api_visibility="private")
    # Stop asks the running reply to end: it stops decoding and reports the partial reply with its stats. Not
    # queued: a plain request that never waits behind the queue's workers (CI once saw a Stop land after the reply).
    stop_button.click(declared("view", pg.stop), None, status, api_visibility="private", queue=False)
    running = [reply, retried, edited]
    clear.click(declared("view", _reset), None, [chatbot, status, message], cancels=running, api_visibility="private")
    clear.click(declared("view", lambda: ({}, "")), None, [sent, feedback_status], api_visibility="private")

    def on_like(history, model_, system_, user_, sent_, data: gr.LikeData):
        return pg.rate(history, data.index, data.liked, model_, system_, user_, sent_)

    chatbot.like(
        guard("vote", "rate replies", on_like, user_param="user_"),
        [chatbot, model, system_message, feedback_user, sent],
        feedback_status,
        api_visibility="private",
    )
    send_fix.click(
        guard("label", "send corrections", pg.correct, user_param="user"),
        [chatbot, correction, model, system_message, feedback_user, sent],
        feedback_status,
        api_visibility="private",
    )

    def playground_rate(
        history: list[dict], index: int | None, liked: bool | str | None, model: str, system_message: str, user: str
    ) -> str:
        return pg.rate(history, index, liked, model, system_message, user)

    def playground_correction(history: list[dict], correction: str, model: str, system_message: str, user: str) -> str:
        return pg.correct(history, correction, model, system_message, user)

    gr.api(guard("vote", "rate replies", playground_rate, user_param="user"), api_name="playground_rate")
    correction_api = guard("label", "send corrections", playground_correction, user_param="user")
    gr.api(correction_api, api_name="playground_correction")
    model.change(declared("view", partial(describe_model, engine)), model, model_info, api_visibility="private")
    # Models added in another browser tab (or session) appear after a reload.
    demo.load(declared("view", partial(model_choices, engine)), None, model, api_visibility="private")
    return pg
