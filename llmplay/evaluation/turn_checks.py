"""Conversation metrics: each assistant turn's reply against the script's ``expect`` for that turn.

The pure functions behind the ``turn_pass`` and ``conversation_pass`` metric modules. A cell's answer is the JSON
list of the model's replies (evaluation/conversations.py); its reference is the JSON list of each turn's
expectations (null for a turn that is not checked), read from the row's script by the scorer.

An expectation is a mapping of checks, all of which must hold (text compared ignoring case and runs of spaces):

- ``contains``: a text, or a list of texts that must all appear
- ``contains_any``: a list of texts, at least one of which must appear
- ``not_contains``: a text, or a list of texts none of which may appear
- ``regex``: a regular expression the reply must match (searched, case-insensitive)
- ``equals``: the whole reply, normalised
- ``max_chars``: the reply's length at most this

A turn the model never reached (the conversation failed before it) counts as failed; a conversation with no
checked turn is the dataset's mistake and stops the metric with the row named.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

CHECKS = ("contains", "contains_any", "not_contains", "regex", "equals", "max_chars")


def _norm(text: str) -> str:
    return " ".join(str(text).split()).casefold()


def _texts(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def expectation_problem(expect: Any) -> str | None:
    """Why ``expect`` is not a usable expectation, or None."""
    if not isinstance(expect, dict) or not expect:
        return "expect must be a mapping of checks such as {contains: refund}"
    unknown = sorted(set(map(str, expect)) - set(CHECKS))
    if unknown:
        return f"unknown check(s) {', '.join(unknown)}; known: {', '.join(CHECKS)}"
    if "regex" in expect:
        try:
            re.compile(str(expect["regex"]))
        except re.error as exc:
            return f"regex is not a valid regular expression: {exc}"
    if "max_chars" in expect and (isinstance(expect["max_chars"], bool) or not isinstance(expect["max_chars"], int)):
        return "max_chars must be a whole number"
    return None


def failed_checks(reply: str | None, expect: dict) -> list[str]:
    """The checks of ``expect`` that ``reply`` fails (empty: it passes); no reply fails every check."""
    if reply is None:
        return ["no reply"]
    text = _norm(reply)
    failed = []
    if "contains" in expect:
        missing = [t for t in _texts(expect["contains"]) if _norm(t) not in text]
        failed += [f"contains {t!r}" for t in missing]
    if "contains_any" in expect:
        options = _texts(expect["contains_any"])
        if not any(_norm(t) in text for t in options):
            failed.append(f"contains one of {options!r}")
    if "not_contains" in expect:
        found = [t for t in _texts(expect["not_contains"]) if _norm(t) in text]
        failed += [f"does not contain {t!r}" for t in found]
    if "regex" in expect and not re.search(str(expect["regex"]), reply, re.IGNORECASE):
        failed.append(f"matches {expect['regex']!r}")
    if "equals" in expect and text != _norm(expect["equals"]):
        failed.append(f"equals {expect['equals']!r}")
    if "max_chars" in expect and len(reply) > int(expect["max_chars"]):
        failed.append(f"at most {expect['max_chars']} characters")
    return failed


def _replies(answer: str | None) -> list[str]:
    if answer is None:
        return []
    try:
        value = json.loads(answer)
    except ValueError:
        return []
    return [str(v) for v in value] if isinstance(value, list) else []


def _expectations(reference: Any, row: int) -> list[dict | None]:
    value = json.loads(reference) if isinstance(reference, str) else reference
    if not isinstance(value, list):
        raise ValueError(f"row {row + 1}: the turn expectations must be a list (one per assistant turn)")
    for turn, expect in enumerate(value, 1):
        problem = expect is not None and expectation_problem(expect)
        if problem:
            raise ValueError(f"row {row + 1}, turn {turn}: {problem}")
    if not any(e is not None for e in value):
        raise ValueError(f"row {row + 1}: no assistant turn has an expect: nothing to check")
    return value


def turn_results(answer: str | None, reference: Any, row: int) -> list[tuple[int, bool]]:
    """(turn number, passed) for each checked turn of one conversation."""
    replies, expectations = _replies(answer), _expectations(reference, row)
    out = []
    for turn, expect in enumerate(expectations):
        if expect is None:
            continue
        reply = replies[turn] if turn < len(replies) else None
        out.append((turn + 1, not failed_checks(reply, expect)))
    return out


def turn_pass(predictions: Sequence[str | None], references: Sequence[Any]) -> dict[str, Any]:
    """Per row, the share of its checked turns that passed; details: the pass rate at each turn number."""
    rows, by_turn = [], {}
    for i, (answer, reference) in enumerate(zip(predictions, references)):
        results = turn_results(answer, reference, i)
        rows.append(sum(ok for _, ok in results) / len(results))
        for turn, ok in results:
            passed, seen = by_turn.get(turn, (0, 0))
            by_turn[turn] = (passed + ok, seen + 1)
    per_turn = {f"turn {t}": round(p / n, 4) for t, (p, n) in sorted(by_turn.items())}
    return {"score": sum(rows) / len(rows), "per_row": rows, "row_mean": True, "per_turn": per_turn}


def conversation_pass(predictions: Sequence[str | None], references: Sequence[Any]) -> dict[str, Any]:
    """Per row, 1 when every checked turn passed; details: how many conversations first failed at each turn."""
    rows, first_failures = [], {}
    for i, (answer, reference) in enumerate(zip(predictions, references)):
        results = turn_results(answer, reference, i)
        failed = [turn for turn, ok in results if not ok]
        rows.append(float(not failed))
        if failed:
            key = f"turn {failed[0]}"
            first_failures[key] = first_failures.get(key, 0) + 1
    return {
        "score": sum(rows) / len(rows),
        "per_row": rows,
        "row_mean": True,
        "first_failure": dict(sorted(first_failures.items(), key=lambda kv: int(kv[0].split()[1]))),
    }
