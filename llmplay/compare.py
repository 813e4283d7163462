"""Side-by-side comparison: one input goes to several columns (model + template + decoding), whose replies
stream in parallel, one thread per column; the results, timings and conversations come back as plain data.

A column that cannot run (unknown model, bad template, unreachable endpoint) ends with an error result
while the others go on: errors are data here, as everywhere in the engine. Local models serialise per
loaded model, so two columns on the *same* model take turns; different models run side by side.

Conversations are lists of ``{"role", "content"}`` dicts holding exactly what each column's model was sent
(system message and few-shot examples included) plus its replies, so a follow-up turn or a re-roll sends
the same context again. No gradio here: the Compare tab and ``bench/compare.py`` both use this module.

A reply can become training signal: ``preference_from_comparison`` sends two columns' replies of a stored
comparison (``llmplay.compare_results``: the server keeps every finished one with its caller's name) to the
feedback queue ``preferences`` as a preferred/rejected pair, ``correction_from_comparison`` sends the answer a
column should have given to ``inbox`` (see ``llmplay.feedback.sources`` and ``llmplay.feedback.provenance``).
"""

from __future__ import annotations

import json
import queue
import random
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import closing
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from sqlite_utils import Database

from llmplay.compare_results import load_comparison
from llmplay.engine import Engine, GenerationParams, GenerationRequest, GenerationResult, StreamEvent
from llmplay.errors import InvalidRequestError, LlmplayError
from llmplay.feedback.provenance import Sender
from llmplay.feedback.sources import Sent, send_correction, send_preference
from llmplay.feedback.store import Prompt
from llmplay.templates import Template, TemplateLibrary, Version, build_request, parse_template
from llmplay.templates.versions import parse_ref

MAX_COLUMNS = 4
ROLES = ("system", "user", "assistant")
EXPORT_FORMAT = "llmplay-comparison"
FEEDBACK_SOURCE = "compare"


@dataclass(frozen=True)
class ColumnConfig:
    """What one column runs: a catalog model, optionally a LoRA adapter (local models) and a template."""

    model: str
    params: GenerationParams = field(default_factory=GenerationParams)
    template: str | None = None  # a template's name, or name@v3 for a saved version; None = the free message
    adapter: str | None = None
    dtype: str | None = None  # None = the settings' default
    # The template version the first turn rendered (set when it is rendered), so feedback can name it.
    template_version_id: int | None = None

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "template": self.template,
            "template_version_id": self.template_version_id,
            "adapter": self.adapter,
            "dtype": self.dtype,
            "params": self.params.to_dict(),
        }


@dataclass(frozen=True)
class Column:
    """A column ready to run: its config and the request, or the reason it cannot run (``error``)."""

    config: ColumnConfig
    request: GenerationRequest | None = None
    error: str | None = None


# ---- building requests ------------------------------------------------------------------------------
def template_ref(name: str, number: int | None = None) -> str:
    """How a column names a template: ``name`` (the file as it is now) or ``name@v3`` (a saved version)."""
    return name if number is None else f"{name}@v{number}"


def load_template(library: TemplateLibrary, ref: str) -> tuple[Template, Version]:
    """The template a column names (see ``template_ref``) and the version it is, for feedback items."""
    name, number = parse_ref(ref)
    if number is not None:
        version = library.version(name, number)
    else:
        library.read_text(name)  # an unknown name fails here, with the known names in the message
        version = library.current_version(name)
    return parse_template(version.content, source=f"{version.template} v{version.number}"), version


def request_from_messages(kind: str, messages: list[dict], params: GenerationParams) -> GenerationRequest:
    """A base model given one user turn continues it as raw text; anything longer is a conversation."""
    if kind == "base" and len(messages) == 1 and messages[0]["role"] == "user":
        return GenerationRequest(prompt=messages[0]["content"], params=params)
    return GenerationRequest.of(messages, params)


def sampled_seed(params: GenerationParams, fresh: bool = False) -> GenerationParams:
    """Sampling gets a concrete seed (a new one when ``fresh``), so every reply can be reproduced from the
    export; greedy decoding needs none."""
    if params.greedy or (params.seed is not None and not fresh):
        return params
    return replace(params, seed=random.randrange(2**31))


