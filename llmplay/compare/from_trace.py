"""From an API trace to the Compare tab: the request as a free message to the version that answered it and to
the other versions of its line, so a reply users complained about is rerun side by side. No gradio here.

Columns: what answered (the trace's ``served``), then, for a line's trace, the line's active version when it has
moved on since and its base model; otherwise column 2 repeats column 1 (the user picks another model). The
trace's decoding parameters go with every column; its last user message is the message, its system turn the
system message. Earlier turns of a conversation do not carry over (``notes`` says so).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from llmplay.compare.columns import ColumnConfig
from llmplay.engine.types import GenerationParams
from llmplay.errors import InvalidRequestError, UnknownModelError
from llmplay.models.catalog import Catalog
from llmplay.models.lines import LINE_PREFIX
from llmplay.models.trained import line_active
from llmplay.settings import Settings
from llmplay.traces import Trace, get_trace

MAX_COLUMNS = 4


@dataclass(frozen=True)
class TraceHandoff:
    trace_id: str
    columns: tuple[ColumnConfig, ...]
    titles: tuple[str, ...]  # why each column is there
    outputs: tuple[str | None, ...]  # the trace's reply under the column that gave it
    message: str
    system_message: str
    notes: tuple[str, ...]


def _params(trace: Trace) -> GenerationParams:
    known = {f.name for f in fields(GenerationParams)}
    values = {k: v for k, v in (trace.params or {}).items() if k in known}
    if "stop" in values:
        values["stop"] = tuple(values["stop"] or ())
    return GenerationParams(**values)


def _turns(trace: Trace) -> tuple[str, str, int]:
    """(last user message, system message, earlier turns left out) of the trace's request."""
    if not isinstance(trace.request, list):
        return str(trace.request), "", 0
    turns = [m for m in trace.request if isinstance(m, dict)]
    system = "\n".join(str(m.get("content") or "") for m in turns if m.get("role") == "system")
    users = [i for i, m in enumerate(turns) if m.get("role") == "user"]
    if not users:
        raise InvalidRequestError(f"Trace {trace.id} has no user message to send again.")
    last = users[-1]
    earlier = sum(1 for m in turns[:last] if m.get("role") != "system")
    return str(turns[last].get("content") or ""), system, earlier


def trace_for_compare(settings: Settings, catalog: Catalog, trace_id: str) -> TraceHandoff:
    trace = get_trace(settings, (trace_id or "").strip())
    if trace is None:
        raise InvalidRequestError(f"There is no trace {trace_id!r}: pick one in the table.")
    message, system, earlier = _turns(trace)
    params, notes = _params(trace), []
    if earlier:
        notes.append(f"The trace's {earlier} earlier turn(s) are not carried over: Compare sends its last message.")
    if trace.endpoint == "completion":
        notes.append("The trace was a raw completion; Compare sends its prompt as a chat message.")
    wanted = [(trace.served, "answered the trace")]
    if trace.line:
        active = line_active(settings.db_path, LINE_PREFIX + trace.line)
        if active and active != trace.served:
            wanted.append((active, f"line {trace.line}'s active version now"))
        base = _base_of(catalog, trace.served)
        if base and base not in {w[0] for w in wanted}:
            wanted.append((base, "the base model"))
    columns, titles, outputs = [], [], []
    for model, why in wanted[:MAX_COLUMNS]:
        try:
            catalog.get(model)
        except UnknownModelError:
            notes.append(f"{model!r} ({why}) is no longer in the catalog.")
            continue
        columns.append(ColumnConfig(model=model, params=params))
        titles.append(f"{model}: {why}")
        outputs.append(trace.reply if model == trace.served else None)
    if not columns:
        raise InvalidRequestError(f"No model of trace {trace.id} is in the catalog any more.")
    if len(columns) == 1:
        columns.append(columns[0])
        titles.append(f"{columns[0].model}: again (pick another model to compare)")
        outputs.append(None)
        notes.append("Only one model applies; column 2 repeats it: change its model to compare.")
    return TraceHandoff(trace.id, tuple(columns), tuple(titles), tuple(outputs), message, system, tuple(notes))


def _base_of(catalog: Catalog, name: str) -> str | None:
    try:
        spec = catalog.get(name)
    except UnknownModelError:
        return None
    return spec.base if spec.base and spec.base != name else None
