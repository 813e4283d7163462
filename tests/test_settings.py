from pathlib import Path

import pytest

from llmplay.errors import LlmplayError
from llmplay.settings import Settings


def test_defaults_derive_paths_from_data_dir():
    s = Settings(data_dir=Path("/x"))
    assert s.db_path == Path("/x/llmplay.db")
    assert s.cache_dir == Path("/x/cache/models")
    assert s.models_file == Path("/x/models.yaml")
    assert (s.host, s.port) == ("127.0.0.1", 7860)


def test_environment_overrides(monkeypatch, tmp_path):
    monkeypatch.setenv("LLMPLAY_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("GRADIO_SERVER_NAME", "0.0.0.0")
    monkeypatch.setenv("GRADIO_SERVER_PORT", "7861")
    monkeypatch.setenv("LLMPLAY_MAX_NEW_TOKENS", "64")
    monkeypatch.setenv("LLMPLAY_DTYPE", "float32")
    s = Settings.from_env()
    assert s.data_dir == tmp_path and s.cache_dir == tmp_path / "cache" / "models"
    assert (s.host, s.port, s.max_new_tokens_limit, s.dtype) == ("0.0.0.0", 7861, 64, "float32")
    assert Settings.from_env(port=9000).port == 9000


@pytest.mark.parametrize(
    ("env", "value", "message"),
    [
        ("GRADIO_SERVER_PORT", "http", "must be an integer"),
        ("LLMPLAY_DTYPE", "int4", "dtype must be one of"),
        ("LLMPLAY_MAX_NEW_TOKENS", "0", "must be positive"),
    ],
)
def test_bad_environment_values_are_clear(monkeypatch, env, value, message):
    monkeypatch.setenv(env, value)
    with pytest.raises(LlmplayError, match=message):
        Settings.from_env()


def test_unknown_override_is_rejected():
    with pytest.raises(LlmplayError, match="Unknown setting"):
        Settings.from_env(colour="red")


def test_string_paths_become_paths():
    s = Settings(data_dir="d", cache_dir="c", models_file="m.yaml")
    assert (s.cache_dir, s.models_file) == (Path("c"), Path("m.yaml"))
