"""How much model work runs at once: one bound for every interactive generation (the app's tabs through Gradio's
queue, llmplay/ui/queueing.py; the OpenAI-compatible API, llmplay/api/openai_api.py), read once from the
environment, since they share the same cores and loaded models.

- ``GENERATION_LIMIT`` (``LLMPLAY_GENERATION_CONCURRENCY``, default 2): generations running at once per kind of
  caller (the tabs' events, API requests).
- ``QUEUE_MAX`` (``LLMPLAY_QUEUE_MAX``, default 64): callers waiting for a turn; past it a call is refused as
  busy (Gradio: HTTP 503; the API: 429).
"""

from __future__ import annotations

import os
import threading


def _env_int(name: str, default: int, low: int) -> int:
    try:
        value = int(os.environ.get(name, default))
    except ValueError:
        raise ValueError(f"{name} must be a whole number, got {os.environ.get(name)!r}") from None
    if value < low:
        raise ValueError(f"{name} must be at least {low}, got {value}")
    return value


GENERATION_LIMIT = _env_int("LLMPLAY_GENERATION_CONCURRENCY", 2, 1)
QUEUE_MAX = _env_int("LLMPLAY_QUEUE_MAX", 64, 1)


class Busy(Exception):
    """Too many callers wait already."""


class Gate:
    """At most ``limit`` holders at once and at most ``waiting_max`` waiting; a caller past that is refused."""

    def __init__(self, limit: int = GENERATION_LIMIT, waiting_max: int = QUEUE_MAX):
        self._slots = threading.BoundedSemaphore(limit)
        self._lock = threading.Lock()
        self._waiting = 0
        self.waiting_max = waiting_max

    def acquire(self, timeout: float | None = None) -> None:
        """Take a slot (raises Busy when the queue is full or ``timeout`` passes first)."""
        if self._slots.acquire(blocking=False):
            return
        with self._lock:
            if self._waiting >= self.waiting_max:
                raise Busy(f"{self._waiting} requests are waiting already")
            self._waiting += 1
        try:
            if not self._slots.acquire(timeout=timeout):
                raise Busy(f"no slot became free within {timeout:g} s")
        finally:
            with self._lock:
                self._waiting -= 1

    def release(self) -> None:
        self._slots.release()
