"""Every number a user can set, its type and range, in one table; and the one check that the engine, the
evaluation configs, the CLI and the UI all use, so a bad value is refused with a message that names it.

What ``check_number`` accepts (the same everywhere):
- a number of the right type: any finite int or float for a real parameter; an int for a whole-number
  one, or a float with no fraction (4.0: a browser's number box sends those) -- never 1.5 cut to 1;
- numeric text ("4", " 0.7 ", "1e3") from text boxes, command-line flags and YAML strings, parsed exactly
  (``exact=False``, the default); ``exact=True`` (the engine's own check of a built request) refuses text;
- nothing else: not True/False, not None or "" (callers that give a blank a meaning handle it first).
Nothing is clamped or rounded: a value out of range is refused, never moved into it.
"""

from __future__ import annotations

import math
import numbers
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from llmplay.errors import InvalidRequestError, short

MAX_SEED = 2**32 - 1  # numpy's seeds are 32-bit; torch and most endpoints take at least that
MAX_ID = 2**31 - 1  # run ids and template versions: beyond any real count, inside every integer type on the way
MAX_ROWS = 100_000  # as llmplay.datasets.MAX_ROWS: no dataset has more rows
# Stop strings: each one costs the local engine a table over the whole vocabulary per character (measured:
# 8 x 100 characters add 0.5 s to a request, 8 x 200 1.4 s; a megabyte took 39 s and 183 GiB).
MAX_STOP_STRINGS = 8
MAX_STOP_CHARS = 100
MAX_STOP_TOTAL = 400
_TEXT_CHARS = 100  # longer text cannot be a number worth parsing


@dataclass(frozen=True)
class Limit:
    kind: type  # int or float
    low: int | float
    high: int | float | None  # None: the Settings field ``setting`` holds it
    setting: str | None = None
    low_open: bool = False  # the low end itself is not allowed (top_p must be above 0)
    meaning: str = ""  # what the value is, for help texts


LIMITS: dict[str, Limit] = {
    # Decoding (GenerationParams), everywhere a model generates: Playground, Templates, Evaluate, Compare, Arena.
    "max_new_tokens": Limit(int, 1, None, setting="max_new_tokens_limit", meaning="tokens to generate at most"),
    "temperature": Limit(float, 0, 2, meaning="0 = greedy; above 2 replies are noise"),
    "top_p": Limit(float, 0, 1, low_open=True, meaning="nucleus sampling mass; 1 = off"),
    "top_k": Limit(int, 0, 200, meaning="sample among the k likeliest tokens; 0 = off"),
    "repetition_penalty": Limit(float, 0.5, 2, meaning="1 = off"),
    "seed": Limit(int, 0, MAX_SEED, meaning="decoding seed"),
    # Evaluation runs.
    "sample": Limit(int, 1, MAX_ROWS, meaning="rows drawn from the dataset"),
    "sample_seed": Limit(int, 0, MAX_SEED, meaning="seed of the row sample"),
    "row": Limit(int, 0, MAX_ROWS - 1, meaning="a dataset row, 0-based"),
    "run_id": Limit(int, 1, MAX_ID, meaning="an evaluation run"),
    # Evaluate and Compare: a column of a run or comparison, 1-based (callers pass the actual count as high).
    "column": Limit(int, 1, 16, meaning="a column, 1-based"),
    # Templates.
    "template_version": Limit(int, 1, MAX_ID, meaning="a saved version of a template"),
    # Command-line ids and counts (llmplay/cliargs.py): a job, a version, an update, a feedback item.
    "record_id": Limit(int, 1, MAX_ID, meaning="a stored record's id"),
    "version_or_base": Limit(int, 0, MAX_ID, meaning="a version id; 0 = the base model"),
    "list_count": Limit(int, 1, MAX_ROWS, meaning="how many to keep or list"),
    "context_length": Limit(int, 1, 10_000_000, meaning="tokens a model reads at most"),
}

_NUMBER_TEXT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
REQUIRED = object()  # check_number's default for ``blank``: a blank value is refused


def bounds(name: str, settings=None, high: int | float | None = None) -> tuple[int | float, int | float]:
    """(low, high) of parameter ``name``; ``high`` overrides it, else ``settings`` (or the defaults) give it."""
    limit = LIMITS[name]
    if high is None:
        high = limit.high
    if high is None:
        from llmplay.settings import Settings

        high = getattr(settings or Settings, limit.setting)
    return limit.low, high


