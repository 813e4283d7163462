"""`llmplay eval CONFIG.yaml` as a real subprocess, the way a team's CI runs it: exit codes follow thresholds."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys

import pytest
import yaml

from tests.conftest import CHAT_MODEL

ROWS = [
    ("Quarterly profit rose 30% and the company raised its dividend.", "positive"),
    ("The firm swung to a loss and will cut 500 jobs.", "negative"),
    ("The annual general meeting will be held in Oslo on 3 May.", "neutral"),
    ("Sales beat expectations and the order book hit a record.", "positive"),
    ("Revenue fell sharply after the loss of its largest customer.", "negative"),
    ("The company has offices in three countries.", "neutral"),
]


@pytest.fixture(scope="module")
def project(tmp_path_factory, model_cache_dir, engine):
    engine.models.get(engine.catalog.get(CHAT_MODEL))  # the converted-model cache exists before subprocesses use it
    root = tmp_path_factory.mktemp("eval-cli")
    with (root / "news.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["sentence", "label"])
        writer.writerows(ROWS)
    env = {
        **os.environ,
        "LLMPLAY_DATA_DIR": str(root / "data"),
        "LLMPLAY_CACHE_DIR": str(model_cache_dir),
        "HF_HUB_OFFLINE": "1",
    }
    return root, env


def _config(root, **extra) -> dict:
    return {
        "name": "sentiment-ci",
        "dataset": {"file": "news.csv", "name": "news", "variables": {"text": "sentence"}, "reference": "label"},
        "templates": ["financial-sentiment"],
        "models": [CHAT_MODEL],
        "params": {"max_new_tokens": 6},
        **extra,
    }


def _eval(root, env, config: dict, name: str, *flags: str) -> subprocess.CompletedProcess:
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return subprocess.run(
        [sys.executable, "-m", "llmplay.cli", "eval", str(path), "--quiet", *flags],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_thresholds_decide_the_exit_code(project):
    root, env = project
    first = _eval(root, env, _config(root, metrics=["accuracy"]), "measure", "--json")
    assert first.returncode == 0, first.stderr
    report = json.loads(first.stdout)
    accuracy = report["summary"]["columns"][0]["metrics"]["accuracy"]["score"]
    assert report["status"] == "done" and report["checks"] == []

    passing = _eval(root, env, _config(root, metrics=[{"name": "accuracy", "threshold": accuracy}]), "pass")
    assert passing.returncode == 0, passing.stdout + passing.stderr
    assert "PASS" in passing.stdout and "FAIL" not in passing.stdout
    assert "accuracy" in passing.stdout.splitlines()[0]  # the printed table's header

    failing = _eval(root, env, _config(root, thresholds={"accuracy": accuracy + 0.01}), "fail")
    assert failing.returncode == 1, failing.stdout + failing.stderr
    assert "FAIL" in failing.stdout and "accuracy" in failing.stdout

    # Results are written for the CI to keep: one CSV record per cell.
    exported = sorted((root / "data" / "exports").glob("run-*/run-*.csv"))
    assert exported
    with exported[-1].open(encoding="utf-8") as f:
        records = list(csv.DictReader(f))
    assert len(records) == len(ROWS) and {r["reference"] for r in records} == {"positive", "negative", "neutral"}


def test_an_invalid_config_exits_2_with_a_clear_message(project):
    root, env = project
    result = _eval(root, env, _config(root, metrics=["accuracy"], models=["no-such-model"]), "bad")
    assert result.returncode == 2
    assert "no-such-model" in result.stderr
    missing = _eval(root, env, {**_config(root), "dataset": {"file": "missing.csv"}}, "missing")
    assert missing.returncode == 2 and "missing.csv" in missing.stderr


def test_the_shipped_example_configs_are_valid():
    from llmplay.evaluation.config import RunConfig
    from tests.conftest import ROOT

    for path in sorted((ROOT / "evals").glob("*.yaml")):
        config = RunConfig.from_dict(yaml.safe_load(path.read_text(encoding="utf-8")))
        bounds = [m.threshold if m.threshold is not None else m.max_threshold for m in config.metrics]
        assert config.columns and any(b is not None for b in bounds), path  # a max bound gates attacks.yaml
