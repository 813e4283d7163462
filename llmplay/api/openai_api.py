"""llmplay's OpenAI-compatible API, on the app's own server under ``/v1``: point any OpenAI client (or promptfoo)
at ``http://HOST:PORT/v1`` and it talks to llmplay's catalog models, trained versions (by label) and model lines
(``line:NAME``, always the line's active version, so a promotion or rollback changes the next answer).

- ``GET  /v1/models``             every model a caller may name
- ``POST /v1/chat/completions``   chat, streamed (server-sent events, ``data: [DONE]``) or not
- ``POST /v1/completions``        raw text completion, streamed or not

Who may call: with users configured, ``Authorization: Bearer <key>`` (``llmplay users key NAME``); the key acts
with its user's current role, and generating needs the ``generate`` permission (every role has it). With no
users (single-user mode) requests are taken from this machine only, unless ``LLMPLAY_API_OPEN=1``.
Requests take turns through their own ``concurrency.Gate`` (``LLMPLAY_GENERATION_CONCURRENCY`` at once, at most
``LLMPLAY_QUEUE_MAX`` waiting, then 429), so API traffic cannot take the tabs' slots. Errors come in OpenAI's
shape (``{"error": {"message", "type", "param", "code"}}``) with its status codes.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import closing

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse

from llmplay.api.openai_shapes import (
    ApiCall,
    ApiError,
    chunk,
    completion_body,
    model_entry,
    new_id,
    parse_chat,
    parse_completion,
    usage_chunk,
)
from llmplay.auth.access import AccessDenied, Caller, check, single_user_mode
from llmplay.auth.keys import key_user
from llmplay.auth.roles import requires
from llmplay.concurrency import Busy, Gate
from llmplay.engine import Engine, GenerationResult
from llmplay.errors import InvalidRequestError, LlmplayError, UnknownModelError
from llmplay.models.catalog import ModelSpec
from llmplay.models.lines import LINE_PREFIX
from llmplay.models.trained import line_active

log = logging.getLogger(__name__)

MAX_BODY = 4 * 1024 * 1024  # bytes of JSON; a bigger body is refused before it is parsed
WAIT_S = 600.0  # the longest a request waits for a generation slot
LOOPBACK = {"127.0.0.1", "::1", "localhost", "testclient"}
TRACE_HEADER = "X-Llmplay-Served-By"  # the model or version that answered (a line's active version)


def _error(exc: ApiError) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return JSONResponse(exc.body(), status_code=exc.status, headers=headers)


def _caller(engine: Engine, request: Request) -> Caller:
    """Who is calling, from the Bearer key (or this machine, in single-user mode); ApiError 401 / 403."""
    settings = engine.settings
    if single_user_mode(settings):
        host = request.client.host if request.client else ""
        if host not in LOOPBACK and not settings.api_open:
            raise ApiError(
                "This llmplay runs in single-user mode (no users), so its API answers this machine only. Add users "
                "and give the application a key (`llmplay users key NAME`), or set LLMPLAY_API_OPEN=1.",
                403,
                "permission_error",
            )
        return Caller("local", "admin", single_user=True)
    header = request.headers.get("authorization", "")
    scheme, _, key = header.partition(" ")
    if scheme.lower() != "bearer" or not key.strip():
        raise ApiError("Send an API key: 'Authorization: Bearer <key>' (`llmplay users key NAME`).", 401,
                       "authentication_error", code="invalid_api_key")  # fmt: skip
    found = key_user(settings, key.strip())
    if found is None:
        raise ApiError("Invalid API key (unknown, revoked, or its user was removed).", 401, "authentication_error",
                       code="invalid_api_key")  # fmt: skip
    return Caller(*found)


def _allowed(engine: Engine, caller: Caller, permission: str, action: str) -> None:
    try:
        check(engine.settings, caller, permission, action, audit=False)
    except AccessDenied as exc:
        raise ApiError(str(exc), 403, "permission_error") from None


async def _body(request: Request):
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise ApiError(f"The body is {len(raw):,} bytes; at most {MAX_BODY:,} are accepted.", 413)
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(f"The body is not valid JSON ({exc}).", 400) from None


def _resolve(engine: Engine, name: str) -> tuple[ModelSpec, str]:
    """The spec that answers ``name`` and the name of what answers it (a line's active version's label)."""
    try:
        spec = engine.catalog.get(name)
    except UnknownModelError:
        raise ApiError(f"The model {name!r} does not exist; GET /v1/models lists them.", 404, "invalid_request_error",
                       param="model", code="model_not_found") from None  # fmt: skip
    if spec.kind in ("encoder", "classifier", "tagger"):
        raise ApiError(f"{name!r} is a {spec.kind} model; it does not write replies.", 400, param="model")
    if name.startswith(LINE_PREFIX):  # the line's active version answers: resolve it once, name it in the answer
        served = line_active(engine.catalog.db_path, name) or spec.name
        return engine.catalog.get(served), served
    return spec, spec.name


def _failed(result: GenerationResult) -> ApiError:
    return ApiError(result.error or "The model ended without a reply.", 500, "server_error")


def openai_router(engine: Engine) -> APIRouter:
    router = APIRouter(prefix="/v1")
    gate = Gate()

    def guarded(request: Request, permission: str, action: str) -> Caller:
        caller = _caller(engine, request)
        _allowed(engine, caller, permission, action)
        return caller

    # Each route checks its caller inside (guarded), so a refusal comes in OpenAI's error shape.
    @router.get("/models")
    @requires("generate")
    def list_models(request: Request):
        try:
            guarded(request, "generate", "list models")
        except ApiError as exc:
            return _error(exc)
        specs = [*engine.catalog.generative(), *engine.catalog.versions()]
        data = [
            model_entry(s.name, "llmplay" if s.provider == "local" else "endpoint")
            for s in specs
            if s.kind in ("chat", "base")
        ]
        return {"object": "list", "data": data}

    async def generate(request: Request, parse) -> object:
        try:
            guarded(request, "generate", "generate through the API")
            call = parse(await _body(request), engine.settings.max_new_tokens_limit)
            spec, served = _resolve(engine, call.model)
            provider = engine.provider(spec)
            provider.check_request(call.request)  # too long, bad parameters: a 400 before waiting for a slot
        except ApiError as exc:
            return _error(exc)
        except (InvalidRequestError, LlmplayError) as exc:
            return _error(ApiError(str(exc), 400))
        try:
            gate.acquire(timeout=WAIT_S)
        except Busy as exc:
            return _error(ApiError(f"llmplay is busy ({exc}); try again shortly.", 429, "rate_limit_error"))
        headers = {TRACE_HEADER: served}
        if call.stream:
            return StreamingResponse(
                _events(engine, spec, call, served, gate), media_type="text/event-stream", headers=headers
            )
        try:
            result = await _run(engine, spec, call)
        finally:
            gate.release()
        if result.error:
            return _error(_failed(result))
        return JSONResponse(completion_body(call, new_id(call.chat), result, served), headers=headers)

    @router.post("/chat/completions")
    @requires("generate")
    async def chat_completions(request: Request):
        return await generate(request, parse_chat)

    @router.post("/completions")
    @requires("generate")
    async def completions(request: Request):
        return await generate(request, parse_completion)

    return router


async def _run(engine: Engine, spec: ModelSpec, call: ApiCall) -> GenerationResult:
    from starlette.concurrency import run_in_threadpool

    def whole() -> GenerationResult:
        result = None
        with closing(engine.stream(spec, call.request)) as events:
            for event in events:
                if event.done:
                    result = event.result
        return result or GenerationResult.failure("The model ended without a reply.", spec.name)

    return await run_in_threadpool(whole)


def _sse(obj) -> str:
    return "data: " + json.dumps(obj, ensure_ascii=False) + "\n\n"


def _events(engine: Engine, spec: ModelSpec, call: ApiCall, served: str, gate: Gate) -> Iterator[str]:
    """Server-sent events of one streamed reply; the slot is released when the stream ends or the client goes."""
    id_ = new_id(call.chat)
    try:
        if call.chat:
            yield _sse(chunk(call, id_, served, first=True))
        result = None
        with closing(engine.stream(spec, call.request)) as events:
            for event in events:
                if event.done:
                    result = event.result
                elif event.delta:
                    yield _sse(chunk(call, id_, served, text=event.delta))
        if result is None or result.error:
            yield _sse(_failed(result or GenerationResult.failure("", spec.name)).body())
        else:
            reason = "length" if result.finish_reason == "length" else "stop"
            yield _sse(chunk(call, id_, served, finish=reason))
            if call.include_usage:
                yield _sse(usage_chunk(call, id_, served, result))
        yield "data: [DONE]\n\n"
    finally:
        gate.release()
