"""The operator's limits on user-added models: settings from the environment, URL prefix matching."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from llmplay.errors import LlmplayError
from llmplay.models.access import endpoint_matches
from llmplay.settings import Settings


def test_allow_lists_come_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("LLMPLAY_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("LLMPLAY_ALLOWED_KEY_ENVS", "VLLM_KEY, OPENAI_API_KEY,")
    monkeypatch.setenv("LLMPLAY_ALLOWED_ENDPOINTS", "http://10.0.0.5:8000, https://api.openai.com/v1")
    monkeypatch.setenv("LLMPLAY_ALLOWED_MODEL_DIRS", os.pathsep.join(["/srv/models", "", "/mnt/team"]))
    s = Settings.from_env()
    assert s.allowed_key_envs == ("VLLM_KEY", "OPENAI_API_KEY")
    assert s.allowed_endpoints == ("http://10.0.0.5:8000", "https://api.openai.com/v1")
    assert s.allowed_model_dirs == (Path("/srv/models"), Path("/mnt/team"))
    assert s.models_dir == tmp_path / "models"


def test_defaults_allow_nothing_but_the_models_folder(monkeypatch):
    for name in ("LLMPLAY_ALLOWED_KEY_ENVS", "LLMPLAY_ALLOWED_ENDPOINTS", "LLMPLAY_ALLOWED_MODEL_DIRS"):
        monkeypatch.delenv(name, raising=False)
    s = Settings.from_env()
    assert (s.allowed_key_envs, s.allowed_endpoints, s.allowed_model_dirs) == ((), (), ())


@pytest.mark.parametrize(
    ("env", "value", "message"),
    [
        ("LLMPLAY_ALLOWED_KEY_ENVS", "GOOD,not a name", "not an environment variable name"),
        ("LLMPLAY_ALLOWED_ENDPOINTS", "api.openai.com", "must be a URL"),
    ],
)
def test_bad_allow_lists_are_clear(monkeypatch, env, value, message):
    monkeypatch.setenv(env, value)
    with pytest.raises(LlmplayError, match=message):
        Settings.from_env()


@pytest.mark.parametrize(
    ("url", "prefix", "approved"),
    [
        ("http://10.0.0.5:8000/v1", "http://10.0.0.5:8000", True),
        ("http://10.0.0.5:8000", "http://10.0.0.5:8000/", True),
        ("https://api.openai.com/v1", "https://api.openai.com:443/v1", True),
        ("https://API.openai.com/v1/", "https://api.openai.com/v1", True),
        ("http://10.0.0.5:80001/v1", "http://10.0.0.5:8000", False),  # not a character prefix
        ("http://10.0.0.5:8000.evil.example/v1", "http://10.0.0.5:8000", False),
        ("http://10.0.0.5:8000@evil.example/v1", "http://10.0.0.5:8000", False),  # userinfo, then the real host
        ("https://api.openai.com/v1-evil", "https://api.openai.com/v1", False),
        ("https://api.openai.com/v2", "https://api.openai.com/v1", False),
        ("http://api.openai.com/v1", "https://api.openai.com/v1", False),
    ],
)
def test_endpoint_prefixes_match_by_origin_and_path_segments(url, prefix, approved):
    assert endpoint_matches(url, prefix) is approved
