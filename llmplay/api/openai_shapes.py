"""The OpenAI wire format of llmplay's API (``/v1``): reading a request body into an engine request, and writing
results, stream chunks and errors in the shapes the official clients expect.

No HTTP and no engine here: plain dicts in and out, so every rule is unit-testable. Unknown fields are ignored,
as OpenAI's API does; a field of the wrong type or out of range is a 400 naming it.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass

from llmplay.engine.tools import normalize_tools, parse_calls
from llmplay.engine.types import GenerationParams, GenerationRequest, GenerationResult
from llmplay.errors import LlmplayError
from llmplay.templates.model import schema_problem

ROLES = ("system", "user", "assistant", "developer")  # OpenAI's "developer" is a system message
MAX_MESSAGES = 1000
MAX_STOP = 4  # OpenAI's own limit on stop strings


class ApiError(LlmplayError):
    """An error the API answers with, in OpenAI's shape: ``status`` and ``type`` / ``code`` as OpenAI uses them."""

    def __init__(self, message: str, status: int = 400, type_: str = "invalid_request_error", *, param=None, code=None):
        super().__init__(message)
        self.status, self.type, self.param, self.code = status, type_, param, code

    def body(self) -> dict:
        return {"error": {"message": str(self), "type": self.type, "param": self.param, "code": self.code}}


def bad(message: str, param: str | None = None) -> ApiError:
    return ApiError(message, 400, "invalid_request_error", param=param)


@dataclass(frozen=True)
class ApiCall:
    """What a request asks for, checked: the model's name as asked, the engine request, streaming options."""

    model: str
    request: GenerationRequest
    stream: bool
    include_usage: bool
    chat: bool

    @property
    def tools(self) -> bool:
        """The request offers tools: the reply is read for tool calls (``message.tool_calls``)."""
        return bool(self.request.tools)


def _number(body: dict, name: str, kind: type, low: float, high: float | None = None, default=None):
    value = body.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float) or (kind is int and not float(value).is_integer()):
        raise bad(f"'{name}' must be {'an integer' if kind is int else 'a number'}; got {value!r}.", name)
    if value < low or (high is not None and value > high):
        span = f"between {low:g} and {high:g}" if high is not None else f"at least {low:g}"
        raise bad(f"'{name}' must be {span}; got {value!r}.", name)
    return kind(value)


def _stop(body: dict) -> tuple[str, ...]:
    stop = body.get("stop")
    if stop is None:
        return ()
    stops = [stop] if isinstance(stop, str) else stop
    if not isinstance(stops, list) or not all(isinstance(s, str) for s in stops):
        raise bad("'stop' must be a string or a list of strings.", "stop")
    if len(stops) > MAX_STOP:
        raise bad(f"'stop' takes at most {MAX_STOP} strings; got {len(stops)}.", "stop")
    return tuple(s for s in stops if s)


def _params(body: dict, max_tokens_limit: int) -> GenerationParams:
    n = _number(body, "n", int, 1, None, 1)
    if n != 1:
        raise bad("'n' must be 1: llmplay returns one choice per request (send the request again for more).", "n")
    limit = max_tokens_limit
    max_tokens = _number(body, "max_completion_tokens", int, 1, limit)
    if max_tokens is None:
        max_tokens = _number(body, "max_tokens", int, 1, limit, min(256, limit))
    return GenerationParams(
        max_new_tokens=max_tokens,
        temperature=_number(body, "temperature", float, 0, 2, 1.0),  # OpenAI's default is 1 (sampling)
        top_p=_number(body, "top_p", float, 0, 1, 1.0) or 1.0,
        stop=_stop(body),
        seed=_number(body, "seed", int, 0, 2**63 - 1),
    )


