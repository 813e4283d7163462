"""Failed cells are not wrong answers: a real run where one column's adapter folder does not exist and the
other column works, except on one row that is too long to send. Failed cells are counted and left out of
every score; a column where every cell failed is marked failed, in the summary, the scoreboard, the CLI's
table and the Evaluate tab's description."""

from __future__ import annotations

import pandas as pd

from llmplay.datasets import ColumnMapping, save_dataset
from llmplay.engine import GenerationParams
from llmplay.evaluation.cli import format_summary
from llmplay.evaluation.config import ColumnConfig, MetricConfig, RunConfig
from llmplay.evaluation.results import get_run, load_results, scoreboard
from llmplay.ui.tabs.evaluate.view import describe_run
from tests.conftest import CHAT_MODEL
from tests.evaluation.test_runs import runner  # noqa: F401 - the module's runner fixture, reused

ROWS = [
    ("Quarterly profit rose 30% and the company raised its dividend.", "positive"),
    ("The firm swung to a loss and will cut 500 jobs.", "negative"),
]


def test_failed_cells_are_counted_and_never_scored(runner, engine, tmp_path):  # noqa: F811
    too_long = "word " * (engine.settings.max_input_chars // 5 + 10)  # refused by the engine: a failed cell
    df = pd.DataFrame([*ROWS, (too_long, "neutral")], columns=["text", "label"], dtype=object)
    save_dataset(engine.settings, "failed-cells", df, ColumnMapping({"text": "text"}, "label"), source="test")
    params = GenerationParams(max_new_tokens=4)
    broken = ColumnConfig("financial-sentiment", CHAT_MODEL, adapter=str(tmp_path / "no-such-adapter"), params=params)
    working = ColumnConfig("financial-sentiment", CHAT_MODEL, params=params)
    run_id = runner.run(
        RunConfig(dataset="failed-cells", columns=(broken, working), metrics=(MetricConfig("accuracy"),))
    )
    info = get_run(engine.settings, run_id)
    assert info.failed_cells == 4  # three rows of the broken column, the long row of the working one
    dead, alive = info.summary["columns"]

    # The broken column: nothing answered, so nothing scored, and it says why.
    assert dead["status"] == "failed" and dead["n"] == 0 and dead["failed"] == 3
    assert "accuracy" not in dead["metrics"] and "adapter" in dead["error"]

    # The working column: scored on its two answered rows only.
    results = load_results(engine.settings, run_id)
    answered = [results.cells[(r, 1)] for r in range(2)]
    expected = sum(c.answer is not None and c.answer.strip().lower() == ROWS[i][1] for i, c in enumerate(answered))
    assert alive["status"] == "ok" and alive["n"] == 2 and alive["failed"] == 1
    assert alive["metrics"]["accuracy"]["n"] == 2
    assert alive["metrics"]["accuracy"]["score"] == expected / 2
    assert "accuracy" not in results.cells[(2, 1)].scores  # the failed cell has no score at all

    board = scoreboard(info)
    failed_lines = board[board["metric"] == "failed"].set_index("column")
    assert failed_lines.loc[info.titles[0], "note"].startswith("column failed: all 3 cells failed")
    assert failed_lines.loc[info.titles[1], "note"].startswith("1 of 3 cells failed and are not scored")
    assert set(board[board["metric"] == "accuracy"]["failed"]) == {1}

    table = format_summary(info).splitlines()
    assert table[0].split()[-2:] == ["n", "failed"]
    assert "FAILED" in table[2] and table[2].split()[-2:] == ["0", "3"]
    assert "FAILED" not in table[3] and table[3].split()[-2:] == ["2", "1"]
    assert "column failed" in describe_run(info)
