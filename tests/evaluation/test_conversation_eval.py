"""`llmplay eval` on the shipped conversations example with the bundled chat model: each conversation is played
turn by turn after the model's own replies, every cell shows the transcript and carries its turn metrics, and the
exit code follows the threshold."""

from __future__ import annotations

import json

import pytest

from llmplay.feedback.eval_rows import create_eval_queue, queue_eval_rows
from llmplay.settings import Settings
from llmplay.store import connect
from llmplay.templates.conversation import read_script
from tests.evaluation.examples import assert_scored_rows

METRICS = ["turn_pass", "conversation_pass"]


@pytest.mark.slow
def test_the_conversations_example_plays_each_turn_and_scores_it(run_example):
    # the shipped example on 4 of its 12 conversations, shorter replies (CI time)
    run = run_example("conversations", sample=4, params={"max_new_tokens": 24})
    (column,) = run.columns
    assert run.report["status"] == "done"
    (check,) = run.report["checks"]
    assert check["metric"] == "turn_pass" and run.code == (0 if check["passed"] else 1)
    assert check["passed"] == (column["metrics"]["turn_pass"]["score"] >= 0.3)
    assert_scored_rows(run, METRICS, 4)
    results = run.results()
    for (row, _), cell in results.cells.items():
        exchanges = read_script(results.rows[row]["messages"])
        replies = json.loads(cell.answer)
        assert len(replies) == len(exchanges) and all(isinstance(r, str) for r in replies)
        # the grid's text is the conversation: every user turn, then the model's own reply to it
        for k, (exchange, reply) in enumerate(zip(exchanges, replies), 1):
            assert f"[{k}] User: {exchange.user}\n[{k}] Assistant: {reply}" in cell.text
    # the conversations that failed a turn go to labeling as the run's "wrong" rows, transcript and all
    wrong = [r for r in range(4) if results.cells[(r, 0)].scores["turn_pass"] < 1]
    with connect(Settings.from_env(data_dir=run.data).db_path) as db:
        create_eval_queue(db, run.report["run_id"], "chat-review", "correction", user="lead")
        queued = queue_eval_rows(db, run.report["run_id"], "chat-review", which="wrong", user="lead")
    assert list(queued.rows) == wrong and queued.added == len(wrong)
