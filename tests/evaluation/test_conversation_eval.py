"""`llmplay eval` on the shipped conversations example with the bundled chat model: each conversation is played
turn by turn after the model's own replies, every cell shows the transcript and carries its turn metrics, and the
exit code follows the threshold."""

from __future__ import annotations

import json

import pytest
import yaml

from llmplay.cli import main
from llmplay.evaluation.results import load_results
from llmplay.settings import Settings
from llmplay.templates.conversation import read_script
from tests.conftest import ROOT


@pytest.mark.slow
def test_the_conversations_example_plays_each_turn_and_scores_it(tmp_path, model_cache_dir, monkeypatch, capsys):
    monkeypatch.setenv("LLMPLAY_CACHE_DIR", str(model_cache_dir))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    config = yaml.safe_load((ROOT / "evals" / "conversations.yaml").read_text())
    config["sample"] = 4  # the shipped example, on 4 of its 12 conversations (CI time)
    config["params"] = {"max_new_tokens": 24}
    path = tmp_path / "conversations.yaml"
    path.write_text(yaml.safe_dump(config))
    data = tmp_path / "data"
    argv = ["--data-dir", str(data), "eval", str(path), "--prompts-dir", str(ROOT / "prompts"), "--quiet", "--json"]
    code = main(argv)
    report = json.loads(capsys.readouterr().out)
    column = report["summary"]["columns"][0]
    assert report["status"] == "done" and column["n"] == 4 and column["metric_errors"] == {}
    (check,) = report["checks"]
    assert check["metric"] == "turn_pass" and code == (0 if check["passed"] else 1)
    assert check["passed"] == (column["metrics"]["turn_pass"]["score"] >= 0.3)
    results = load_results(Settings.from_env(data_dir=data), report["run_id"])
    for (row, _), cell in results.cells.items():
        exchanges = read_script(results.rows[row]["messages"])
        replies = json.loads(cell.answer)
        assert len(replies) == len(exchanges) and all(isinstance(r, str) for r in replies)
        # the grid's text is the conversation: every user turn, then the model's own reply to it
        for k, (exchange, reply) in enumerate(zip(exchanges, replies), 1):
            assert f"[{k}] User: {exchange.user}\n[{k}] Assistant: {reply}" in cell.text
        assert set(cell.scores) == {"turn_pass", "conversation_pass"}
    scores = results.column_scores(0, "turn_pass")
    assert sum(scores) / len(scores) == pytest.approx(column["metrics"]["turn_pass"]["score"])
