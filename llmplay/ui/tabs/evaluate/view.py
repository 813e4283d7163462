"""The Evaluate tab's plain helpers: form values -> a RunConfig, tables, the scoreboard chart, run
descriptions and error text. No gradio here (llmplay/ui/tabs/evaluate/tab.py lays out and wires the tab)."""

from __future__ import annotations

import html
import json
import logging
import re
from pathlib import Path
from typing import Any

import pandas as pd

from llmplay.engine import GenerationParams
from llmplay.errors import InvalidRequestError
from llmplay.eta import describe as describe_eta
from llmplay.eta import duration as eta_duration
from llmplay.evaluation.config import ColumnConfig, JudgeConfig, MetricConfig, RunConfig
from llmplay.evaluation.progress import RunProgress
from llmplay.evaluation.results import (
    RunResults,
    failure_note,
)
from llmplay.limits import bounds, check_number
from llmplay.templates.versions import parse_ref
from llmplay.ui.decoding import parse_stop

log = logging.getLogger(__name__)

PREVIEW_ROWS = 10
GRID_CHARS = 500  # the grid clips long outputs; the diff and the exports hold them whole
USAGE = ("latency_s", "tokens_per_s", "output_tokens")  # scoreboard lines that are not quality scores
SHOW_CHOICES = [("All rows", "all"), ("Columns disagree", "disagree"), ("A metric failed", "failed")]
DATASET_HEADERS = ["name", "rows", "columns", "variables", "reference", "source", "created"]
RUN_HEADERS = ["id", "name", "status", "dataset", "rows", "columns", "cells", "created", "seconds"]


def _blank(value) -> bool:
    return value is None or str(value).strip() == ""


def dataset_name_for(filename: str) -> str:
    """A valid dataset name from an uploaded file's name."""
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", Path(filename or "").stem).strip("-_")
    return (stem or "dataset")[:64]


def parse_variables(text: str | dict | None) -> dict[str, str]:
    """The variables mapping from its JSON text (template variable -> column); blank means none."""
    if isinstance(text, dict):
        data = text
    elif _blank(text):
        return {}
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidRequestError(
                f'The variables mapping must be JSON like {{"text": "sentence"}}: {exc}'
            ) from None
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise InvalidRequestError('The variables mapping must map template variables to column names: {"text": "col"}.')
    return {str(k): v for k, v in data.items()}


def parse_template_ref(value: str) -> tuple[str, int | None]:
    """``name`` (the current file) or ``name@v3`` / ``name@3`` (a saved version)."""
    return parse_ref(value)


