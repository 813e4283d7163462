"""Task slices of a line: the setting's checks, one gate per task that names the task it forgot, and the task x
version matrix with backward transfer that the Loop tab draws from stored gate results."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from llmplay.evaluation.stats import Interval
from llmplay.loop.lines import LineSettings, LoopError
from llmplay.loop.tasks import line_matrix, task_gates, task_problems
from llmplay.ui.tabs.loop import view

TASKS = [
    {"name": "sentiment", "dataset": "fpb-heldout", "template": "financial-sentiment"},
    {"name": "intents", "dataset": "clinc-heldout", "margin": 0.05},
]


def test_the_tasks_setting_is_checked_at_the_edge():
    assert task_problems(TASKS) == []
    assert LineSettings.from_dict({"tasks": TASKS}).tasks == TASKS
    problems = task_problems(
        [
            {"name": "a", "dataset": "d"},
            {"name": "a", "dataset": "d2"},
            {"dataset": "d3", "margin": 2},
            {"name": "b", "dataset": "d", "weight": 1},
            "sentiment",
        ]
    )
    assert problems == [
        "task 'a' is listed twice",
        "task #3 needs a name (text)",
        "task #3: margin must be a number from 0 to 1, not 2",
        "task #4: unknown field(s) weight; known: name, dataset, template, margin",
        "task #5 must be a mapping with name and dataset, not 'sentiment'",
    ]
    with pytest.raises(LoopError, match="tasks must be a list"):
        LineSettings.from_dict({"tasks": "sentiment"})


def test_each_task_is_gated_and_a_forgotten_one_is_named():
    line = SimpleNamespace(template="line-template", settings=LineSettings(tasks=TASKS, regression_margin=0.02))
    asked = []

    def compare(dataset, template, metric):  # sentiment dropped 0.10, intents 0.03 (within its own 0.05)
        asked.append((dataset, template, metric))
        drop = {"fpb-heldout": -0.10, "clinc-heldout": -0.03}[dataset]
        return 7, Interval(drop, drop - 0.05, drop + 0.05, 40), 0.8, 0.8 + drop

    gates = task_gates(line, compare, lambda template: f"metric-of-{template}", "active", "candidate")
    assert asked == [
        ("fpb-heldout", "financial-sentiment", "metric-of-financial-sentiment"),
        ("clinc-heldout", "line-template", "metric-of-line-template"),  # no template: the line's
    ]
    sentiment, intents = gates
    assert (sentiment.gate, sentiment.task, sentiment.passed) == ("task", "sentiment", False)
    assert sentiment.reason.startswith("task 'sentiment' forgot: metric-of-financial-sentiment on 'fpb-heldout'")
    assert "allowed 0.020" in sentiment.reason  # the line's regression_margin
    assert intents.passed and intents.reason == "" and intents.difference == pytest.approx(-0.03)


def _update(i, status, **scores):
    gates = [{"gate": "task", "task": t, "candidate": v} for t, v in scores.items()]
    gates.append({"gate": "probe_task", "candidate": 0.5, "baseline": 0.5})
    return SimpleNamespace(id=i, status=status, gates=gates)


def test_the_matrix_and_backward_transfer_come_from_the_stored_gates():
    updates = [
        _update(1, "promoted", sentiment=0.80),  # the line has just learned sentiment
        _update(2, "rejected", sentiment=0.40, intents=0.70),  # forgot: rejected, not a version
        _update(3, "promoted", sentiment=0.75, intents=0.90),  # the intents slice: the line learned intents
        _update(4, "promoted", sentiment=0.70, intents=0.85, entities=0.60),
    ]
    m = line_matrix(updates)
    assert m.tasks == ["sentiment", "intents", "entities"]
    assert m.columns == ["#1 promoted", "#2 rejected", "#3 promoted", "#4 promoted"]
    assert m.scores[1] == [None, 0.70, 0.90, 0.85]
    # over the promoted versions only: sentiment 0.80 -> 0.70, intents 0.90 -> 0.85
    assert m.backward == pytest.approx({"sentiment": -0.10, "intents": -0.05})
    assert m.mean_backward == pytest.approx(-0.075)
    frame, note = view.task_matrix(updates)
    assert list(frame.columns) == ["task", *m.columns] and frame.iloc[2, 1] == "–"
    assert "sentiment -0.100, intents -0.050" in note and "mean **-0.075**" in note
    assert view.task_matrix([_update(1, "promoted")])[1] == view.TASKS_EMPTY


def test_the_timeline_lists_each_task_gate():
    update = SimpleNamespace(
        id=5, started_at="2026-12-06T10:00:00", status="rejected", stage=None, trigger="rows", feedback_ids=[1],
        replay_ids=[], general_ids=[], heldout_ids=[], reasons=["task 'sentiment' forgot"], error=None,
        promoted_by=None, candidate_version_id=None,
        gates=[{"gate": "task", "task": "sentiment", "metric": "accuracy", "baseline": 0.8, "candidate": 0.6,
                "difference": -0.2, "low": -0.3, "high": -0.1, "n": 20, "passed": False, "run_id": 3}],
    )  # fmt: skip
    (row,) = view.timeline_rows([update], {})
    cell = dict(zip(view.TIMELINE_HEADERS, row, strict=True))[view.TASKS_TITLE]
    assert cell.startswith("sentiment: ✗ fail · accuracy 0.800 → 0.600 (-0.200")


def test_an_item_of_another_task_trains_on_its_own_prompt_not_the_lines_template():
    """A line that learns several tasks: an item rendered with another template keeps the prompt inference
    gave it; an item of the line's template (any version) is rendered through it."""
    from llmplay.loop.data import messages_for
    from llmplay.templates.model import parse_template

    template = parse_template("name: sentiment\ntask: classification\nvariables: [text]\nbody: 'Sentiment: {{ text }}'")
    own = SimpleNamespace(template="sentiment@v2", input={"text": "Profit rose."}, prompt="ignored")
    other = SimpleNamespace(
        template="intent-detection", input={"text": "my card was declined"},
        prompt=[{"role": "user", "content": "Which intent? my card was declined"}],
    )  # fmt: skip
    assert messages_for(own, template, "positive") == [
        {"role": "user", "content": "Sentiment: Profit rose."},
        {"role": "assistant", "content": "positive"},
    ]
    assert messages_for(other, template, "card_declined") == [
        {"role": "user", "content": "Which intent? my card was declined"},
        {"role": "assistant", "content": "card_declined"},
    ]
