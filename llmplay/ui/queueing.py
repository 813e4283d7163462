"""How the app's events share Gradio's queue.

Every event that runs a model (a Playground reply, a comparison, an Arena battle, a template run) joins one
concurrency group, ``GENERATION``: at most ``LLMPLAY_GENERATION_CONCURRENCY`` (default 2) of them run at once,
whichever tab they come from, since they share the same cores and loaded models; the rest wait in the queue and
the page shows their place in it. Cheap events (labeling, lists, previews) keep their own groups, so they never
wait behind a reply. ``QUEUE_MAX`` bounds the queue: past it Gradio refuses the event (HTTP 503) and the page
says "This application is currently busy. Please try again."
"""

from __future__ import annotations

import os


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
GENERATION = {"concurrency_id": "generation", "concurrency_limit": GENERATION_LIMIT}
