"""A background worker: a named daemon thread that runs one step every ``interval_s`` seconds until stopped.

The loop scheduler and the training job runner are both one of these. A step that raises is logged and kept as
``last_error`` (a locked database or a vanished file must not end the thread); the next step clears it.
``wake`` runs the next step now instead of at the end of the interval. ``health`` is what /health reports.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from datetime import UTC, datetime

log = logging.getLogger(__name__)


def interval_from_env(name: str, default: float) -> float:
    """A worker's seconds between steps from environment variable ``name`` (unset: ``default``; 0: off)."""
    from llmplay.errors import LlmplayError

    raw = os.environ.get(name, "").strip()
    try:
        value = float(raw) if raw else default
    except ValueError:
        value = -1.0
    if not 0 <= value <= 86_400:
        raise LlmplayError(f"{name} must be a number of seconds from 0 (off) to 86400, not {raw!r}.")
    return value


class Worker:
    def __init__(self, name: str, step: Callable[[], object], interval_s: float):
        self.name, self.step, self.interval_s = name, step, interval_s
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_check_at: str | None = None  # UTC ISO time of the last step that ran to its end
        self.last_error: str | None = None
        self.steps = 0  # steps finished, with or without an error (tests wait on it)
        self._stepped = threading.Condition()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        if not self.running:
            self._stop.clear()
            self._wake.clear()
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Ask the thread to stop and wait up to ``timeout`` for the step in progress to end."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=timeout)

    def wake(self) -> None:
        self._wake.set()

    def wait_steps(self, count: int = 1, timeout: float | None = None) -> bool:
        """Block until ``count`` more steps have finished (False on timeout)."""
        with self._stepped:
            target = self.steps + count
            return self._stepped.wait_for(lambda: self.steps >= target, timeout=timeout)

    def _run(self) -> None:
        while True:
            self._wake.wait(self.interval_s)
            self._wake.clear()
            if self._stop.is_set():
                return
            try:
                self.step()
                self.last_error = None
                self.last_check_at = datetime.now(UTC).isoformat(timespec="seconds")
            except Exception as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("Background worker %s: step failed", self.name)
            with self._stepped:
                self.steps += 1
                self._stepped.notify_all()

    def health(self) -> dict:
        return {"running": self.running, "last_check_at": self.last_check_at, "last_error": self.last_error}