def prepare_column(
    engine: Engine,
    config: ColumnConfig,
    history: list[dict] | None = None,
    message: str = "",
    system_message: str = "",
    template: Template | None = None,
    values: dict[str, Any] | None = None,
) -> Column:
    """The request for the column's next turn; problems become the column's error, never an exception.

    With no history, a column with a template sends the rendered template (its system message and examples
    included); one without sends ``system_message`` + ``message``. With history, ``message`` is a follow-up.
    """
    try:
        spec = engine.catalog.get(config.model or "")
        params = sampled_seed(config.params)
        config = replace(config, params=params)
        history = checked_history(history)
        text = (message or "").strip()
        if history or template is None:
            if not text:
                raise LlmplayError("The message is empty: type a message first.")
            head = [] if history or not (system_message or "").strip() else [system(system_message)]
            return Column(config, request_from_messages(spec.kind, head + history + [user(message)], params))
        request, _ = build_request(template, spec.kind, values, params)
        return Column(config, request)
    except LlmplayError as exc:
        return Column(config, error=str(exc))


def prepare_reroll(engine: Engine, config: ColumnConfig, history: list[dict]) -> Column:
    """The column's last turn again: its conversation without the last reply (a fresh seed when sampling)."""
    config = replace(config, params=sampled_seed(config.params, fresh=True))
    try:
        turns = checked_history(history)
        if turns and turns[-1]["role"] == "assistant":
            turns.pop()
        if not turns:
            raise LlmplayError("Nothing to re-roll yet: run a comparison first.")
        spec = engine.catalog.get(config.model or "")
    except LlmplayError as exc:
        return Column(config, error=str(exc))
    return Column(config, request_from_messages(spec.kind, turns, config.params))


def checked_history(history: list[dict] | None) -> list[dict]:
    """A conversation as given by an API caller, checked so a malformed one fails only its own column."""
    turns = list(history or [])
    for turn in turns:
        if not (isinstance(turn, dict) and turn.get("role") in ROLES and isinstance(turn.get("content"), str)):
            raise LlmplayError(
                f"Each history entry must be {{'role': system|user|assistant, 'content': str}}; got {turn!r}."
            )
    return [{"role": t["role"], "content": t["content"]} for t in turns]


def system(text: str) -> dict:
    return {"role": "system", "content": text.strip()}


def user(text: str) -> dict:
    return {"role": "user", "content": text}


# ---- running in parallel ----------------------------------------------------------------------------
def lanes(engine: Engine, columns: Sequence[Column]) -> list[list[int]]:
    """Column indexes grouped into lanes that run side by side; a lane runs its columns in order.

    A loaded local model generates one reply at a time (a lock per model), so columns on the same local
    model (and dtype and adapter) share a lane and take turns in column order, instead of racing for the
    lock in whatever order their threads wake up. Endpoints and failed columns get a lane each.
    """
    groups: dict[tuple, list[int]] = {}
    for i, column in enumerate(columns):
        cfg = column.config
        try:
            spec = engine.catalog.get(cfg.model) if column.error is None else None
        except LlmplayError:
            spec = None  # the column reports its own error
        local = spec is not None and spec.provider == "local"
        key = (spec.name, cfg.dtype or engine.settings.dtype, cfg.adapter) if local else ("column", i)
        groups.setdefault(key, []).append(i)
    return list(groups.values())


def stream_columns(
    engine: Engine, columns: Sequence[Column], plan: list[list[int]] | None = None
) -> Iterator[tuple[int, StreamEvent]]:
    """Run the columns, one thread per lane (``plan``, default ``lanes()``); yield ``(column index, event)``
    in arrival order.

    Every column ends with exactly one ``done`` event (an error result when it failed), after which the
    iterator ends. Closing it early stops the workers at their next event (they close their own streams:
    a generator cannot be closed from another thread while it runs).
    """
    plan = lanes(engine, columns) if plan is None else plan
    _import_transformers(engine, columns)
    events: queue.Queue[tuple[int, StreamEvent]] = queue.Queue()
    stop = threading.Event()
    for lane in plan:
        name = "compare-column-" + "-".join(str(i + 1) for i in lane)
        threading.Thread(target=_run_lane, args=(engine, columns, lane, events, stop), daemon=True, name=name).start()
    pending = set(range(len(columns)))
    try:
        while pending:
            index, event = events.get()
            if event.done:
                pending.discard(index)
            yield index, event
    finally:
        stop.set()