def span(name: str, settings=None, high=None) -> str:
    """The range in words: "between 0 and 200", "greater than 0 and at most 1"."""
    low, high = bounds(name, settings, high)
    return f"greater than {low} and at most {high}" if LIMITS[name].low_open else f"between {low} and {high}"


def describe(name: str, settings=None, high=None, label: str | None = None) -> str:
    """What the parameter must be, e.g. "seed must be a whole number between 0 and 4294967295"."""
    kind = "a whole number" if LIMITS[name].kind is int else "a number"
    return f"{label or name} must be {kind} {span(name, settings, high)}"


def check_number(
    name: str,
    value,
    *,
    settings=None,
    high: int | float | None = None,
    label: str | None = None,
    blank=REQUIRED,
    exact: bool = False,
) -> int | float:
    """``value`` as parameter ``name``'s type, or InvalidRequestError naming it (``label`` if given) and its range.

    ``blank``: what None or empty text stands for (e.g. None for "no seed"); by default a blank is refused.
    ``exact``: refuse text and, for whole-number parameters, floats (for values that should be parsed already).
    """
    if value is None or (not exact and isinstance(value, str) and not value.strip()):
        if blank is not REQUIRED:
            return blank
        raise InvalidRequestError(f"{describe(name, settings, high, label)}; got no value.")
    limit, (low, top) = LIMITS[name], bounds(name, settings, high)
    number = _as_number(value, exact=exact, whole=limit.kind is int)
    if number is None:
        raise InvalidRequestError(f"{describe(name, settings, high, label)}; got {_shown(value)}.")
    if number < low or number > top or (limit.low_open and number == low):  # before int(): 1e999 is cheap here
        raise InvalidRequestError(f"{label or name} must be {span(name, settings, high)}; got {_typed(value)}.")
    if limit.kind is int and number != int(number):
        raise InvalidRequestError(f"{describe(name, settings, high, label)}; got {_typed(value)}.")
    return int(number) if limit.kind is int else float(number)


def _as_number(value, *, exact: bool, whole: bool) -> int | float | Decimal | None:
    """The value as a finite number (Decimal for text, so big or precise text is read exactly), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, numbers.Integral):  # numpy's too (pandas hands those out)
        return int(value)
    if isinstance(value, numbers.Real):
        value = float(value)
        if not math.isfinite(value) or (exact and whole):
            return None
        return value
    if isinstance(value, str) and not exact:
        text = value.strip()
        if len(text) > _TEXT_CHARS or not _NUMBER_TEXT.fullmatch(text):
            return None
        try:
            return Decimal(text)
        except InvalidOperation:
            return None
    return None


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _typed(value) -> str:
    """A value that is a number, shown as given (numeric text as typed, without quotes)."""
    return _cut(value.strip(), 40) if isinstance(value, str) else _shown(value)


def _shown(value) -> str:
    if isinstance(value, str):
        return f"the text {short(value, 40)}"
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return short(value, 40)
    return f"{short(value, 40)} ({type(value).__name__})"


def check_stop(stop) -> tuple[str, ...]:
    """Stop strings as a tuple: one text is one stop string (never its characters); empty ones are dropped.
    InvalidRequestError past MAX_STOP_STRINGS strings, MAX_STOP_CHARS characters each or MAX_STOP_TOTAL in all."""
    if stop is None:
        return ()
    if isinstance(stop, str):
        stop = (stop,)
    if not isinstance(stop, list | tuple):
        raise InvalidRequestError(f"stop must be text or a list of texts; got {_shown(stop)}.")
    if len(stop) > MAX_STOP_STRINGS:
        raise InvalidRequestError(f"stop: at most {MAX_STOP_STRINGS} stop strings are supported; got {len(stop)}.")
    for s in stop:
        if not isinstance(s, str):
            raise InvalidRequestError(f"stop strings must be texts; got {_shown(s)}.")
        if len(s) > MAX_STOP_CHARS:
            raise InvalidRequestError(
                f"a stop string can have at most {MAX_STOP_CHARS} characters; got {len(s):,} ({short(s, 30)})."
            )
    total = sum(len(s) for s in stop)
    if total > MAX_STOP_TOTAL:
        raise InvalidRequestError(f"stop strings can have at most {MAX_STOP_TOTAL} characters in all; got {total:,}.")
    return tuple(s for s in stop if s)
