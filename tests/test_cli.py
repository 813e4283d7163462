"""The `llmplay` command, run as a real subprocess on the bundled model."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import CHAT_MODEL, PARIS_QUESTION


@pytest.fixture()
def run(tmp_path, model_cache_dir, engine):
    engine.models.get(engine.catalog.get(CHAT_MODEL))  # make sure the cache is built before a subprocess uses it
    env = {
        **os.environ,
        "LLMPLAY_DATA_DIR": str(tmp_path / "data"),
        "LLMPLAY_CACHE_DIR": str(model_cache_dir),
        "HF_HUB_OFFLINE": "1",
    }

    def _run(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "llmplay.cli", *args], env=env, capture_output=True, text=True, timeout=300
        )

    return _run


def test_models_lists_the_catalog_with_cache_state(run):
    out = run("models", "--json")
    assert out.returncode == 0, out.stderr
    rows = {r["name"]: r for r in json.loads(out.stdout)}
    assert rows["smollm2-135m-instruct (default)"]["cached"] == "yes"
    assert rows["all-minilm-l6-v2"]["kind"] == "encoder"
    table = run("models").stdout
    assert table.splitlines()[0].split() == ["NAME", "KIND", "SOURCE", "LOCATION", "CACHED"]


def test_models_add_and_remove(run):
    added = run("models", "add", "smol-360", "--hub", "HuggingFaceTB/SmolLM2-360M-Instruct")
    assert added.returncode == 0, added.stderr
    assert "smol-360" in run("models").stdout
    bad = run("models", "add", "x", "--hub", "not-a-hub-id")
    assert bad.returncode == 2 and "org/model" in bad.stderr
    assert run("models", "remove", "smol-360").returncode == 0
    assert "smol-360" not in run("models").stdout


def test_generate_json_answers_paris(run):
    out = run("generate", "-m", CHAT_MODEL, "--json", "--max-new-tokens", "24", PARIS_QUESTION)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout.strip().splitlines()[-1])
    assert "Paris" in data["text"]
    assert data["completion_tokens"] > 0 and data["latency_s"] > 0 and data["error"] is None


def test_generate_streams_plain_text(run):
    out = run("generate", PARIS_QUESTION, "--max-new-tokens", "24")
    assert out.returncode == 0 and "Paris" in out.stdout


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["generate", "-m", "nope", "hi"], 2, "Unknown model 'nope'"),
        (["generate", "--max-new-tokens", "0", "hi"], 2, "max_new_tokens must be between"),
        (["generate", ""], 2, "empty"),
    ],
)
def test_generate_errors_are_clear(run, args, code, message):
    out = run(*args)
    assert out.returncode == code
    assert message in out.stderr
    assert "Traceback" not in out.stderr
