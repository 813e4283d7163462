"""`llmplay serve` as a real process stops cleanly on SIGTERM (what `docker stop` and a Space restart send):
exit 0 within 5 s, the final backup written. `docker stop` kills after 10 s, so a slower exit loses it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from llmplay import backup
from tests.auth.team import free_port

EXIT_WITHIN_S = 5.0


def _wait_for_health(url: str, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as resp:
                if resp.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("the server did not answer /health in time")


def _open_page_stream(port: int) -> socket.socket:
    """What an open browser tab holds: Gradio's session heartbeat, a response that never ends by itself."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(f"GET /gradio_api/heartbeat/tab1 HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
    assert b"ALIVE" in sock.recv(4096) or b"ALIVE" in sock.recv(4096)
    return sock


def test_serve_exits_within_5s_of_sigterm_with_the_final_backup(tmp_path):
    port = free_port()
    bucket = tmp_path / "bucket"
    env = os.environ | {
        "LLMPLAY_DATA_DIR": str(tmp_path / "data"),
        "LLMPLAY_DEFAULT_MODEL": "no-such-model-in-tests",  # nothing loads
        "LLMPLAY_BACKUP_DIR": str(bucket),
        "LLMPLAY_BACKUP_INTERVAL_S": "3600",
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_ANALYTICS_ENABLED": "False",
    }
    env.pop("GRADIO_TEMP_DIR", None)
    cli = Path(sys.executable).parent / "llmplay"
    proc = subprocess.Popen([str(cli), "serve"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_health(f"http://127.0.0.1:{port}", proc)
        page = _open_page_stream(port)
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        try:
            out, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
        took = time.monotonic() - sent
        page.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    print(f"exited {took:.2f} s after SIGTERM")
    assert took < EXIT_WITHIN_S, f"exited {took:.1f} s after SIGTERM\n{err[-3000:]}"
    assert proc.returncode == 0, err[-3000:]
    made = backup.list_backups(bucket)
    assert made, f"no final backup in {bucket}\n{err[-3000:]}"
    assert made[-1].manifest["database"]["tables"]
