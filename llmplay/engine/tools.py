"""Tools a request offers the model (OpenAI's function format) and the one text form every tool call takes.

A tool is ``{"type": "function", "function": {"name", "description", "parameters": <JSON Schema>}}``; the bare
``{"name", "description", "parameters"}`` form is accepted and turned into it (``normalize_tools``).

Whichever path a reply comes by, a tool call reads the same: ``<tool_call>{"name": ..., "arguments": {...}}
</tool_call>`` (``call_text``). Local chat models whose chat template renders tools get them that way; for a
template that ignores them (SmolLM2's does) the tools are described in the system message, which asks for that
form (``with_tools_block``). Endpoints get ``tools`` in the request body and their ``tool_calls`` are written
back in that form, so evaluation and llmplay's own API read every reply alike (``parse_calls``).
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Sequence
from typing import Any

CALL_OPEN, CALL_CLOSE = "<tool_call>", "</tool_call>"
TOOL_NAME_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # OpenAI's rule for function names
MAX_TOOLS = 64
_BLOCK = re.compile(re.escape(CALL_OPEN) + r"(.*?)(?:" + re.escape(CALL_CLOSE) + r"|$)", re.DOTALL)


# ---- tools --------------------------------------------------------------------------------------------------


def normalize_tools(
    raw: Any, where: str = "tools", schema_problem: Callable[[Any], str | None] | None = None
) -> tuple[tuple[dict, ...], list[str]]:
    """(the tools in OpenAI's form, every problem found). ``schema_problem`` checks each ``parameters`` (templates
    pass their JSON Schema check); without it, parameters need only be a mapping."""
    if raw is None:
        return (), []
    if not isinstance(raw, list):
        return (), [f"{where} must be a list of functions ({{name, description, parameters}})"]
    if len(raw) > MAX_TOOLS:
        return (), [f"{where} has {len(raw)} entries; at most {MAX_TOOLS} are accepted"]
    tools, problems, seen = [], [], set()
    for i, entry in enumerate(raw):
        label = f"{where}[{i}]"
        if isinstance(entry, dict) and ("function" in entry or "type" in entry):  # OpenAI's form
            kind = entry.get("type", "function")
            if kind != "function":
                problems.append(f"{label}: type must be 'function'; got {str(kind)[:40]!r}")
                continue
            extra = sorted(set(entry) - {"type", "function"})
            entry = entry.get("function")
        else:
            extra = []
        if not isinstance(entry, dict):
            problems.append(f"{label} must be a mapping with name, description and parameters")
            continue
        extra += sorted(set(entry) - {"name", "description", "parameters", "strict"})
        if extra:
            problems.append(f"{label}: unknown field(s) {', '.join(map(str, extra))[:120]}")
        name = entry.get("name")
        if not isinstance(name, str) or not TOOL_NAME_RE.match(name):
            problems.append(f"{label}: name must be 1-64 letters, digits, '_' or '-'; got {str(name)[:40]!r}")
            continue
        label = f"{where} {name!r}"
        if name in seen:
            problems.append(f"{label} is declared twice")
        seen.add(name)
        description = entry.get("description", "")
        if not isinstance(description, str):
            problems.append(f"{label}: description must be text")
            description = str(description)
        parameters = entry.get("parameters", {"type": "object", "properties": {}})
        if not isinstance(parameters, dict):
            problems.append(f"{label}: parameters must be a JSON Schema object (a mapping)")
            continue
        problem = schema_problem(parameters) if schema_problem is not None else None
        if problem:
            problems.append(f"{label}: parameters {problem}")
        if parameters.get("type", "object") != "object":
            problems.append(f"{label}: parameters must describe an object (type: object): calls name their arguments")
        tools.append(
            {"type": "function", "function": {"name": name, "description": description, "parameters": parameters}}
        )
    return tuple(tools), problems


def tool_names(tools: Sequence[dict]) -> list[str]:
    return [t["function"]["name"] for t in tools]


def find_tool(tools: Sequence[dict], name: str) -> dict | None:
    """The ``function`` part of the tool called ``name``, or None."""
    return next((t["function"] for t in tools if t["function"]["name"] == name), None)


def _signature(function: dict) -> str:
    """``name(arg: type, optional?: type): description``: a tool in one line a small model can follow."""
    parameters = function.get("parameters") or {}
    required = set(parameters.get("required") or ())
    args = []
    for name, schema in (parameters.get("properties") or {}).items():
        schema = schema if isinstance(schema, dict) else {}
        if isinstance(schema.get("enum"), list):
            kind = " | ".join(json.dumps(v, ensure_ascii=False) for v in schema["enum"])
        else:
            kind = schema.get("type", "any")
            kind = " | ".join(map(str, kind)) if isinstance(kind, list) else str(kind)
        args.append(f"{name}{'' if name in required else '?'}: {kind}")
    description = f": {function['description']}" if function.get("description") else ""
    return f"- {function['name']}({', '.join(args)}){description}"


def tools_block(tools: Sequence[dict]) -> str:
    """The system-message text that offers ``tools`` to a model whose chat template does not render them: one
    line per tool (whole JSON Schemas made SmolLM2-135M copy schema keywords into its arguments)."""
    lines = ["You can call these tools (arguments marked ? are optional):"]
    lines += [_signature(t["function"]) for t in tools]
    lines += [
        f'To call a tool, reply with the call only: {CALL_OPEN}{{"name": "<tool>", "arguments": {{...}}}}{CALL_CLOSE}',
        "When no tool fits the request, answer in plain text without a call.",
    ]
    return "\n".join(lines)


def with_tools_block(messages: list[dict], tools: Sequence[dict]) -> list[dict]:
    """``messages`` with the tools described at the end of the system message (a new one when there is none)."""
    if not tools:
        return messages
    block = tools_block(tools)
    if messages and messages[0]["role"] == "system":
        first = dict(messages[0], content=f"{messages[0]['content']}\n\n{block}".strip())
        return [first, *messages[1:]]
    return [{"role": "system", "content": block}, *messages]


# ---- calls --------------------------------------------------------------------------------------------------


def call_text(name: str, arguments: Any) -> str:
    """One call in the canonical text form (``arguments`` a mapping, or JSON text of one)."""
    if isinstance(arguments, str):
        with contextlib.suppress(ValueError):  # kept as text: evaluation finds it is not an object
            arguments = json.loads(arguments) if arguments.strip() else {}
    return CALL_OPEN + json.dumps({"name": name, "arguments": arguments}, ensure_ascii=False) + CALL_CLOSE


def _call_of(value: Any) -> dict | None:
    """{"name", "arguments"} from a parsed call object (arguments may come as JSON text), or None."""
    if not isinstance(value, dict):
        return None
    if isinstance(value.get("function"), dict):  # an OpenAI tool_calls entry
        value = value["function"]
    name = value.get("name")
    if not isinstance(name, str) or not name.strip():
        return None
    arguments = value.get("arguments", value.get("parameters", {}))
    if isinstance(arguments, str):
        with contextlib.suppress(ValueError):  # kept as text: evaluation finds it is not an object
            arguments = json.loads(arguments) if arguments.strip() else {}
    return {"name": name.strip(), "arguments": arguments}


def _json_values(text: str) -> list[Any]:
    """Every top-level JSON object or list that starts somewhere in ``text``, in order."""
    decoder, found, i = json.JSONDecoder(), [], 0
    while i < len(text):
        if text[i] in "{[":
            try:
                value, end = decoder.raw_decode(text, i)
            except ValueError:
                i += 1
                continue
            found.append(value)
            i = end
        else:
            i += 1
    return found


def parse_calls(text: str | None) -> tuple[list[dict], bool]:
    """(the calls in a reply, whether it tried a call that could not be read).

    ``<tool_call>`` blocks first (an unclosed last block counts: replies get cut by max_new_tokens); without any,
    a bare JSON object (or list of them) with a ``name`` and ``arguments`` anywhere in the reply. Each call is
    ``{"name", "arguments"}``, arguments as the model gave them (JSON text is parsed)."""
    if not text:
        return [], False
    blocks = _BLOCK.findall(text)
    if blocks:
        calls, broken = [], False
        for block in blocks:
            values = _json_values(block)
            found = [c for v in values for c in (v if isinstance(v, list) else [v]) if _call_of(c)]
            if found:
                calls += [_call_of(c) for c in found]
            else:
                broken = True
        return calls, broken and not calls
    calls = []
    for value in _json_values(text):
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, dict) and ("arguments" in item or "function" in item or "parameters" in item):
                call = _call_of(item)
                if call:
                    calls.append(call)
    return calls, False
