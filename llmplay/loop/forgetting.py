"""What a line kept of each task it learned: the accuracy matrix of a task sequence, average accuracy and backward
transfer (the continual-learning protocol of Lopez-Paz & Ranzato, 2017, "Gradient Episodic Memory").

A line learns tasks one after another, each through one or more updates. After every update (a *stage*) every
task seen so far is scored on its held-out rows: ``acc[s][t]`` is task ``t``'s accuracy after stage ``s`` (None
for a task not learned yet). Then:

- ``average_accuracy``: the mean over the tasks of their accuracy after the last stage;
- ``backward_transfer``: for each task but the newest, its accuracy after the last stage minus its accuracy right
  after the last update that trained it; negative = forgotten. Their mean is the protocol's BWT.

Standard library only: the bench, the Loop tab and the gates share it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AccuracyMatrix:
    tasks: tuple[str, ...]  # in the order the line learned them
    stages: tuple[str, ...]  # one per update, e.g. the version it made
    trained: tuple[int, ...]  # per stage: the index of the task that update trained on
    acc: tuple[tuple[float | None, ...], ...]  # [stage][task]

    def __post_init__(self) -> None:
        problems = []
        if len(self.stages) != len(self.trained) or len(self.acc) != len(self.stages):
            problems.append("one trained task and one row of accuracies per stage")
        if any(len(row) != len(self.tasks) for row in self.acc):
            problems.append(f"every row has one accuracy per task ({len(self.tasks)})")
        if any(not 0 <= t < len(self.tasks) for t in self.trained):
            problems.append("trained tasks are indices of tasks")
        elif list(self.trained) != sorted(self.trained):
            problems.append("tasks are learned in order: a stage never goes back to an earlier task")
        for s, row in enumerate(self.acc):
            for t, value in enumerate(row):
                seen = t <= (self.trained[s] if s < len(self.trained) else -1)
                if seen and (value is None or not 0.0 <= value <= 1.0):
                    problems.append(f"stage {s}: task {self.tasks[t]!r} is learned, so its accuracy is in [0, 1]")
        if problems:
            raise ValueError("Invalid accuracy matrix: " + "; ".join(dict.fromkeys(problems)) + ".")

    def learned_at(self, task: int) -> int:
        """The last stage that trained ``task``."""
        return max(s for s, t in enumerate(self.trained) if t == task)

    def seen(self) -> list[int]:
        """The tasks learned by the last stage."""
        return list(range(self.trained[-1] + 1)) if self.trained else []


def average_accuracy(m: AccuracyMatrix) -> float:
    final = m.acc[-1]
    seen = m.seen()
    return sum(final[t] for t in seen) / len(seen)


def backward_transfer(m: AccuracyMatrix) -> dict[str, float]:
    """Per earlier task: its final accuracy minus its accuracy right after it was learned (negative = forgot)."""
    final = m.acc[-1]
    return {m.tasks[t]: final[t] - m.acc[m.learned_at(t)][t] for t in m.seen()[:-1]}


def mean_backward_transfer(m: AccuracyMatrix) -> float | None:
    """The protocol's BWT: the mean over the earlier tasks (None with a single task: nothing to forget)."""
    per_task = backward_transfer(m)
    return sum(per_task.values()) / len(per_task) if per_task else None