def parse_adapters(text: str | None) -> list[tuple[str, str]]:
    """Lines ``model = adapter folder`` -> (model, folder) pairs; blank lines and ``#`` comments are skipped."""
    pairs = []
    for number, line in enumerate((text or "").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        model, sep, folder = line.partition("=")
        if not sep or not model.strip() or not folder.strip():
            raise InvalidRequestError(f"Adapter line {number} must read 'model = /path/to/adapter'; got {line!r}.")
        pairs.append((model.strip(), folder.strip()))
    return pairs


CONSTRAINED, FREE_AND_CONSTRAINED = "constrained", "free + constrained"
# The Answer mode dropdown: the run config's modes, then constrained decoding (engine/constrained.py) as a choice.
MODE_CHOICES = [
    ("auto", "auto"),
    ("generate", "generate"),
    ("likelihood", "likelihood"),
    ("constrained to the template's JSON Schema", CONSTRAINED),
    ("free and constrained, side by side", FREE_AND_CONSTRAINED),
]


def build_config(
    dataset: str,
    sample=0,
    sample_seed=0,
    templates: list[str] | None = None,
    models: list[str] | None = None,
    adapters: str = "",
    max_new_tokens=64,
    temperature=0.0,
    seed="",
    mode: str = "auto",
    metrics: list[str] | None = None,
    judge: str = "",
    name: str = "",
    top_p=1.0,
    top_k=0,
    repetition_penalty=1.0,
    stop: str = "",
    variables: str | dict | None = "",
    settings=None,
) -> RunConfig:
    """The run the form describes: every template x (model, and model + adapter) is a column. ``variables``
    (template variable -> dataset column) replaces the dataset's saved mapping in every column. Blank optional
    numbers take their defaults; every number is checked against llmplay.limits (``settings``: its limits)."""
    params = GenerationParams(
        max_new_tokens=check_number("max_new_tokens", max_new_tokens, settings=settings),
        temperature=check_number("temperature", temperature, blank=0.0),
        top_p=check_number("top_p", top_p, blank=1.0),
        top_k=check_number("top_k", top_k, blank=0),
        repetition_penalty=check_number("repetition_penalty", repetition_penalty, blank=1.0),
        stop=parse_stop(stop),
        seed=check_number("seed", seed, blank=None),
    )
    params.validate(bounds("max_new_tokens", settings)[1])
    mapping = parse_variables(variables) or None
    targets = [(m, None) for m in models or [] if m] + list(parse_adapters(adapters))
    if not templates:
        raise InvalidRequestError("Choose at least one template.")
    if not targets:
        raise InvalidRequestError("Choose at least one model (or add an adapter line).")
    # The form's constrained choices: columns generating under the template's JSON Schema, alone or beside free ones.
    decodings = {CONSTRAINED: [True], FREE_AND_CONSTRAINED: [False, True]}.get(mode, [False])
    if mode in (CONSTRAINED, FREE_AND_CONSTRAINED):
        mode = "generate"
    columns = []
    for ref in templates:
        template, version = parse_template_ref(ref)
        for model, adapter in targets:
            columns += [
                ColumnConfig(
                    template,
                    model,
                    adapter,
                    params,
                    mode or "auto",
                    template_version=version,
                    variables=mapping,
                    constrained=constrained,
                )
                for constrained in decodings
            ]
    # 0 (or blank) = every row, as the form says.
    size = None if _blank(sample) or sample in (0, "0") else check_number("sample", sample, label="sample size")
    return RunConfig(
        dataset=dataset or "",
        columns=tuple(columns),
        metrics=tuple(MetricConfig(m) for m in metrics or [] if m),
        sample=size or None,  # 0 = every row
        seed=check_number("sample_seed", sample_seed, label="sample seed", blank=0),
        judge=JudgeConfig(judge) if not _blank(judge) else None,
        name=(name or "").strip(),
    )


def progress_dict(progress: RunProgress) -> dict[str, Any]:
    return {
        "run_id": progress.run_id,
        "status": progress.status,
        "done": progress.done,
        "total": progress.total,
        "percent": round(100 * progress.fraction, 1),
        "elapsed_s": round(progress.elapsed_s, 1),
        "eta_s": None if progress.eta_s is None else round(progress.eta_s, 1),
        "generated": progress.generated,
        "cached": progress.cached,
        "failed": progress.failed,
        "finished": progress.finished,
        "error": progress.error,
        "text": progress.describe(),
    }


def duration_text(seconds: float) -> str:
    """``3 min 20 s`` / ``1 h 05 min``: a run's estimated length."""
    return eta_duration(seconds)


def progress_bar_html(progress: RunProgress | None) -> str:
    if progress is None:
        return ""
    percent = 100 * progress.fraction
    colour = {"failed": "#dc2626", "cancelled": "#a3a3a3", "interrupted": "#a3a3a3"}.get(progress.status, "#6366f1")
    eta = f" · {describe_eta(progress.eta_s)}" if progress.eta_s is not None and not progress.finished else ""
    return (
        f'<div class="llmplay-eval-progress" role="progressbar" aria-valuemin="0" aria-valuemax="100" '
        f'aria-valuenow="{percent:.0f}" style="height:10px;border-radius:5px;background:#e5e7eb;overflow:hidden">'
        f'<div style="height:100%;width:{percent:.1f}%;background:{colour}"></div></div>'
        f"<small class='eval-progress-count' data-done='{progress.done}'>{percent:.0f}% · "
        f"{progress.done}/{progress.total} cells{eta}</small>"
    )


def datasets_frame(infos) -> pd.DataFrame:
    rows = [
        [
            d.name,
            d.rows,
            ", ".join(d.columns),
            json.dumps(d.mapping.variables, ensure_ascii=False) if d.mapping.variables else "",
            d.mapping.reference or "",
            d.source,
            d.created_at,
        ]
        for d in infos
    ]
    return pd.DataFrame(rows, columns=DATASET_HEADERS)


def runs_frame(infos) -> pd.DataFrame:
    rows = [
        [
            r.id,
            r.name,
            r.status,
            r.dataset,
            r.rows,
            " | ".join(r.titles),
            f"{r.done_cells}/{r.total_cells}",
            r.created_at,
            r.elapsed_s,
        ]
        for r in infos
    ]
    return pd.DataFrame(rows, columns=RUN_HEADERS)


def _display(df: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """Rounded numbers and no NaN (shown as empty cells), for a gr.Dataframe."""
    if len(df.columns) == 0:
        return _empty()
    if df.empty:
        return df
    out = df.copy()
    for col in out.columns:
        if pd.api.types.is_float_dtype(out[col]):
            out[col] = out[col].round(digits)
    return out.astype(object).where(out.notna(), None)


def grid_widths(frame: pd.DataFrame) -> list[str]:
    """Narrow columns for row numbers and scores, wide ones for texts (Gradio sizes columns by content,
    so a score column under a long title would otherwise wrap its header letter by letter)."""
    widths = []
    for name in frame.columns:
        values = frame[name].dropna()
        numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in values)
        widths.append("60px" if name == "row" else "120px" if numeric else "280px")
    return widths


def quality_lines(board: pd.DataFrame) -> pd.DataFrame:
    """The scoreboard's metric scores (not latency, speed or length, nor metrics that failed)."""
    if board.empty or "score" not in board:
        return board.iloc[0:0]
    return board[~board["metric"].isin(USAGE) & board["score"].notna()]


def bar_chart_svg(board: pd.DataFrame) -> str:
    """Horizontal bars per metric (one per column) with the 95% interval as an error bar, as inline SVG."""
    lines = quality_lines(board)
    if lines.empty:
        return "<p><em>No scores to chart yet.</em></p>"
    label_w, bar_w, text_w, row_h, head_h = 300, 420, 170, 24, 28
    low = min(0.0, float(lines["ci_low"].min()))
    high = max(1.0, float(lines["ci_high"].max()))

    def x(value: float) -> float:
        return label_w + (value - low) / (high - low) * bar_w

    parts, y = [], 0
    for metric, group in lines.groupby("metric", sort=False):
        parts.append(f'<text x="0" y="{y + 17}" font-weight="bold">{html.escape(str(metric))}</text>')
        y += head_h
        for line in group.itertuples(index=False):
            title = str(line.column)
            short = title if len(title) <= 40 else title[:39] + "…"
            mid = y + row_h / 2
            start, end = x(max(low, 0.0)), x(line.score)
            parts += [
                f"<g><title>{html.escape(title)}: {line.score:.3f} "
                f"(95% CI {line.ci_low:.3f} to {line.ci_high:.3f}, n={int(line.n)})</title>",
                f'<text x="0" y="{mid + 4}">{html.escape(short)}</text>',
                f'<rect x="{min(start, end):.1f}" y="{y + 4}" width="{abs(end - start):.1f}" height="{row_h - 8}" '
                'fill="#6366f1" opacity="0.8"/>',
                f'<line x1="{x(line.ci_low):.1f}" x2="{x(line.ci_high):.1f}" y1="{mid}" y2="{mid}" '
                'stroke="currentColor"/>',
                f'<line x1="{x(line.ci_low):.1f}" x2="{x(line.ci_low):.1f}" y1="{mid - 5}" y2="{mid + 5}" '
                'stroke="currentColor"/>',
                f'<line x1="{x(line.ci_high):.1f}" x2="{x(line.ci_high):.1f}" y1="{mid - 5}" y2="{mid + 5}" '
                'stroke="currentColor"/>',
                f'<text x="{label_w + bar_w + 8}" y="{mid + 4}">{line.score:.3f} '
                f"[{line.ci_low:.2f}, {line.ci_high:.2f}]</text></g>",
            ]
            y += row_h
        y += 6
    width = label_w + bar_w + text_w
    axis = f'<line x1="{x(0):.1f}" x2="{x(0):.1f}" y1="0" y2="{y}" stroke="#9ca3af" stroke-dasharray="2,2"/>'
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{y}" viewBox="0 0 {width} {y}" '
        f'font-family="sans-serif" font-size="13" fill="currentColor" role="img" '
        f'aria-label="scores with 95% intervals">{axis}{"".join(parts)}</svg>'
    )
    return (
        f'<figure class="llmplay-eval-chart" style="margin:0;overflow-x:auto">{svg}'
        f"<figcaption><small>Bars: score (scale {low:g} to {high:g}); lines: 95% bootstrap interval.</small>"
        "</figcaption></figure>"
    )


