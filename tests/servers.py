"""Real local OpenAI-compatible servers for tests (registered once as a plugin in tests/conftest.py):

- ``katan``: one llm-katan process for the session serving the bundled SmolLM2 on loopback as model "smol"
  (real transformers generation; it checks the key ``KATAN_KEY``, streams SSE, reports usage).
- ``scripted``: a tiny HTTP server answering each request with the next scripted reply, for what a real server
  cannot be made to do on cue (fail, rate-limit, or speak an API katan lacks, such as vLLM's adapter loading).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from tests.auth.team import free_port

CHAT_MODEL = "smollm2-135m-instruct"
KATAN_KEY = "katan-test-key"


@dataclass
class Katan:
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"


@pytest.fixture(scope="session")
def katan(engine, tmp_path_factory) -> Iterator[Katan]:
    """One llm-katan process for the session, serving SmolLM2's converted folder as model "smol"."""
    exe = shutil.which("llm-katan", path=str(Path(sys.executable).parent)) or shutil.which("llm-katan")
    if exe is None:
        pytest.fail("llm-katan is not installed: pip install -e '.[test]'")
    folder = Path(engine.models.get(engine.catalog.get(CHAT_MODEL)).folder).resolve()
    tmp = tmp_path_factory.mktemp("katan")
    port = free_port()
    log = tmp / "server.log"
    cmd = [exe, "--model", str(folder), "--name", "smol", "--host", "127.0.0.1", "--port", str(port)]
    cmd += ["--device", "cpu", "--no-quantize", "--max-tokens", "64", "--disable-dashboard"]
    cmd += ["--validate-keys", "--api-keys", f"openai={KATAN_KEY}", "--stats-file", str(tmp / "stats.json")]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    with open(log, "wb") as out:  # a file, not a pipe: a full pipe would block the server
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llm-katan exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llm-katan did not become healthy within 120 s:\n{log.read_text()[-3000:]}")
            time.sleep(0.3)
        yield Katan(port, log)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        except ProcessLookupError:
            pass


class Scripted:
    """Answers each request with the next (status, body, headers) and records what it received."""

    def __init__(self, script: list[tuple[int, dict | str, dict]]):
        self.script = list(script)
        self.seen: list[tuple[float, str, dict, dict]] = []  # (time, path, headers, body)
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self):
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"null")
                owner.seen.append((time.perf_counter(), self.path, dict(self.headers), body))
                status, payload, headers = owner.script.pop(0) if owner.script else (500, "script ended", {})
                data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def scripted():
    servers: list[Scripted] = []

    def make(*script):
        servers.append(Scripted(list(script)))
        return servers[-1]

    yield make
    for s in servers:
        s.close()
