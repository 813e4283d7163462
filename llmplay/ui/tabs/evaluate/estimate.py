"""The Evaluate form's estimate: before a run starts, how long it should take on this machine, from the seconds
per cell measured for each model and mode in earlier runs (llmplay/evaluation/rates.py). Likelihood mode on a
busy machine took 9-11 s a row against 0.6 s for generate: the form says so before the wait, not during it."""

from __future__ import annotations

from llmplay.evaluation import rates
from llmplay.ui.tabs.evaluate.view import build_config, duration_text


def run_estimate(runner, settings, dataset, sample=0, templates=None, models=None, adapters="", mode="auto") -> str:
    """Markdown for the form: the estimate of a run that should take longer than rates.LONG_S, a note when a
    model and mode were never measured here, ``""`` while the form is incomplete or the run is short."""
    try:
        config = build_config(dataset, sample, 0, templates, models, adapters, mode=mode, settings=settings)
        plan = runner.plan(config)
    except Exception:  # an incomplete form: the Start button says what is missing
        return ""
    return describe_estimate(settings.data_dir, [(c.spec.name, c.mode, c.dtype) for c in plan.columns], len(plan.rows))


def describe_estimate(data_dir, columns: list[tuple[str, str, str | None]], rows: int) -> str:
    seconds, unknown = rates.estimate(data_dir, columns, rows)
    cells = rows * len(columns)
    if unknown:
        return (
            f"ℹ️ {cells} cells; no speed measured yet on this machine for {', '.join(unknown)}: the progress "
            "shows the time left once the first cells finish."
        )
    if seconds < rates.LONG_S:
        return ""
    measured = [
        f"{name} ({mode}) ~{rates.seconds_per_cell(data_dir, name, mode, dtype):.1f} s a cell"
        for name, mode, dtype in dict.fromkeys(columns)
    ]
    return (
        f"⏳ This run should take about **{duration_text(seconds)}** on this machine ({cells} cells; measured: "
        f"{'; '.join(measured)}). Cells run before come from the cache and go faster."
    )
