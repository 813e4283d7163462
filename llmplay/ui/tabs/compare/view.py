"""What the Compare tab shows and accepts, as plain values (no gradio state): a column's decoding parameters,
its stats line, the chat view, the API's column dict, an evaluation row's handoff."""

from __future__ import annotations

from llmplay.compare import ColumnConfig
from llmplay.engine import GenerationParams, GenerationResult
from llmplay.evaluation.handoff import RowHandoff
from llmplay.ui.common import format_error
from llmplay.ui.decoding import format_stats, parse_params
from llmplay.ui.tabs.compare.columns import MIN_COLUMNS, PARAM_DEFAULTS


def column_params(column: dict, settings=None) -> GenerationParams:
    """Decoding parameters from an API column dict; missing keys take the defaults, bad ones are named."""
    merged = {k: column.get(k, default) for k, default in PARAM_DEFAULTS.items()}
    return parse_params(*merged.values(), settings=settings)


def column_stats(col: dict) -> str:
    """One column's status line, as the tab shows it."""
    if col.get("error"):
        return format_error(col["error"])
    state = col.get("state")
    if state == "done" and col.get("result"):
        result = GenerationResult(**{k: v for k, v in col["result"].items() if k != "tokens_per_s"})
        seed = (col.get("config") or {}).get("params", {}).get("seed")
        sampled = (col.get("config") or {}).get("params", {}).get("temperature", 0) > 0
        return format_stats(result) + (f" · seed {seed}" if sampled and seed is not None else "")
    if state == "loading":
        return f"{col.get('loading')}…"
    if state == "generating":
        return f"Generating with **{col.get('model')}**…"
    if col.get("waits_for"):
        return f"Waiting for column {col['waits_for']}: it uses the same model, which generates one reply at a time."
    return "Waiting…"


def chat_view(history: list[dict] | None, example_turns: int = 0) -> list[dict]:
    """A conversation as the Chatbot shows it: system messages are settings, not turns; a template's few-shot
    examples (the first ``example_turns`` turns) fold into one closed "N example turns" box above the answer."""
    turns = [{"role": m["role"], "content": m["content"]} for m in history or [] if m.get("role") != "system"]
    shots = example_turns if 0 < example_turns < len(turns) else 0
    if not shots:
        return turns
    body = "\n\n".join(f"**{t['role']}:** {t['content']}" for t in turns[:shots])
    pairs = shots // 2
    title = f"{pairs} few-shot example{'s' if pairs != 1 else ''} from the template ({shots} turns)"
    folded = {"role": "assistant", "content": body, "metadata": {"title": title, "status": "done"}}
    return [folded, *turns[shots:]]


def example_turns(column: dict) -> int:
    """How many turns at the start of a column's conversation are its template's few-shot examples."""
    return int(column.get("example_turns") or 0)


def api_column(config: ColumnConfig) -> dict:
    """A column config as an API column dict (the inverse of ``CompareTab.column_config``)."""
    params = config.params
    return {
        "model": config.model,
        "template": config.template or "",
        "adapter": config.adapter or "",
        "dtype": config.dtype or "",
        "same_as_first": False,
        "max_new_tokens": params.max_new_tokens,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "top_k": params.top_k,
        "repetition_penalty": params.repetition_penalty,
        "seed": "" if params.seed is None else str(params.seed),
        # The stop box separates entries with newlines and reads a typed "\n" as a newline.
        "stop": "\n".join(s.replace("\n", "\\n").replace("\t", "\\t") for s in params.stop),
    }


def handoff_dict(handoff: RowHandoff, default_dtype: str) -> dict:
    """``/open_in_compare``'s result: the row as ``/compare`` inputs (see the module docstring)."""
    columns = [api_column(c) | ({"dtype": ""} if c.dtype == default_dtype else {}) for c in handoff.columns]
    notes = list(handoff.notes)
    if any("," in stop for c in handoff.columns for stop in c.params.stop):
        notes.append("A stop string holds a comma, which the stop box reads as a separator: check the stop strings.")
    if len(columns) < MIN_COLUMNS:
        columns.append(dict(columns[0]))
        notes.append("The run has one column; column 2 repeats it: change its model or template to compare.")
    return {
        "run_id": handoff.run_id,
        "row": handoff.row,
        "count": len(columns),
        "columns": columns,
        "values": handoff.values,
        "titles": list(handoff.titles),
        "outputs": list(handoff.outputs),
        "notes": notes,
        "error": None,
    }


def handoff_status(handoff: dict) -> str:
    """What the Compare tab says after opening a row: where it comes from, the run's replies, the notes."""
    if "trace_id" in handoff:
        lines = [f"Opened API trace {handoff['trace_id']}: press **Compare** to rerun its message live."]
    else:
        lines = [f"Opened row {handoff['row']} of run #{handoff['run_id']}: press **Compare** to rerun it live."]
    for number, (title, output) in enumerate(zip(handoff["titles"], handoff["outputs"]), 1):
        shown = "(failed in the run)" if output is None else f"“{_clip(output, 160)}”"
        lines.append(f"- Column {number} ({title}) replied in the run: {shown}")
    lines += [f"- Note: {note}" for note in handoff["notes"]]
    return "\n".join(lines)


def _clip(text: str, chars: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= chars else text[: chars - 1] + "…"


def failure(message: str) -> dict:
    return {"input": {}, "columns": [], "done": True, "wall_s": None, "error": format_error(message)}


def with_stats(snapshot: dict) -> dict:
    for col in snapshot.get("columns", []):
        col["stats"] = column_stats(col)
    snapshot.setdefault("error", None)
    return snapshot


def column_count(snapshot: dict | None, count) -> int:
    """How many columns exist to pick from: the comparison's, or before any, the columns on the form."""
    columns = (snapshot or {}).get("columns") or []
    return len(columns) if columns else int(count or MIN_COLUMNS)


def column_choices(snapshot: dict | None, count) -> list[tuple[str, int]]:
    """The column pickers' choices (diff, feedback): only columns that exist, named with their model."""
    columns = (snapshot or {}).get("columns") or []
    return [
        (f"Column {i} · {columns[i - 1].get('model')}" if i <= len(columns) else f"Column {i}", i)
        for i in range(1, column_count(snapshot, count) + 1)
    ]


def kept_pick(value, count: int, default: int) -> int:
    """A picker's value after its choices changed: kept when still offered, else the default (in range)."""
    try:
        if 1 <= int(value) <= count:
            return int(value)
    except (TypeError, ValueError):
        pass
    return min(default, count)
