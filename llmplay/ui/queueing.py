"""How the app's events share Gradio's queue.

Every event that runs a model (a Playground reply, a comparison, an Arena battle, a template run) joins one
concurrency group, ``GENERATION``: at most ``LLMPLAY_GENERATION_CONCURRENCY`` (default 2) of them run at once,
whichever tab they come from, since they share the same cores and loaded models (API requests have as many
slots of their own, llmplay/concurrency.py); the rest wait in the queue and the page shows their place in it.
Cheap events (labeling, lists, previews) keep their own groups, so they never wait behind a reply.
``QUEUE_MAX`` bounds the queue: past it Gradio refuses the event (HTTP 503) and the page says "This application
is currently busy. Please try again."
"""

from __future__ import annotations

from llmplay.concurrency import GENERATION_LIMIT, QUEUE_MAX

GENERATION = {"concurrency_id": "generation", "concurrency_limit": GENERATION_LIMIT}
__all__ = ["GENERATION", "GENERATION_LIMIT", "QUEUE_MAX"]