def _import_transformers(engine: Engine, columns: Sequence[Column]) -> None:
    """Import transformers here, once, before the column threads start: its first import is not thread-safe
    (threads that import it at the same time see a half-built module and fail with ImportError)."""
    for column in columns:
        try:
            local = engine.catalog.get(column.config.model).provider == "local"
        except LlmplayError:
            continue  # the column reports its own error
        if local:
            import transformers  # noqa: F401

            return


def _run_lane(engine: Engine, columns: Sequence[Column], lane: list[int], events: queue.Queue, stop) -> None:
    for index in lane:
        if stop.is_set():
            return
        _run_column(engine, columns[index], index, events, stop)


def _run_column(engine: Engine, column: Column, index: int, events: queue.Queue, stop: threading.Event) -> None:
    model = column.config.model
    try:
        if column.error is not None or column.request is None:
            raise LlmplayError(column.error or "This column has nothing to send.")
        cfg = column.config
        with closing(engine.stream(model, column.request, dtype=cfg.dtype, adapter=cfg.adapter)) as stream:
            for event in stream:
                if stop.is_set():
                    return  # nobody is listening any more; closing the stream stops the decoding
                events.put((index, event))
                if event.done:
                    return
        failed = GenerationResult.failure(f"{model} ended the reply without a result; try again.", model)
    except LlmplayError as exc:
        failed = GenerationResult.failure(str(exc), model)
    except Exception as exc:  # one column's crash must not take the others down
        failed = GenerationResult.failure(f"something unexpected went wrong ({type(exc).__name__}: {exc}).", model)
    events.put((index, StreamEvent(done=True, result=failed)))


# ---- folding events into state ----------------------------------------------------------------------
@dataclass
class ColumnRun:
    """One column's progress: the text so far, the loading stage, and the final result."""

    column: Column
    history: list[dict] = field(default_factory=list)  # the conversation before this turn
    text: str = ""
    loading: str = ""
    result: GenerationResult | None = None
    first_text_s: float | None = None  # seconds from the comparison's start; shows the columns' overlap
    finished_s: float | None = None
    waits_for: int | None = None  # the column (1-based) on the same local model that goes first

    @property
    def done(self) -> bool:
        return self.result is not None

    @property
    def error(self) -> str | None:
        return self.result.error if self.result is not None else None

    @property
    def state(self) -> str:
        if self.result is not None:
            return "error" if self.result.error else "done"
        return "loading" if self.loading and not self.text else ("generating" if self.text else "waiting")

    def conversation(self) -> list[dict]:
        """The conversation as it stands: a failed turn leaves it unchanged, so nothing half-done is kept."""
        if self.error or self.column.request is None:
            return list(self.history)
        text = self.result.text if self.result is not None else self.text
        return self.column.request.as_messages() + [{"role": "assistant", "content": text}]

    def to_dict(self, number: int) -> dict:
        result = self.result
        return {
            "column": number,
            "model": self.column.config.model,
            "config": self.column.config.to_dict(),
            "state": self.state,
            "loading": self.loading,
            "text": result.text if result is not None and result.ok else self.text,
            "error": self.error,
            "ttft_s": _round(result.time_to_first_token_s) if result else None,
            "tok_s": round(result.tokens_per_s, 2) if result and result.ok else None,
            "backend": result.backend if result and result.ok else None,
            "tokens": result.completion_tokens if result else None,
            "finish_reason": result.finish_reason if result else None,
            "result": result.to_dict() if result else None,
            "waits_for": self.waits_for,
            "first_text_s": _round(self.first_text_s),
            "finished_s": _round(self.finished_s),
            "request": _request_dict(self.column.request),
            "history": self.conversation(),
        }