def describe_run(info) -> str:
    lines = [
        f"**Run #{info.id} · {info.name}** · {info.status} · dataset **{info.dataset}** · {info.rows} rows · "
        f"{info.done_cells}/{info.total_cells} cells ({info.cached_cells} from cache, {info.failed_cells} failed) · "
        f"{info.created_at}"
    ]
    if info.error:
        lines.append(f"⚠️ {info.error}")
    columns = (info.summary or {}).get("columns", [])
    for i, title in enumerate(info.titles, 1):
        col = columns[i - 1] if i <= len(columns) else {}
        lines.append(f"{i}. {title}" + (f" · ⚠️ {failure_note(col)}" if col.get("failed") else ""))
    return "\n".join(lines)


def _column_index(results: RunResults, number, what: str) -> int:
    """A 1-based column number (from the API or a picker) as a 0-based index."""
    if _blank(number):
        raise InvalidRequestError(f"Choose column {what}.")
    return check_number("column", number, label=f"column {what}", high=len(results.titles)) - 1


def _cell_text(results: RunResults, row: int, column: int) -> str:
    cell = results.cells.get((row, column))
    if cell is None:
        return "(not run)"
    return f"⚠️ {cell.error}" if cell.error is not None else (cell.text or "")


def changed_rows_frame(results: RunResults, comparison, a: int, b: int) -> pd.DataFrame:
    """The rows where b scored higher (better) or lower (worse) than a, with both outputs."""
    inputs = results.input_columns()
    rows = []
    for change, numbers in (("better", comparison.difference.better), ("worse", comparison.difference.worse)):
        for r in numbers:
            rows.append(
                {
                    "row": r,
                    "change": change,
                    **{col: results.rows[r].get(col) for col in inputs},
                    "reference": results.reference(r),
                    "a output": _cell_text(results, r, a),
                    "b output": _cell_text(results, r, b),
                    "a score": results.cells[(r, a)].scores.get(comparison.metric),
                    "b score": results.cells[(r, b)].scores.get(comparison.metric),
                }
            )
    columns = ["row", "change", *inputs, "reference", "a output", "b output", "a score", "b score"]
    return pd.DataFrame.from_records(rows, columns=columns)


def _empty() -> pd.DataFrame:
    return pd.DataFrame(columns=["(nothing to show)"])  # Gradio shows an empty frame's headers as 1, 2, 3


def _no_preview() -> pd.DataFrame:
    return pd.DataFrame(columns=["(upload a file to see its first rows here)"])
