"""`llmplay optimize` refuses bad input with exit 2 and a message, never a traceback, before any model runs."""

from __future__ import annotations

import pytest
import yaml

from llmplay.cli import main
from llmplay.store import connect
from tests.conftest import CHAT_MODEL, ROOT

GOOD = {"template": "financial-sentiment", "dataset": "fpb", "model": CHAT_MODEL}


def _run(tmp_path, capsys, config, *flags) -> tuple[int, str]:
    path = tmp_path / "search.yaml"
    path.write_text(config if isinstance(config, str) else yaml.safe_dump(config), encoding="utf-8")
    data = tmp_path / "data"
    code = main(["--data-dir", str(data), "optimize", str(path), "--prompts-dir", str(ROOT / "prompts"), *flags])
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    "config, says",
    [
        ({**GOOD, "budget": {"calls": 0}}, "budget.calls is 0"),
        ({**GOOD, "splits": {"test": 10}}, "at least 30 rows"),
        ({**GOOD, "budgett": 1}, "Unknown key"),
        ({"dataset": "fpb", "model": CHAT_MODEL}, "'template' is required"),
        ("template: [unclosed", "not valid YAML"),
        ("- a list", "must be a YAML mapping"),
        (GOOD, "No dataset named 'fpb'"),
        ({**GOOD, "dataset": {"file": "missing.csv"}}, "does not exist"),
    ],
)
def test_bad_config_exits_2_with_a_message(tmp_path, capsys, config, says):
    code, err = _run(tmp_path, capsys, config)
    assert code == 2, err
    assert says in err and err.startswith("error:") and "Traceback" not in err
    db = tmp_path / "data" / "llmplay.db"
    if db.exists():
        with connect(db) as conn:
            assert "eval_runs" not in conn.table_names() or conn["eval_runs"].count == 0


def test_missing_config_file_exits_2(tmp_path, capsys):
    code = main(["--data-dir", str(tmp_path / "data"), "optimize", str(tmp_path / "nope.yaml")])
    err = capsys.readouterr().err
    assert code == 2 and "No config file" in err and "Traceback" not in err
