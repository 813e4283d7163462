"""promptfoo (the real npm package, run with node) evaluates a small suite against ``line:capitals`` through its
OpenAI provider pointed at llmplay's /v1: it runs, its assertions see llmplay's replies, and llmplay holds one
trace per test case. Skipped with the reason when node / npm are missing or the package cannot be installed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest
import yaml

from llmplay import traces
from llmplay.auth.keys import create_key
from tests.conftest import ROOT

VERSION = "0.121.20"  # the newest promptfoo that runs on Node 20 (later ones need Node >= 22.22)
PREFIX = ROOT / ".cache" / "promptfoo"
BIN = PREFIX / "node_modules" / ".bin" / "promptfoo"


def _promptfoo() -> str:
    if not (shutil.which("node") and shutil.which("npm")):
        pytest.skip("promptfoo needs Node.js and npm (not found on this machine)")
    if not BIN.exists():
        PREFIX.mkdir(parents=True, exist_ok=True)
        try:
            done = subprocess.run(
                ["npm", "install", "--no-audit", "--no-fund", "--prefix", str(PREFIX), f"promptfoo@{VERSION}"],
                capture_output=True, text=True, timeout=900,
            )  # fmt: skip
        except subprocess.TimeoutExpired:
            pytest.skip("installing promptfoo from the npm registry took over 15 minutes")
        if done.returncode != 0 or not BIN.exists():
            pytest.skip(f"promptfoo could not be installed from the npm registry: {done.stderr[-300:]}")
    return str(BIN)


def test_promptfoo_evaluates_a_line_through_the_api_and_every_case_is_a_trace(server, tmp_path):
    promptfoo = _promptfoo()
    url, settings, _ = server
    add_app_user(settings)
    config = {
        "description": "llmplay line through promptfoo's OpenAI provider",
        "providers": [
            {
                "id": "openai:chat:line:capitals",
                "config": {"apiBaseUrl": url + "/v1", "apiKey": create_key(settings, "pf-app"), "temperature": 0,
                           "max_tokens": 12},
            }
        ],
        "prompts": ["{{question}}"],
        "tests": [
            {"vars": {"question": "What is the capital of France? Answer in one word."},
             "assert": [{"type": "icontains", "value": "paris"}]},
            {"vars": {"question": "What is the capital of Italy? Answer in one word."},
             "assert": [{"type": "icontains", "value": "rome"}]},
        ],
    }  # fmt: skip
    (tmp_path / "promptfooconfig.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    env = {
        **os.environ,
        "PROMPTFOO_CONFIG_DIR": str(tmp_path / "pf-home"),
        "PROMPTFOO_DISABLE_TELEMETRY": "1",
        "PROMPTFOO_DISABLE_UPDATE": "1",
        "PROMPTFOO_DISABLE_SHARING": "1",
        "OPENAI_API_KEY": "",
    }
    done = subprocess.run(
        [promptfoo, "eval", "-c", "promptfooconfig.yaml", "-o", "out.json", "--no-cache", "--no-progress-bar"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert (tmp_path / "out.json").exists(), done.stdout[-2000:] + done.stderr[-2000:]
    results = json.loads((tmp_path / "out.json").read_text())["results"]
    outputs = [r["response"]["output"] for r in results["results"]]
    assert len(outputs) == 2 and all(r.get("error") in (None, "") or r["success"] for r in results["results"])
    assert any("paris" in o.lower() for o in outputs), outputs
    stored = traces.list_traces(settings, user="pf-app", model="line:capitals")
    assert sorted(t.reply for t in stored) == sorted(outputs), "one trace per test case, holding what promptfoo saw"


def add_app_user(settings) -> None:
    from llmplay.auth.users import add_user

    add_user(settings, "pf-app", "viewer", "pf-app-password")
