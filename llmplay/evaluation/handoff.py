"""From an evaluation result to the Compare tab: one row of a run, as the columns and template values that rerun
it live side by side.

Each of the run's columns (template version, model, adapter, decoding parameters) becomes a Compare column; the
row's dataset values fill the template variables through each column's mapping. Compare shows at most
``MAX_COLUMNS`` columns and only generates text, so ``notes`` says what did not carry over. No gradio here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from llmplay import backend_names
from llmplay.compare import MAX_COLUMNS, ColumnConfig
from llmplay.engine import GenerationParams
from llmplay.engine.backends import AUTO_ONNX
from llmplay.errors import InvalidRequestError, LlmplayError
from llmplay.evaluation.results import RunResults, load_results
from llmplay.settings import Settings
from llmplay.templates import TemplateLibrary, template_ref


@dataclass(frozen=True)
class RowHandoff:
    """Row ``row`` of run ``run_id``, ready for the Compare tab."""

    run_id: int
    row: int
    columns: tuple[ColumnConfig, ...]  # the run's first MAX_COLUMNS columns, in order
    values: dict[str, Any]  # template variable -> this row's value
    titles: tuple[str, ...]  # the run's names for those columns
    outputs: tuple[str | None, ...]  # what the run stored for this row per column (None: failed or not run)
    notes: tuple[str, ...]  # what Compare cannot repeat exactly


def row_for_compare(settings: Settings, library: TemplateLibrary, run_id: int, row: int) -> RowHandoff:
    """The Compare columns and template values that rerun row ``row`` (0-based, as in the results grid)."""
    results = load_results(settings, int(run_id))
    if not 0 <= int(row) < len(results.rows):
        raise InvalidRequestError(f"Run #{run_id} has rows 0 to {len(results.rows) - 1}; there is no row {row}.")
    row = int(row)
    configs = results.info.config.get("columns") or []
    resolved = results.info.config.get("resolved", {}).get("columns") or []
    if not configs or len(resolved) != len(configs):
        raise InvalidRequestError(f"Run #{run_id} records no columns to open (it may not have started).")
    notes = []
    if len(configs) > MAX_COLUMNS:
        notes.append(
            f"Run #{run_id} has {len(configs)} columns; Compare shows up to {MAX_COLUMNS}, so columns 1 to "
            f"{MAX_COLUMNS} are open here."
        )
    shown = range(min(len(configs), MAX_COLUMNS))
    columns = tuple(_column(library, configs[i], resolved[i]) for i in shown)
    for i in shown:
        if resolved[i].get("mode") == "likelihood":
            notes.append(
                f"Column {i + 1} picked the most likely label in the run; Compare generates its reply instead."
            )
    decoded = [c.get("backend") or "" for c in (results.info.summary or {}).get("columns", [])]
    streams = stream_label(settings)
    for i in shown:
        if i < len(decoded) and decoded[i] and decoded[i] != streams:
            notes.append(
                f"Column {i + 1} decoded on {decoded[i]} in the run; Compare streams on {streams} (the backend "
                "setting), so its reply can differ where the two round differently."
            )
    values = _values(results, row, [resolved[i] for i in shown], notes)
    outputs = tuple(_output(results, row, i) for i in shown)
    return RowHandoff(run_id, row, columns, values, tuple(results.titles[i] for i in shown), outputs, tuple(notes))


def stream_label(settings: Settings) -> str:
    """What a local model's streamed reply decodes on under the settings, as results name it ("onnx int8"); auto's
    ONNX choice where the model is exported (models ONNX Runtime does not run fall back to the fast decoder)."""
    choice = settings.backend
    if choice == backend_names.AUTO:
        return f"{backend_names.ONNX} {AUTO_ONNX}"
    if choice == backend_names.REFERENCE:
        return f"{backend_names.REFERENCE} {settings.dtype}"
    if choice == backend_names.FAST:
        return f"{backend_names.FAST} {settings.fast_precision}"
    return choice.replace("/", " ")


def _column(library: TemplateLibrary, config: dict, resolved: dict) -> ColumnConfig:
    fields = set(GenerationParams.__dataclass_fields__)
    params = {k: v for k, v in (config.get("params") or {}).items() if k in fields}
    params["stop"] = tuple(params.get("stop") or ())
    return ColumnConfig(
        model=config["model"],
        params=GenerationParams(**params),
        template=_template(library, config["template"], resolved.get("template_version")),
        adapter=config.get("adapter") or None,
        dtype=resolved.get("dtype") or config.get("dtype") or None,
    )


def _template(library: TemplateLibrary, name: str, number: int | None) -> str:
    """The plain name when the run used what the file holds now, else the exact version the run rendered."""
    if number is None:
        return name
    try:
        current = library.current_version(name).number
    except LlmplayError:  # the template was deleted since: its versions are still stored
        current = None
    return template_ref(name, None if current == number else number)


def _values(results: RunResults, row: int, resolved: list[dict], notes: list[str]) -> dict[str, Any]:
    """The row's value for every template variable; Compare has one value per variable for all columns."""
    data = results.rows[row]
    values: dict[str, Any] = {}
    for number, column in enumerate(resolved, 1):
        for variable, dataset_column in (column.get("variables") or {}).items():
            value = data.get(dataset_column)
            if variable in values and values[variable] != value:
                notes.append(
                    f"Column {number} fills `{variable}` from another dataset column ({dataset_column}); Compare "
                    "sends every column the same value, the first column's."
                )
                continue
            values[variable] = value
    return values


def _output(results: RunResults, row: int, column: int) -> str | None:
    cell = results.cells.get((row, column))
    return None if cell is None or cell.error is not None else cell.text
