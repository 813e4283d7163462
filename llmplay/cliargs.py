"""argparse types for the command line's paths and whole numbers: a bad value is argparse's own error
(usage, the flag, what was wrong; exit 2) before a command runs, never a traceback from deep inside it.

- ``path``: an empty path is refused (``Path("")`` is the current folder: ``llmplay backup ""`` would write
  there and report success);
- ``whole(name)``: text read by ``llmplay.limits.check_number`` with that parameter's range, so an id past
  SQLite's integers (``--to 99999999999999999999``) is a message, not an OverflowError at the query.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from llmplay.errors import InvalidRequestError
from llmplay.limits import check_number


def path(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("a path cannot be empty (give a folder or file explicitly; . is this one)")
    return text


def whole(name: str) -> Callable[[str], int]:
    """The argparse type of a whole-number flag checked as ``llmplay.limits.LIMITS[name]``."""

    def parse(text: str) -> int:
        try:
            return check_number(name, text, label="the value")
        except InvalidRequestError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    parse.__name__ = name  # argparse names the type in its "invalid <type> value" fallback
    return parse