class Comparison:
    """Merges the columns' events into per-column state; ``snapshot()`` is the plain-data view of it."""

    def __init__(self, columns: Sequence[Column], histories: Sequence[list[dict]] | None = None, inputs=None):
        histories = list(histories or [])
        self.runs = [ColumnRun(c, list(histories[i]) if i < len(histories) else []) for i, c in enumerate(columns)]
        self.inputs: dict = dict(inputs or {})
        self.started = time.perf_counter()
        self.wall_s: float | None = None

    @property
    def done(self) -> bool:
        return all(run.done for run in self.runs)

    def apply(self, index: int, event: StreamEvent) -> None:
        run = self.runs[index]
        now = time.perf_counter() - self.started
        if event.status:
            run.loading = event.status
        if event.delta:
            run.first_text_s = run.first_text_s if run.first_text_s is not None else now
            run.text += event.delta
        if event.done:
            run.result = event.result or GenerationResult.failure("The reply ended without a result.")
            run.finished_s = now
            if self.done:
                self.wall_s = now

    def stream(self, engine: Engine, every_s: float = 0.05) -> Iterator[Comparison]:
        """Run all columns, yielding self at most every ``every_s`` seconds while text arrives, at every
        loading stage and finished column, and once at the end."""
        columns = [run.column for run in self.runs]
        plan = lanes(engine, columns)
        for lane in plan:
            for before, index in zip(lane, lane[1:]):
                self.runs[index].waits_for = before + 1
        last = 0.0
        with closing(stream_columns(engine, columns, plan)) as events:
            for index, event in events:
                self.apply(index, event)
                now = time.perf_counter()
                if event.done or event.status or now - last >= every_s:
                    last = now
                    yield self

    def run(self, engine: Engine) -> Comparison:
        for _ in self.stream(engine, every_s=float("inf")):
            pass
        return self

    def snapshot(self) -> dict:
        return {
            "input": self.inputs,
            "columns": [run.to_dict(i + 1) for i, run in enumerate(self.runs)],
            "done": self.done,
            "wall_s": _round(self.wall_s),
        }


def run_columns(engine: Engine, columns: Sequence[Column]) -> list[GenerationResult]:
    """Run the columns in parallel and return their final results, in column order."""
    comparison = Comparison(columns).run(engine)
    return [run.result for run in comparison.runs if run.result is not None]


# ---- feedback ---------------------------------------------------------------------------------------
def feedback_column(comparison: dict | None, number: int | str | None) -> dict:
    """Column ``number`` (1-based) of a comparison dict, checked to have a finished reply to send."""
    columns = (comparison or {}).get("columns") or []
    if not columns:
        raise InvalidRequestError("Run a comparison first: feedback is about its replies.")
    try:
        index = int(number) - 1
    except (TypeError, ValueError):
        raise InvalidRequestError(f"Choose a column (1 to {len(columns)}); got {number!r}.") from None
    if not 0 <= index < len(columns):
        raise InvalidRequestError(f"This comparison has columns 1 to {len(columns)}; there is no column {number}.")
    col = columns[index]
    name = f"Column {index + 1} ({col.get('model') or 'no model'})"
    if col.get("error"):
        raise InvalidRequestError(f"{name} failed, so it has no reply to send: {col['error']}")
    if col.get("state") != "done" or not col.get("request"):
        raise InvalidRequestError(f"{name} has not finished its reply; wait for it, or run the comparison again.")
    return col


def column_prompt(col: dict) -> Prompt:
    """What the column's model was sent: chat messages, or the raw text a base model continued."""
    request = col["request"]
    return request["messages"] if "messages" in request else request["prompt"]


def same_input(a: dict, b: dict) -> bool:
    """Whether two columns answered the same input, so that their replies form a preference pair.

    Either they were sent the same conversation (a base model's raw text counts as one user turn), or both
    rendered the same template version on the first turn: the comparison's values are shared, only the
    model's format differs (chat messages or one text)."""

    def as_messages(col: dict) -> list[dict]:
        prompt = column_prompt(col)
        return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt

    version = (a.get("config") or {}).get("template_version_id")
    same_template = version is not None and version == (b.get("config") or {}).get("template_version_id")
    return same_template or as_messages(a) == as_messages(b)


def _known(comparison: dict, col: dict, side: str = "") -> dict:
    """What an item records about a column: model, adapter, template (name), its version, the input values."""
    config = col.get("config") or {}
    template = config.get("template")
    known = {
        f"model{side}": config.get("model"),
        f"adapter{side}": config.get("adapter"),
    }
    if not side:
        inputs = comparison.get("input") if isinstance(comparison.get("input"), dict) else {}
        values = inputs.get("values")
        if isinstance(values, str):  # the tab sends the values box's JSON text
            try:
                values = json.loads(values) if values.strip() else None
            except ValueError:
                values = None
        known |= {
            "template": parse_ref(template)[0] if template else None,
            "template_version_id": config.get("template_version_id"),
            "input": values if isinstance(values, dict) and template else None,
            "meta": {"column": col.get("column"), "params": config.get("params")},
        }
    return known


