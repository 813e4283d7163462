"""Gates that see every task a line has learned, and the accuracy matrix they draw.

A line that learns one task after another (financial sentiment, then intents, then entities...) keeps a held-out
slice per task in its settings: ``tasks: [{name, dataset, template, margin}]`` (template: default the line's;
margin: default ``regression_margin``). Add a task's slice once the line has learned it. Every update's candidate
is then scored against the active version on each slice, through the evaluation runner like the other gates, and
is rejected when any task drops beyond its margin: the reason names the task.

Those gate results, update after update, are the continual-learning accuracy matrix (task x version) of the
line: ``line_matrix`` reads it from the stored updates for the Loop tab, with each earlier task's backward
transfer (llmplay/loop/forgetting.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from llmplay.errors import short
from llmplay.loop.forgetting import AccuracyMatrix, backward_transfer, mean_backward_transfer

MAX_TASKS = 20
TASK_FIELDS = ("name", "dataset", "template", "margin")
GATE = "task"


@dataclass(frozen=True)
class TaskSet:
    name: str
    dataset: str
    template: str | None = None  # None: the line's template
    margin: float | None = None  # None: the line's regression_margin


def task_problems(raw) -> list[str]:
    """Every problem with a line's ``tasks`` setting (empty: valid)."""
    if not isinstance(raw, list):
        return [f"tasks must be a list of {{name, dataset, template, margin}}, not {short(raw)}"]
    if len(raw) > MAX_TASKS:
        return [f"tasks: at most {MAX_TASKS} task slices, not {len(raw)}"]
    problems, seen = [], set()
    for i, task in enumerate(raw, 1):
        if not isinstance(task, dict):
            problems.append(f"task #{i} must be a mapping with name and dataset, not {short(task)}")
            continue
        extra = sorted(set(map(str, task)) - set(TASK_FIELDS))
        if extra:
            problems.append(f"task #{i}: unknown field(s) {', '.join(extra)}; known: {', '.join(TASK_FIELDS)}")
        for key in ("name", "dataset"):
            if not isinstance(task.get(key), str) or not task[key].strip():
                problems.append(f"task #{i} needs a {key} (text)")
        if task.get("template") is not None and not isinstance(task["template"], str):
            problems.append(f"task #{i}: template must be a template name")
        margin = task.get("margin")
        if margin is not None and (
            isinstance(margin, bool) or not isinstance(margin, int | float) or not 0 <= margin <= 1
        ):
            problems.append(f"task #{i}: margin must be a number from 0 to 1, not {short(margin)}")
        name = task.get("name")
        if isinstance(name, str):
            if name in seen:
                problems.append(f"task {short(name)} is listed twice")
            seen.add(name)
    return problems


def task_sets(raw: list[dict]) -> list[TaskSet]:
    """The validated ``tasks`` setting as TaskSets."""
    return [TaskSet(t["name"].strip(), t["dataset"].strip(), t.get("template"), t.get("margin")) for t in raw]


def task_gates(line, compare: Callable, metric_of: Callable[[str], str], active: str, candidate: str) -> list:
    """One gate per task slice: candidate - active on the task's metric may drop at most its margin.
    ``compare(dataset, template, metric)`` runs the pair and returns (run id, interval, active mean, candidate
    mean); ``metric_of(template)`` is the template's scored metric."""
    from llmplay.loop.gates import GateResult

    results = []
    for task in task_sets(line.settings.tasks):
        template = task.template or line.template
        margin = line.settings.regression_margin if task.margin is None else task.margin
        metric = metric_of(template)
        run_id, iv, base, cand = compare(task.dataset, template, metric)
        ok = iv.estimate >= -margin
        why = "" if ok else (
            f"task {task.name!r} forgot: {metric} on {task.dataset!r} dropped by {-iv.estimate:.3f} "
            f"(95% CI {iv.low:+.3f} to {iv.high:+.3f}; allowed {margin:.3f})"
        )  # fmt: skip
        results.append(
            GateResult(GATE, metric, base, cand, iv.estimate, iv.low, iv.high, iv.n, ok, why, run_id, task=task.name)
        )
    return results


# ---- the matrix the Loop tab draws ------------------------------------------------------------------------------


@dataclass(frozen=True)
class LineMatrix:
    tasks: list[str]  # in the order the line's gates first measured them
    columns: list[str]  # one per update with task figures: "#12 promoted" ...
    scores: list[list[float | None]]  # [task][column]: the candidate's score on the task's slice
    backward: dict[str, float]  # per earlier task, over the promoted versions (negative = forgotten)
    mean_backward: float | None


def line_matrix(updates: list) -> LineMatrix:
    """The task gates of ``updates`` (oldest first) as a task x update matrix, and the backward transfer of the
    versions that became active: a task's score when the next task's slice was added (the line had just learned
    it) against its score in the last promoted version."""
    stages, tasks = [], []
    for u in sorted(updates, key=lambda u: u.id):
        figures = {
            g["task"]: g["candidate"] for g in u.gates if g.get("gate") == GATE and g.get("candidate") is not None
        }
        if not figures:
            continue
        tasks += [t for t in figures if t not in tasks]
        stages.append((u, figures))
    columns = [f"#{u.id} {u.status}" for u, _ in stages]
    scores = [[figures.get(t) for _, figures in stages] for t in tasks]
    backward, mean = {}, None
    promoted = [(u, figures) for u, figures in stages if u.status == "promoted"]
    if promoted:
        trained = [max(tasks.index(t) for t in figures) for _, figures in promoted]
        acc = [tuple(figures.get(t) for t in tasks) for _, figures in promoted]
        try:
            matrix = AccuracyMatrix(tuple(tasks), tuple(f"#{u.id}" for u, _ in promoted), tuple(trained), tuple(acc))
            backward, mean = backward_transfer(matrix), mean_backward_transfer(matrix)
        except ValueError:  # slices removed or reordered by hand: the matrix stands, the summary does not
            pass
    return LineMatrix(tasks, columns, scores, backward, mean)
