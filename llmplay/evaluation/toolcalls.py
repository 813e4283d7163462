"""Tool calls: did the model call the right tool, with arguments valid against its schema and equal to the
reference, and no tool when none is wanted. The pure functions behind the ``tool_called``, ``tool_args_valid``,
``tool_args_match`` and ``tool_no_call`` metric modules.

Replies are read by ``engine.tools.parse_calls`` (``<tool_call>{...}</tool_call>`` blocks, or a bare JSON object
with a name and arguments). A template with ``tools`` gets as its parsed answer the reply's first call as JSON,
``{"name": ..., "arguments": {...}}``, or ``none`` when the reply makes no call; a reply that tries a call that
cannot be read (``<tool_call>`` with no JSON call in it) has no answer (unparseable). Later calls of a reply are
not scored: a row's reference is one call.

The reference column holds, per row, the expected call as a JSON object ``{"name": ..., "arguments": {...}}``, or
``none`` / ``null`` / an empty cell when no call is expected. Every metric scores every row (0 or 1), so scores
have intervals and paired comparisons like any other metric:

- ``tool_called``: the first call names the reference's tool;
- ``tool_args_valid``: the first call names one of the template's tools and its arguments satisfy that tool's
  parameters schema (whichever tool the reference expects);
- ``tool_args_match``: the first call names the reference's tool and its arguments equal the reference's (same
  argument names, values compared as ``structured.values_equal`` does: text ignoring case and spacing, numbers by
  value);
- ``tool_no_call``: the reply calls a tool exactly when the reference expects one.

A row that expects no call scores 1 on every metric when the reply makes no call, and 0 when it makes one.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from llmplay.engine.tools import find_tool, normalize_tools, parse_calls
from llmplay.evaluation.structured import values_equal
from llmplay.templates.model import Template, schema_problem

NO_CALL = "none"
_NO_CALL_TEXTS = {"", "none", "null", "nan", "no call", "no_call"}  # nan: an empty cell read by pandas


# ---- reading ------------------------------------------------------------------------------------------------


def call_json(call: dict) -> str:
    return json.dumps({"name": call["name"], "arguments": call["arguments"]}, ensure_ascii=False)


def reply_answer(template: Template, reply: str) -> str | None:
    """The answer the grid shows and metrics score: the first call's JSON, ``none``, or None (a call that could
    not be read). Templates without tools use their output spec."""
    if not template.tools:
        return template.output.extract(reply)
    calls, broken = parse_calls(reply)
    if calls:
        return call_json(calls[0])
    return None if broken else NO_CALL


def answer_call(text: str | None) -> dict | None | bool:
    """What a prediction holds: a call ``{"name", "arguments"}``, False for no call, None for no readable call
    (a failed row, or a reply that tried one). Accepts parsed answers and whole replies alike."""
    if text is None:
        return None
    if text.strip().casefold() in _NO_CALL_TEXTS:
        return False
    calls, broken = parse_calls(text)
    if calls:
        return calls[0]
    return None if broken else False


def reference_call(value: Any, row: int) -> dict | None:
    """A row's expected call, or None when it expects none; anything else is the dataset's mistake."""
    if value is None or (isinstance(value, float) and value != value):  # an empty cell read by pandas: NaN
        return None
    if isinstance(value, str) and value.strip().casefold() in _NO_CALL_TEXTS:
        return None
    parsed = value
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            parsed = None
    if isinstance(parsed, dict) and isinstance(parsed.get("name"), str) and parsed["name"].strip():
        arguments = parsed.get("arguments", {})
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments) if arguments.strip() else {}
            except ValueError:
                arguments = None
        if isinstance(arguments, dict):
            return {"name": parsed["name"].strip(), "arguments": arguments}
    shown = str(value)[:60]
    raise ValueError(
        f'row {row + 1}: the reference must be a call such as {{"name": "get_weather", "arguments": {{"city": '
        f'"Oslo"}}}}, or none when no call is expected; got {shown!r}'
    )


# ---- metrics ------------------------------------------------------------------------------------------------


def _rows(predictions: Sequence[str | None], references: Sequence[Any]):
    """(got, want) per row: got a call, False (none) or None (unreadable); want a call or None."""
    if len(predictions) != len(references):
        raise ValueError(f"{len(predictions)} predictions but {len(references)} references")
    return [(answer_call(p), reference_call(r, i)) for i, (p, r) in enumerate(zip(predictions, references))]


def _result(rows: list[float], pairs: list, **details) -> dict[str, Any]:
    return {
        "score": sum(rows) / len(rows) if rows else 0.0,
        "per_row": rows,
        "row_mean": True,
        "unparseable": sum(got is None for got, _ in pairs),
        "no_call_rows": sum(want is None for _, want in pairs),
        **details,
    }


def _no_call_row(got) -> float:
    return float(got is False)


def tool_called(predictions: Sequence[str | None], references: Sequence[Any]) -> dict[str, Any]:
    """Per row, 1 when the first call names the reference's tool (a no-call row: 1 when there is no call).
    Details: which tools were called instead of the expected one ("wrong": {expected: {called: count}})."""
    pairs, rows, wrong = _rows(predictions, references), [], {}
    for got, want in pairs:
        if want is None:
            rows.append(_no_call_row(got))
            continue
        ok = isinstance(got, dict) and got["name"] == want["name"]
        rows.append(float(ok))
        if not ok:
            called = got["name"] if isinstance(got, dict) else ("no call" if got is False else "unreadable")
            wrong.setdefault(want["name"], {}).setdefault(called, 0)
            wrong[want["name"]][called] += 1
    return _result(rows, pairs, wrong=wrong)


def tool_args_valid(
    predictions: Sequence[str | None], references: Sequence[Any], tools: Sequence[dict]
) -> dict[str, Any]:
    """Per row, 1 when the first call names one of ``tools`` and its arguments are valid against that tool's
    parameters schema (a no-call row: 1 when there is no call). Failures says why each other row failed."""
    tools, problems = normalize_tools(list(tools), schema_problem=schema_problem)
    if problems:
        raise ValueError("the tools are not valid: " + "; ".join(problems))
    from jsonschema import validators
    from jsonschema.exceptions import best_match

    checkers = {}
    pairs, rows, failures = _rows(predictions, references), [], {}
    for i, (got, want) in enumerate(pairs):
        if want is None and got is not None:
            rows.append(_no_call_row(got))
            if got is not False:
                failures[i] = f"called {got['name']} where no call is expected"
            continue
        if not isinstance(got, dict):
            failures[i] = "no call" if got is False else "no readable call"
        elif (tool := find_tool(tools, got["name"])) is None:
            failures[i] = f"{got['name']!r} is not one of the template's tools"
        else:
            schema = tool["parameters"]
            checker = checkers.setdefault(got["name"], validators.validator_for(schema)(schema))
            error = best_match(checker.iter_errors(got["arguments"]))
            if error is not None:
                where = "/".join(str(p) for p in error.absolute_path)
                failures[i] = f"{got['name']}: {where + ': ' if where else ''}{error.message}"
        rows.append(float(i not in failures))
    return _result(rows, pairs, failures=failures)


def tool_args_match(predictions: Sequence[str | None], references: Sequence[Any]) -> dict[str, Any]:
    """Per row, 1 when the first call names the reference's tool with arguments equal to the reference's (a
    no-call row: 1 when there is no call). Details: each argument's share of rows right where the tool was."""
    pairs, rows, seen, right = _rows(predictions, references), [], {}, {}
    for got, want in pairs:
        if want is None:
            rows.append(_no_call_row(got))
            continue
        if not (isinstance(got, dict) and got["name"] == want["name"]):
            rows.append(0.0)
            continue
        args = got["arguments"] if isinstance(got["arguments"], dict) else {}
        for key, value in want["arguments"].items():
            name = f"{want['name']}.{key}"
            seen[name] = seen.get(name, 0) + 1
            right[name] = right.get(name, 0) + (key in args and values_equal(args[key], value))
        rows.append(float(isinstance(got["arguments"], dict) and values_equal(got["arguments"], want["arguments"])))
    return _result(rows, pairs, arguments={k: right[k] / seen[k] for k in seen})


def tool_no_call(predictions: Sequence[str | None], references: Sequence[Any]) -> dict[str, Any]:
    """Per row, 1 when the reply calls a tool exactly when the reference expects one. Details: false_calls (a call
    where none is expected) and missed_calls (no call where one is expected); an unreadable call counts as a call
    on a no-call row and as missed on the others."""
    pairs, rows = _rows(predictions, references), []
    false_calls = missed = 0
    for got, want in pairs:
        if want is None:
            ok = got is False
            false_calls += not ok
        else:
            ok = isinstance(got, dict)
            missed += not ok
        rows.append(float(ok))
    return _result(rows, pairs, false_calls=false_calls, missed_calls=missed)
