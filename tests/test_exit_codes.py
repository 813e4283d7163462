"""One exit-code table for every `llmplay` command (llmplay/exitcodes.py), in-process: a config mistake is
bad input (2) found before anything runs, never a failed check (1); an unreadable file is a message, not a
traceback; a column that never answered is a failed run (3), not a regression."""

from __future__ import annotations

import csv

import pytest
import yaml

from llmplay import exitcodes
from llmplay.cli import main
from tests.conftest import CHAT_MODEL

ROWS = [("Quarterly profit rose 30%.", "positive"), ("The firm will cut 500 jobs.", "negative")]
TEMPLATE = 'name: hello\ntask: chat\nvariables: [who]\nbody: "Hello {{ who }}"\n'
BINARY = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe"


@pytest.fixture()
def llmplay(tmp_path, monkeypatch, model_cache_dir, capsys):
    monkeypatch.setenv("LLMPLAY_CACHE_DIR", str(model_cache_dir))
    with (tmp_path / "news.csv").open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([("sentence", "label"), *ROWS])

    def run(*args: str) -> tuple[int, str, str]:
        code = main(["--data-dir", str(tmp_path / "data"), *args])
        out, err = capsys.readouterr()
        assert "Traceback" not in err, err
        return code, out, err

    return run


def _config(tmp_path, name: str, **extra) -> str:
    config = {
        "dataset": {"file": "news.csv", "name": "news", "variables": {"text": "sentence"}, "reference": "label"},
        "params": {"max_new_tokens": 4},
        **extra,
    }
    if "columns" not in config:
        config.update(templates=["financial-sentiment"], models=[CHAT_MODEL])
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return str(path)


def test_an_invalid_threshold_is_bad_input_found_before_the_run(llmplay, tmp_path):
    for name, extra in {
        "in-metric": {"metrics": [{"name": "accuracy", "threshold": "abc"}]},
        "in-thresholds": {"metrics": ["accuracy"], "thresholds": {"accuracy": "abc"}},
    }.items():
        code, out, err = llmplay("eval", _config(tmp_path, name, **extra), "--quiet")
        assert code == exitcodes.BAD_INPUT == 2, (out, err)
        assert "threshold must be a number; got 'abc'" in err, err
        assert "Run #" not in out  # nothing ran
    assert not (tmp_path / "data" / "exports").exists()


def test_unreadable_config_and_variable_files_are_bad_input_with_a_message(llmplay, tmp_path):
    (tmp_path / "a-folder").mkdir()
    (tmp_path / "binary.yaml").write_bytes(BINARY)
    for config, fragment in [("a-folder", "is a folder"), ("binary.yaml", "not a text file")]:
        code, _, err = llmplay("eval", str(tmp_path / config))
        assert code == 2 and fragment in err, err

    prompts = tmp_path / "prompts"
    prompts.mkdir()
    (prompts / "hello.yaml").write_text(TEMPLATE, encoding="utf-8")
    (tmp_path / "binary.txt").write_bytes(BINARY)
    (tmp_path / "nuls.txt").write_bytes(b"who\x00\x00\x00")
    for var_file, fragment in [
        ("missing.txt", "no such file"),
        ("binary.txt", "not UTF-8 text"),
        ("nuls.txt", "a binary file"),
        ("prompts", "is a folder"),
    ]:
        code, _, err = llmplay(
            "templates", "--prompts-dir", str(prompts), "render", "hello", "--var-file", f"who={tmp_path / var_file}"
        )
        assert code == 2 and f"--var-file who={tmp_path / var_file}" in err and fragment in err, err


def test_generate_uses_the_same_table_for_every_kind_of_bad_input(llmplay):
    for args, fragment in [(["-m", "no-such-model", "hi"], "no-such-model"), ([""], "empty")]:
        code, _, err = llmplay("generate", *args)
        assert code == exitcodes.BAD_INPUT and fragment in err, err


def test_a_column_that_never_answered_is_a_failed_run_not_a_regression(llmplay, tmp_path):
    columns = [{"template": "financial-sentiment", "model": CHAT_MODEL, "adapter": str(tmp_path / "no-adapter")}]
    code, out, err = llmplay("eval", _config(tmp_path, "dead", metrics=["accuracy"], columns=columns), "--quiet")
    assert code == exitcodes.RUN_FAILED, (out, err)
    assert "column failed: all 2 cells failed" in err and "FAILED" in out
