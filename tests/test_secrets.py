"""Server secrets never go to a URL a user typed (issue #9, defect 1).

A real HTTP server process on loopback plays the user's endpoint: it records every request's headers
and answers like an OpenAI-compatible server. Models are added the way a visitor adds them (the
Playground's Add-a-model handler) and then used through the engine: generate, stream and list models.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmplay.engine import Engine
from llmplay.models.catalog import Catalog, ModelSpec
from llmplay.settings import Settings
from llmplay.ui.models_panel import ModelsPanel

SECRETS = {
    "LLMPLAY_TEST_SERVER_SECRET": "s3cret-server-value",  # any server variable a visitor might name
    "OPENAI_API_KEY": "sk-operator-openai-value",  # the old default for models that name none
    "LLMPLAY_TEST_ALLOWED_KEY": "allowed-key-value",  # allowed, but only for approved URLs
}

SERVER = textwrap.dedent(
    """
    import json, sys
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    log = open(sys.argv[1], "a", buffering=1)

    class Handler(BaseHTTPRequestHandler):
        def _answer(self):
            length = int(self.headers.get("content-length") or 0)
            self.rfile.read(length)
            log.write(json.dumps({"path": self.path, "headers": dict(self.headers)}) + "\\n")
            if self.path.endswith("/models"):
                body = {"data": [{"id": "m"}]}
            else:
                message = {"role": "assistant", "content": "hello"}
                body = {"choices": [{"message": message, "finish_reason": "stop"}], "usage": {}}
            data = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = _answer

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.serve_forever()
    """
)


class Recorder:
    def __init__(self, port: int, log: Path):
        self.url = f"http://127.0.0.1:{port}/v1"
        self.log = log

    def requests(self) -> list[dict]:
        return [json.loads(line) for line in self.log.read_text().splitlines()]

    def raw(self) -> str:
        return self.log.read_text()


@pytest.fixture()
def recorder(tmp_path) -> Iterator[Recorder]:
    script, log = tmp_path / "server.py", tmp_path / "requests.jsonl"
    script.write_text(SERVER)
    log.touch()
    proc = subprocess.Popen([sys.executable, str(script), str(log)], stdout=subprocess.PIPE, text=True)
    try:
        yield Recorder(int(proc.stdout.readline()), log)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        proc.stdout.close()


@pytest.fixture()
def secrets(monkeypatch) -> None:
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)


def _use(engine: Engine, name: str) -> list[str]:
    """Every way a model sends requests; returns the errors seen."""
    [result] = engine.generate(name, ["hi"])
    final = list(engine.stream(name, "hi"))[-1].result
    errors = [result.error, final.error]
    try:
        engine.provider(name).list_models()
    except Exception as exc:
        errors.append(str(exc))
    return [e for e in errors if e]


def _add(engine: Engine, name: str, url: str, key_env: str) -> str:
    """Add an endpoint model the way a visitor does; returns the panel's message."""
    return ModelsPanel(engine).add_model(name, "endpoint", url, "chat", "m", key_env)[1]


def test_no_server_secret_reaches_a_url_a_visitor_typed(recorder, secrets, tmp_path):
    settings = Settings(data_dir=tmp_path / "data")  # the defaults: no key is allowed for visitors
    engine = Engine(settings)
    try:
        named = _add(engine, "names-a-secret", recorder.url, "LLMPLAY_TEST_SERVER_SECRET")
        unnamed = _add(engine, "names-none", recorder.url, "")
        for name in {"names-a-secret", "names-none"} & set(engine.catalog.names()):
            _use(engine, name)
    finally:
        engine.close()
    for value in SECRETS.values():
        assert value not in recorder.raw()
    # Refused when added, saying which variable and which setting; a model without a key still works.
    assert named.startswith("⚠️ Error") and "$LLMPLAY_TEST_SERVER_SECRET" in named, named
    assert "LLMPLAY_ALLOWED_KEY_ENVS" in named
    assert unnamed.startswith("✅"), unnamed
    requests = recorder.requests()
    assert len(requests) == 3  # generate, stream and list models, all from names-none
    assert all(r["headers"].get("Authorization") == "Bearer EMPTY" for r in requests)


def test_an_allowed_key_goes_only_to_approved_urls(recorder, secrets, tmp_path):
    settings = Settings(
        data_dir=tmp_path / "data",
        allowed_key_envs=("LLMPLAY_TEST_ALLOWED_KEY",),
        allowed_endpoints=("https://api.approved.example/v1",),
    )
    engine = Engine(settings, Catalog(settings.models_file, settings=settings))
    try:
        message = _add(engine, "elsewhere", recorder.url, "LLMPLAY_TEST_ALLOWED_KEY")
    finally:
        engine.close()
    assert message.startswith("⚠️ Error") and "$LLMPLAY_TEST_ALLOWED_KEY" in message, message
    assert "LLMPLAY_ALLOWED_ENDPOINTS" in message and "elsewhere" not in engine.catalog.names()

    # Entries that got past an add check (here a catalog under looser settings than the engine's, as
    # after the operator narrowed them) are refused again before any request is sent.
    loose = settings.with_(
        allowed_key_envs=("LLMPLAY_TEST_ALLOWED_KEY", "LLMPLAY_TEST_SERVER_SECRET"), allowed_endpoints=(recorder.url,)
    )
    catalog = Catalog(None, settings=loose)
    for env in loose.allowed_key_envs:
        catalog.add(ModelSpec(env.lower(), "chat", "endpoint", recorder.url, api_key_env=env, added_by="user"))
    engine = Engine(settings, catalog)
    try:
        for env in loose.allowed_key_envs:
            errors = _use(engine, env.lower())
            assert len(errors) == 3 and all(f"${env}" in e for e in errors), errors
    finally:
        engine.close()
    assert recorder.requests() == []


def test_approved_keys_do_arrive(recorder, secrets, tmp_path):
    """The check above can fail: an allowed key to an approved URL, and an operator's model, do send."""
    settings = Settings(
        data_dir=tmp_path / "data",
        allowed_key_envs=("LLMPLAY_TEST_ALLOWED_KEY",),
        allowed_endpoints=(recorder.url.removesuffix("/v1"),),
    )
    catalog = Catalog(settings.models_file, settings=settings)
    engine = Engine(settings, catalog)
    try:
        message = _add(engine, "approved", recorder.url, "LLMPLAY_TEST_ALLOWED_KEY")
        assert message.startswith("✅"), message
        assert _use(engine, "approved") == []
        # The operator's own entry (models file, `llmplay models add`) keeps the documented default key.
        catalog.add(ModelSpec("operator", "chat", "endpoint", recorder.url), persist=False)
        [result] = engine.generate("operator", ["hi"])
        assert result.ok, result.error
    finally:
        engine.close()
    keys = [r["headers"]["Authorization"] for r in recorder.requests()]
    assert keys == ["Bearer allowed-key-value"] * 3 + ["Bearer sk-operator-openai-value"]
