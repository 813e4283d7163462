"""The gates a candidate version must pass before it becomes active (through the evaluation runner: batched,
cached, the same paired bootstrap the Evaluate tab shows).

(a) feedback: held-out accepted feedback of the line (never trained on), line template; candidate - active
    must be at least ``feedback_min_gain``.
(b) regression: the admin's frozen dataset + template; candidate - active may drop at most
    ``regression_margin`` (skipped, and said so, when the line has none); and the same for each task slice the
    line keeps (``tasks``, loop/tasks.py), so a candidate that forgets an earlier task is rejected by name.
(c) probe: llmplay's general probe (probe.py) against the BASE model, so forgetting cannot creep in one small
    step per update: task accuracy may drop at most ``probe_task_margin``, perplexity may rise at most
    ``probe_ppl_margin`` (relative).
A difference is judged on its point estimate; the 95% interval is stored and shown with it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import partial

import pandas as pd

from llmplay.backend_names import REFERENCE
from llmplay.datasets import ColumnMapping, save_dataset
from llmplay.engine.types import GenerationParams
from llmplay.evaluation.config import ColumnConfig, MetricConfig, RunConfig
from llmplay.evaluation.results import compare_columns, load_results
from llmplay.loop import probe
from llmplay.loop.data import UpdateData, same_template
from llmplay.loop.lines import Line
from llmplay.loop.tasks import task_gates

MIN_HELDOUT = 5
ANSWER = "answer"
SCORED = ("accuracy", "exact_match", "numeric_match", "entity_f1", "macro_f1", "chrf", "rouge", "bleu")


@dataclass
class GateResult:
    gate: str  # feedback | regression | probe_task | probe_perplexity | probe_reply
    metric: str
    baseline: float | None  # active (a, b) or base (c)
    candidate: float | None
    difference: float | None
    low: float | None = None
    high: float | None = None
    n: int = 0
    passed: bool = False
    reason: str = ""
    run_id: int | None = None
    skipped: bool = False
    task: str = ""  # gate "task": which of the line's task slices (loop/tasks.py)

    def to_dict(self) -> dict:
        return asdict(self)


def template_metric(library, template_ref: str) -> str:
    from llmplay.templates import load_template

    template, _ = load_template(library, template_ref)
    return next((m for m in template.metrics if m in SCORED), "exact_match")


def _compare(runner, settings, dataset: str, template: str, baseline: str, candidate: str, metric: str, s, args=None):
    params = GenerationParams(max_new_tokens=s.max_new_tokens)
    config = RunConfig(
        dataset=dataset,
        columns=(
            # one backend for both (a new version has no ONNX export yet): transformers, the reference
            ColumnConfig(
                template=template, model=baseline, params=params, mode="generate", label="baseline", backend=REFERENCE
            ),
            ColumnConfig(
                template=template, model=candidate, params=params, mode="generate", label="candidate", backend=REFERENCE
            ),
        ),
        metrics=(MetricConfig(metric, args=args or {}),),
        name=f"loop gate: {dataset}",
    )
    run_id = runner.run(config)
    results = load_results(settings, run_id)
    cmp = compare_columns(results, 0, 1, metric)
    base_scores = results.column_scores(0, metric)
    cand_scores = results.column_scores(1, metric)
    mean = lambda xs: sum(xs) / len(xs) if xs else None  # noqa: E731
    return run_id, cmp.interval, mean(base_scores), mean(cand_scores)


def heldout_dataset(settings, line: Line, data: UpdateData, update_id: int, library) -> tuple[str | None, int]:
    """Save the held-out items that carry the template's variables as a dataset; (name, rows)."""
    from llmplay.templates import load_template

    template, _ = load_template(library, line.template)
    names = [v.name for v in template.variables]
    rows = [
        {**{n: a.item.input.get(n, "") for n in names}, ANSWER: a.value}
        for a in data.heldout  # another task's items (another template) are judged by that task's slice
        if a.item.input and all(n in a.item.input for n in names if n) and same_template(a.item, line.template)
    ]
    if len(rows) < MIN_HELDOUT:
        return None, len(rows)
    frame = pd.DataFrame(rows, columns=[*names, ANSWER], dtype=object)
    name = f"loop-{line.name}-heldout-{update_id}"[:64]
    save_dataset(settings, name, frame, ColumnMapping({n: n for n in names}, ANSWER), source="loop held-out feedback")
    return name, len(rows)


