"""Average accuracy and backward transfer on hand-made accuracy matrices, where the answer is known."""

from __future__ import annotations

import pytest

from llmplay.loop.forgetting import AccuracyMatrix, average_accuracy, backward_transfer, mean_backward_transfer

N = None
# sentiment learned in two updates, intents in one, entities in two; each row: after that update
MATRIX = AccuracyMatrix(
    tasks=("sentiment", "intents", "entities"),
    stages=("v1", "v2", "v3", "v4", "v5"),
    trained=(0, 0, 1, 2, 2),
    acc=(
        (0.70, N, N),
        (0.90, N, N),  # sentiment right after it was learned: 0.90
        (0.80, 0.60, N),  # intents right after: 0.60
        (0.75, 0.55, 0.40),
        (0.72, 0.50, 0.65),
    ),
)


def test_backward_transfer_compares_each_earlier_task_with_its_score_right_after_it_was_learned():
    per_task = backward_transfer(MATRIX)
    assert per_task == pytest.approx({"sentiment": 0.72 - 0.90, "intents": 0.50 - 0.60})
    assert "entities" not in per_task  # the newest task has nothing to forget yet
    assert mean_backward_transfer(MATRIX) == pytest.approx(((0.72 - 0.90) + (0.50 - 0.60)) / 2)
    assert average_accuracy(MATRIX) == pytest.approx((0.72 + 0.50 + 0.65) / 3)


def test_a_line_that_gains_on_old_tasks_has_positive_transfer_and_one_task_has_none():
    gained = AccuracyMatrix(("a", "b"), ("v1", "v2"), (0, 1), ((0.5, N), (0.6, 0.7)))
    assert backward_transfer(gained) == pytest.approx({"a": 0.1})
    single = AccuracyMatrix(("a",), ("v1", "v2"), (0, 0), ((0.5,), (0.8,)))
    assert mean_backward_transfer(single) is None and average_accuracy(single) == 0.8


@pytest.mark.parametrize(
    "kwargs, says",
    [
        ({"trained": (1, 0, 1)}, "learned in order"),
        ({"acc": ((0.5, N), (N, 0.6), (0.4, 0.6))}, "so its accuracy is in"),
        ({"acc": ((0.5, N), (1.5, 0.6), (0.4, 0.6))}, "so its accuracy is in"),
        ({"stages": ("v1",)}, "one row of accuracies per stage"),
        ({"acc": ((0.5,), (0.6, 0.7), (0.4, 0.6))}, "one accuracy per task"),
    ],
)
def test_a_malformed_matrix_is_refused(kwargs, says):
    base = {"tasks": ("a", "b"), "stages": ("v1", "v2", "v3"), "trained": (0, 1, 1)}
    base["acc"] = ((0.5, N), (0.6, 0.7), (0.4, 0.6))
    with pytest.raises(ValueError, match=says):
        AccuracyMatrix(**{**base, **kwargs})