def _content(value, where: str) -> str:
    """A message's content: text, or OpenAI's list of parts (text parts only)."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        texts = []
        for part in value:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise bad(f"{where}: only text content parts are supported.", "messages")
            texts.append(part["text"])
        return "".join(texts)
    if value is None:
        return ""
    raise bad(f"{where}: 'content' must be a string or a list of text parts.", "messages")


def _messages(body: dict) -> list[dict]:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad("'messages' must be a non-empty list of {role, content} objects.", "messages")
    if len(messages) > MAX_MESSAGES:
        raise bad(f"'messages' has {len(messages)} entries; at most {MAX_MESSAGES} are accepted.", "messages")
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            raise bad(f"messages[{i}] must be an object with a role of {', '.join(ROLES)}.", "messages")
        role = "system" if m["role"] == "developer" else m["role"]
        out.append({"role": role, "content": _content(m.get("content"), f"messages[{i}]")})
    return out


def _model(body: dict) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise bad("'model' is required: a name from GET /v1/models.", "model")
    return model.strip()


def _stream_options(body: dict) -> tuple[bool, bool]:
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise bad("'stream' must be true or false.", "stream")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict):
        raise bad("'stream_options' must be an object.", "stream_options")
    return stream, bool(options.get("include_usage"))


def _tools(body: dict) -> tuple[dict, ...] | None:
    """The request's ``tools`` (OpenAI's function format, parameters a valid JSON Schema), or None; ``tool_choice``
    may be "auto" (the default) or "none" (the tools are not offered). Anything else is a 400 naming it."""
    choice = body.get("tool_choice")
    if choice not in (None, "auto", "none"):
        raise bad("'tool_choice' must be 'auto' or 'none': llmplay lets the model choose.", "tool_choice")
    raw = body.get("tools")
    if raw is None or choice == "none":
        return None
    if not isinstance(raw, list) or not raw:
        raise bad("'tools' must be a non-empty list of {type: function, function: {name, parameters}}.", "tools")
    tools, problems = normalize_tools(raw, "tools", schema_problem=schema_problem)
    if problems:
        raise bad(f"'tools' is not valid: {'; '.join(problems[:3])}.", "tools")
    return tools


def parse_chat(body, max_tokens_limit: int) -> ApiCall:
    if not isinstance(body, dict):
        raise bad("The body must be a JSON object.")
    model, messages = _model(body), _messages(body)
    stream, usage = _stream_options(body)
    request = GenerationRequest.of(messages, _params(body, max_tokens_limit), tools=_tools(body))
    return ApiCall(model, request, stream, usage, True)


def parse_completion(body, max_tokens_limit: int) -> ApiCall:
    if not isinstance(body, dict):
        raise bad("The body must be a JSON object.")
    model, prompt = _model(body), body.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str):
        raise bad("'prompt' must be a string (one prompt per request).", "prompt")
    if body.get("echo") or body.get("logprobs") is not None or body.get("suffix") is not None:
        raise bad("'echo', 'logprobs' and 'suffix' are not supported.", "logprobs")
    stream, usage = _stream_options(body)
    return ApiCall(model, GenerationRequest.of(prompt, _params(body, max_tokens_limit)), stream, usage, False)


# ---- responses ----------------------------------------------------------------------------------------------


def new_id(chat: bool) -> str:
    return ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex


def usage(result: GenerationResult) -> dict:
    return {
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.completion_tokens,
        "total_tokens": result.prompt_tokens + result.completion_tokens,
    }


def finish_reason(result: GenerationResult) -> str:
    return "length" if result.finish_reason == "length" else "stop"


def tool_calls(call: ApiCall, result: GenerationResult) -> list[dict]:
    """The reply's tool calls in OpenAI's shape (arguments as JSON text); none unless the request offered tools."""
    if not call.tools:
        return []
    calls, _ = parse_calls(result.text)
    return [
        {
            "id": "call_" + uuid.uuid4().hex[:24],
            "type": "function",
            "function": {"name": c["name"], "arguments": json.dumps(c["arguments"], ensure_ascii=False)},
        }
        for c in calls
    ]


def completion_body(call: ApiCall, id_: str, result: GenerationResult, served: str) -> dict:
    """The whole answer of a non-streamed request. ``served``: the model (or version) that answered. A reply with
    tool calls (the request offered tools) has them as ``message.tool_calls``, no content, and finish_reason
    "tool_calls"."""
    calls = tool_calls(call, result) if call.chat else []
    if calls:
        message = {"role": "assistant", "content": None, "tool_calls": calls}
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": "tool_calls"}
        return _envelope(call, id_, served, "chat.completion", choice) | {"usage": usage(result)}
    if call.chat:
        choice = {"index": 0, "message": {"role": "assistant", "content": result.text}, "logprobs": None}
        kind = "chat.completion"
    else:
        choice = {"index": 0, "text": result.text, "logprobs": None}
        kind = "text_completion"
    choice["finish_reason"] = finish_reason(result)
    return _envelope(call, id_, served, kind, choice) | {"usage": usage(result)}


def _envelope(call: ApiCall, id_: str, served: str, kind: str, choice: dict) -> dict:
    """What every answer object carries around its one choice."""
    return {
        "id": id_,
        "object": kind,
        "created": int(time.time()),
        "model": call.model,
        "system_fingerprint": served,
        "choices": [choice],
    }


def chunk(call: ApiCall, id_: str, served: str, *, text: str = "", first: bool = False, finish=None) -> dict:
    """One server-sent event's object while streaming."""
    if call.chat:
        delta = {"role": "assistant", "content": text} if first else ({"content": text} if text else {})
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        kind = "chat.completion.chunk"
    else:
        choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish}
        kind = "text_completion"
    return _envelope(call, id_, served, kind, choice)


def tool_calls_chunk(call: ApiCall, id_: str, served: str, calls: list[dict]) -> dict:
    """A streamed reply's tool calls, whole, in one chunk (the reply is read once it has ended)."""
    body = chunk(call, id_, served)
    body["choices"][0]["delta"] = {"tool_calls": [{"index": i, **c} for i, c in enumerate(calls)]}
    return body


def usage_chunk(call: ApiCall, id_: str, served: str, result: GenerationResult) -> dict:
    """The last chunk when ``stream_options.include_usage``: no choices, the token counts."""
    body = chunk(call, id_, served)
    body["choices"] = []
    body["usage"] = usage(result)
    return body


def model_entry(name: str, owner: str) -> dict:
    return {"id": name, "object": "model", "created": 0, "owned_by": owner}