def run_gates(engine, runner, line: Line, active: str, candidate: str, data: UpdateData, update_id: int) -> list:
    s, settings, library = line.settings, engine.settings, runner.library
    results: list[GateResult] = []

    # (a) held-out feedback
    metric = template_metric(library, line.template)
    dataset, n = heldout_dataset(settings, line, data, update_id, library)
    if not s.heldout_fraction:  # the admin chose no feedback gate
        results.append(GateResult("feedback", metric, None, None, None, passed=True, skipped=True,
                                  reason="heldout_fraction is 0: no feedback gate"))  # fmt: skip
    elif dataset is None:
        results.append(
            GateResult(
                "feedback", metric, None, None, None, n=n,
                reason=f"only {n} held-out feedback rows with the template's variables (need {MIN_HELDOUT}); "
                "collect more feedback or raise heldout_fraction",
            )
        )  # fmt: skip
    else:
        run_id, iv, base, cand = _compare(runner, settings, dataset, line.template, active, candidate, metric, s)
        ok = iv.estimate >= s.feedback_min_gain
        why = (
            ""
            if ok
            else f"{metric} on held-out feedback changed by {iv.estimate:+.3f} (needs ≥ {s.feedback_min_gain:+.3f})"
        )
        results.append(GateResult("feedback", metric, base, cand, iv.estimate, iv.low, iv.high, iv.n, ok, why, run_id))

    # (b) regression set
    if s.regression_dataset:
        template = s.regression_template or line.template
        metric_b = template_metric(library, template)
        run_id, iv, base, cand = _compare(
            runner, settings, s.regression_dataset, template, active, candidate, metric_b, s
        )
        ok = iv.estimate >= -s.regression_margin
        why = "" if ok else (
            f"{metric_b} on regression set {s.regression_dataset!r} dropped by {-iv.estimate:.3f} "
            f"(95% CI {iv.low:+.3f} to {iv.high:+.3f}; allowed {s.regression_margin:.3f})"
        )  # fmt: skip
        results.append(
            GateResult("regression", metric_b, base, cand, iv.estimate, iv.low, iv.high, iv.n, ok, why, run_id)
        )
    else:
        results.append(
            GateResult(
                "regression", "-", None, None, None, passed=True, skipped=True, reason="no regression set chosen"
            )
        )

    # (b') each task the line has learned, on its own held-out slice (loop/tasks.py)
    def compare_task(dataset: str, template: str, metric: str):
        return _compare(runner, settings, dataset, template, active, candidate, metric, s)

    results += task_gates(line, compare_task, partial(template_metric, library), active, candidate)

    # (c) general probe, against the base model
    probe_set = probe.ensure_probe_dataset(settings)
    run_id, iv, base, cand = _compare(
        runner, settings, probe_set, probe.PROBE_TEMPLATE, line.base_model, candidate, "exact_match", s,
        args={"ignore_case": True},
    )  # fmt: skip
    ok = iv.estimate >= -s.probe_task_margin
    why = (
        ""
        if ok
        else f"general probe accuracy dropped by {-iv.estimate:.3f} vs the base (allowed {s.probe_task_margin:.3f})"
    )
    results.append(
        GateResult("probe_task", "exact_match", base, cand, iv.estimate, iv.low, iv.high, iv.n, ok, why, run_id)
    )
    for gate, measure, what in (
        ("probe_perplexity", partial(probe.perplexity, engine), "general-text perplexity"),
        ("probe_reply", partial(probe.reply_drift, engine, line.base_model), "perplexity of the base's own replies"),
    ):
        base_ppl, cand_ppl = measure(line.base_model), measure(candidate)
        rise = cand_ppl / base_ppl - 1
        ok = rise <= s.probe_ppl_margin
        why = "" if ok else (
            f"{what} rose {rise:.1%} vs the base ({base_ppl:.2f} → {cand_ppl:.2f}; allowed {s.probe_ppl_margin:.0%})"
        )  # fmt: skip
        results.append(GateResult(gate, "perplexity", base_ppl, cand_ppl, rise, passed=ok, reason=why))
    return results
