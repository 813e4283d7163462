"""What every tab shows the same way: error lines, and handlers that never let an exception escape.

A handler that raises would leave Gradio's generic "Error" toast and, worse, a half-updated page; the tabs
turn every failure into a message in their first output instead. Expected problems (LlmplayError: a bad value,
an unknown name) show their own words; anything else is logged with its traceback and named briefly.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import wraps

from llmplay.errors import LlmplayError

log = logging.getLogger(__name__)

ERROR = "⚠️ Error: "


def format_error(message: str) -> str:
    """The one look of an error line (tests and scripts match on ``ERROR``)."""
    return f"{ERROR}{message}"


def error_message(exc: Exception, where: str = "a handler") -> str:
    """A user-facing message for ``exc``; unexpected ones are logged with their traceback (``where`` says which
    part of the app failed)."""
    if isinstance(exc, LlmplayError):
        return str(exc)
    log.exception("%s failed", where)
    return f"something unexpected went wrong ({type(exc).__name__}: {exc})."


def safe(*fallback, describe: Callable[[Exception], str] | None = None):
    """Decorator: any exception from the handler becomes an error line in its first output; ``fallback`` fills
    the other outputs (a value, ``gr.skip()`` to leave one as it is, or a callable called for a fresh value).
    ``describe``: the error line for an exception (default: ``format_error(error_message(exc))``)."""

    def decorate(fn):
        @wraps(fn)
        def inner(*args, **kwargs):
            try:
                return fn(*args, **kwargs)
            except Exception as exc:  # a handler must never take the app down
                message = describe(exc) if describe else format_error(error_message(exc, fn.__qualname__))
            values = [f() if callable(f) else f for f in fallback]
            return (message, *values) if fallback else message

        return inner

    return decorate


def send_feedback(db_path, send: Callable, where: str) -> str:
    """Run ``send(db)`` (a ``feedback.sources`` send) on a fresh connection and say what it stored, or what went
    wrong as an error line (never raises). ``where``: which tab's feedback, for the log."""
    from llmplay.feedback.sources import sent_message
    from llmplay.store import connect

    try:
        with connect(db_path) as db:
            sent = send(db)
    except Exception as exc:
        message = str(exc) if isinstance(exc, LlmplayError) else f"could not send it ({type(exc).__name__}: {exc})."
        if not isinstance(exc, LlmplayError):
            log.exception("Sending %s feedback failed", where)
        return format_error(message)
    return sent_message(sent)