def preference_from_comparison(db: Database, comparison_id: int, preferred: int, rejected: int, sender: Sender) -> Sent:
    """Send column ``preferred``'s reply as the chosen one and column ``rejected``'s as the rejected one of the
    stored comparison ``comparison_id`` (``sender``'s own, see compare_results.py) to the feedback queue
    ``preferences`` (source ``compare``); the prompt kept is what the preferred column's model was sent, and the
    sender's response is 'a' (the chosen reply)."""
    comparison = load_comparison(db, comparison_id, sender).snapshot()
    if (comparison or {}).get("columns") and str(preferred) == str(rejected):
        raise InvalidRequestError("Choose two different columns: one preferred reply and one rejected reply.")
    chosen, lost = feedback_column(comparison, preferred), feedback_column(comparison, rejected)
    for number, col in ((preferred, chosen), (rejected, lost)):
        if not (col.get("text") or "").strip():
            raise InvalidRequestError(
                f"Column {number}'s reply is empty, so it cannot be half of a pair; send a correction for it instead."
            )
    if not same_input(chosen, lost):
        raise InvalidRequestError(
            f"Columns {preferred} and {rejected} were sent different prompts (another template, system message or "
            "conversation), so their replies are not a pair for one prompt; send a correction for one of them instead."
        )
    return send_preference(
        db,
        column_prompt(chosen),
        chosen["text"],
        lost["text"],
        source=FEEDBACK_SOURCE,
        user=sender.name,
        role=sender.role,
        origin={"comparison": comparison["id"], "columns": [chosen.get("column"), lost.get("column")]},
        **_known(comparison, chosen),
        **_known(comparison, lost, "_b"),
    )


def correction_from_comparison(db: Database, comparison_id: int, column: int, correction: str, sender: Sender) -> Sent:
    """Send 'column ``column`` of the stored comparison ``comparison_id`` (``sender``'s own) should have answered
    ``correction``' to the feedback queue ``inbox`` (source ``compare``), with the sender's correction (their
    own input) as their submitted response."""
    comparison = load_comparison(db, comparison_id, sender).snapshot()
    col = feedback_column(comparison, column)
    if not (correction or "").strip():
        raise InvalidRequestError("Write the correct answer first; it is empty.")
    return send_correction(
        db, column_prompt(col), col.get("text") or "", correction, source=FEEDBACK_SOURCE, user=sender.name,
        role=sender.role, origin={"comparison": comparison["id"], "columns": [col.get("column")]},
        **_known(comparison, col),
    )  # fmt: skip


# ---- export -----------------------------------------------------------------------------------------
def export_payload(snapshot: dict) -> dict:
    """A self-describing record of a comparison (input, per-column config, replies, stats) for a JSON file."""
    columns = [
        {k: col.get(k) for k in ("column", "model", "config", "text", "error", "ttft_s", "tok_s", "tokens")}
        | {"finish_reason": col.get("finish_reason"), "request": col.get("request"), "history": col.get("history")}
        for col in snapshot.get("columns", [])
    ]
    return {
        "format": EXPORT_FORMAT,
        "version": 1,
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "input": snapshot.get("input", {}),
        "wall_s": snapshot.get("wall_s"),
        "columns": columns,
    }


def export_markdown(snapshot: dict) -> str:
    """The comparison as Markdown to paste anywhere: the input, a stats table, then each reply."""
    inputs = snapshot.get("input", {})
    lines = ["# Comparison", ""]
    if inputs.get("message"):
        lines += [f"**Message:** {inputs['message']}", ""]
    if inputs.get("values"):
        lines += [f"**Template values:** `{inputs['values']}`", ""]
    lines += [
        "| column | model | template | backend | TTFT (s) | tokens/s | tokens | finish |",
        "|---|---|---|---|---|---|---|---|",
    ]
    columns = snapshot.get("columns", [])
    for col in columns:
        cfg = col.get("config") or {}
        cells = [col.get("column"), col.get("model"), cfg.get("template") or "—", col.get("backend")]
        cells += [col.get("ttft_s"), col.get("tok_s")]
        cells += [col.get("tokens"), "error" if col.get("error") else col.get("finish_reason")]
        lines.append("| " + " | ".join("—" if c is None else str(c) for c in cells) + " |")
    for col in columns:
        lines += ["", f"## Column {col.get('column')}: {col.get('model')}", ""]
        lines.append(f"⚠️ Error: {col['error']}" if col.get("error") else (col.get("text") or ""))
    return "\n".join(lines) + "\n"


def _request_dict(request: GenerationRequest | None) -> dict | None:
    if request is None:
        return None
    if request.messages is None:
        return {"prompt": request.prompt}
    return {"messages": request.as_messages()}


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)
