"""Edges of the command line: empty paths, folders the OS refuses, numbers past SQLite's integers, deeply
nested files and malformed values are bad input (exit 2) with a message, never a traceback or a silent
default (README, exit codes)."""

from __future__ import annotations

import json
import sys

import pytest

from llmplay import exitcodes
from llmplay.cli import main
from llmplay.feedback import store as fs
from llmplay.loop import lines
from llmplay.settings import Settings
from llmplay.store import connect
from tests.conftest import ROOT

HUGE = "99999999999999999999"  # past SQLite's 64-bit integers


@pytest.fixture()
def data(tmp_path) -> Settings:
    settings = Settings(data_dir=tmp_path / "data")
    with connect(settings.db_path) as db:
        fs.create_queue(db, "fix", "correction")
        lines.create_line(db, "news", "smollm2-135m-instruct", "financial-sentiment")
    return settings


@pytest.fixture()
def llmplay(data, tmp_path, monkeypatch, capsys):
    """Runs the CLI in-process from an empty working folder; argparse's own exit counts as the code."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)

    def run(*args: str, data_dir: str | None = None) -> tuple[int, str, str]:
        try:
            code = main(["--data-dir", str(data.data_dir) if data_dir is None else data_dir, *args])
        except SystemExit as exc:
            code = exc.code
        out, err = capsys.readouterr()
        assert "Traceback" not in err, err
        return code, out, err

    run.cwd = cwd
    return run


def test_an_empty_path_is_bad_input_not_the_current_folder(llmplay):
    for args in [("backup", ""), ("backup", "  "), ("restore", ""), ("feedback", "export", "--queue", "fix",
                 "--format", "csv", "--out", "")]:  # fmt: skip
        code, out, err = llmplay(*args)
        assert code == exitcodes.BAD_INPUT, (args, out, err)
        assert "empty" in err, err
    code, _, err = llmplay("feedback", "queues", data_dir="")
    assert code == exitcodes.BAD_INPUT and "--data-dir" in err and "empty" in err, err
    assert list(llmplay.cwd.iterdir()) == []  # nothing written where the command ran


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")
def test_a_folder_the_system_refuses_is_bad_input(llmplay, tmp_path):
    code, _, err = llmplay("backup", "/proc/self")
    assert code == exitcodes.BAD_INPUT and "/proc/self" in err, err
    code, _, err = llmplay("backup", str(tmp_path / "backups"))
    assert code == exitcodes.OK, err
    code, _, err = llmplay("restore", str(tmp_path / "backups"), data_dir="/proc/self/llmplay-data")
    assert code == exitcodes.BAD_INPUT and "/proc/self/llmplay-data" in err, err


@pytest.mark.parametrize(
    "args",
    [
        ("loop", "rollback", "news", "--to", HUGE, "--user", "ada"),
        ("loop", "rollback", "news", "--to", "-1", "--user", "ada"),
        ("loop", "promote", HUGE, "--user", "ada"),
        ("feedback", "adjudicate", HUGE, "ok", "--user", "ada"),
        ("users", "audit", "--limit", HUGE),
        ("backup", "backups", "--keep", HUGE),
        ("train", "list", "--resume", HUGE),
    ],
    ids=["rollback to", "rollback to negative", "promote", "adjudicate", "audit limit", "backup keep", "resume"],
)
def test_numbers_past_any_id_are_bad_input(llmplay, args):
    code, out, err = llmplay(*args)
    assert code == exitcodes.BAD_INPUT, (out, err)
    assert "argument" in err and "must be" in err and "between" in err, err


@pytest.mark.parametrize(
    ("pair", "fragment"),
    [("general_share=[1", "KEY=VALUE"), ("general_share=" + "[" * 100_000, "nested"), ("a=&x 1", "anchors")],
    ids=["unclosed", "deeply nested", "anchor"],
)
def test_a_line_setting_that_is_not_plain_yaml_is_bad_input(llmplay, pair, fragment):
    code, out, err = llmplay("loop", "set", "news", pair)
    assert code == exitcodes.BAD_INPUT and fragment in err, (out, err)


@pytest.mark.parametrize("suffix", [".jsonl", ".json"])
@pytest.mark.parametrize("depth", [100_000, 200])
def test_a_deeply_nested_feedback_import_is_bad_input_and_stores_nothing(llmplay, data, tmp_path, suffix, depth):
    nested = "[" * depth + "]" * depth
    row = '{"prompt": "p", "output": "o", "extra": ' + nested + "}"
    path = tmp_path / f"deep{suffix}"
    path.write_text(row if suffix == ".jsonl" else f"[{row}]", encoding="utf-8")
    code, out, err = llmplay("feedback", "import", str(path), "--queue", "fix")
    assert code == exitcodes.BAD_INPUT and "nested" in err, (out, err)
    with connect(data.db_path) as db:
        assert fs.list_items(db, "fix") == []


def test_import_keeps_ordinary_nesting(llmplay, data, tmp_path):
    path = tmp_path / "ok.jsonl"
    row = {"prompt": "p", "output": "o", "input": {"a": {"b": [1, [2, [3]]]}}}
    path.write_text(json.dumps(row), encoding="utf-8")
    code, out, err = llmplay("feedback", "import", str(path), "--queue", "fix")
    assert code == exitcodes.OK, err


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")
def test_an_export_file_the_system_refuses_is_bad_input(llmplay, tmp_path):
    for out in ["/proc/self/fix.csv", str(tmp_path)]:  # not writable; a folder
        code, _, err = llmplay("feedback", "export", "--queue", "fix", "--format", "csv", "--out", out)
        assert code == exitcodes.BAD_INPUT and f"Cannot write {out}" in err, err


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")
def test_an_eval_results_folder_the_system_refuses_is_bad_input_before_the_run(llmplay, tmp_path):
    (tmp_path / "news.csv").write_text("sentence,label\nProfit rose.,positive\n", encoding="utf-8")
    config = {
        "dataset": {"file": "news.csv", "name": "news", "variables": {"text": "sentence"}, "reference": "label"},
        "templates": ["financial-sentiment"],
        "models": ["no-such-model"],  # refused when the run starts: the folder must be refused before that
    }
    (tmp_path / "run.yaml").write_text(json.dumps(config), encoding="utf-8")
    prompts = str(ROOT / "prompts")
    args = ("eval", str(tmp_path / "run.yaml"), "--prompts-dir", prompts, "--out", "/proc/self/results", "--quiet")
    code, out, err = llmplay(*args)
    assert code == exitcodes.BAD_INPUT and "/proc/self/results" in err, (out, err)
    assert "Run #" not in out


def test_a_context_length_past_any_model_is_bad_input(llmplay, data):
    code, _, err = llmplay("models", "add", "big", "--hub", "org/model", "--context-length", HUGE)
    assert code == exitcodes.BAD_INPUT and "--context-length" in err, err
    assert not data.models_file.exists() or "big" not in data.models_file.read_text(encoding="utf-8")
