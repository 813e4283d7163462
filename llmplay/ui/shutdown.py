"""Stopping the served app promptly: `docker stop` and a Space restart send SIGTERM and kill the process 10 s
later, so the server must be gone (and `llmplay serve`'s final backup written) well before that.

What kept it alive: uvicorn's graceful shutdown waits, without a limit, for every open response to end, and an
open browser tab holds one that never ends (Gradio's session heartbeat; Gradio ends those only from its own
``launch``, which llmplay does not use). So the server here ends Gradio's streams as it starts shutting down and
cuts whatever is still open after ``GRACE_S``. SIGTERM is how a server is meant to stop: the process exits 0.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

GRACE_S = 2  # for replies in flight to finish; the 10 s of `docker stop` must also cover the final backup


def _gradio_apps(app) -> list:
    """The Gradio apps mounted on ``app`` (llmplay mounts one at /)."""
    return [route.app for route in getattr(app, "routes", []) if hasattr(getattr(route, "app", None), "stop_event")]


class AppServer(uvicorn.Server):
    """uvicorn's server, with a shutdown that ends Gradio's never-ending responses first."""

    async def shutdown(self, sockets=None) -> None:
        for gradio_app in _gradio_apps(self.config.app):
            gradio_app.stop_event.set()  # heartbeats return; the page's other streams see their client go
        await super().shutdown(sockets)


def app_server(app, host: str, port: int) -> AppServer:
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", timeout_graceful_shutdown=GRACE_S)
    return AppServer(config)


def _exit_cleanly(signum, frame) -> None:  # noqa: ARG001 - signal handler signature
    raise SystemExit(0)


@contextmanager
def sigterm_exits_cleanly() -> Iterator[None]:
    """For the block (a server run in the main thread): SIGTERM ends the process with exit code 0, unwinding
    through the caller's ``finally`` blocks (the final backup). While uvicorn runs, it takes SIGTERM itself,
    shuts down gracefully and then raises the signal again, which lands here."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _exit_cleanly)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
