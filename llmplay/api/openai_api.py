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

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from llmplay import traces
from llmplay.api.openai_shapes import (
    ApiCall,
    ApiError,
    chunk,
    completion_body,
    finish_reason,
    model_entry,
    new_id,
    parse_chat,
    parse_completion,
    tool_calls,
    tool_calls_chunk,
    usage_chunk,
)
from llmplay.auth.access import AccessDenied, Caller, check, single_user_mode
from llmplay.auth.keys import key_user
from llmplay.auth.roles import requires
from llmplay.concurrency import GENERATION_LIMIT, Busy, Gate
from llmplay.engine import Engine, GenerationResult
from llmplay.errors import InvalidRequestError, LlmplayError, UnknownModelError
from llmplay.feedback.provenance import Sender
from llmplay.feedback.records import FeedbackError
from llmplay.models.catalog import ModelSpec
from llmplay.models.lines import LINE_PREFIX
from llmplay.models.trained import line_active
from llmplay.settings import Settings

log = logging.getLogger(__name__)

MAX_BODY = 4 * 1024 * 1024  # bytes of JSON; a bigger body is refused before it is parsed
WAIT_S = 600.0  # the longest a request waits for a generation slot
LOOPBACK = {"127.0.0.1", "::1", "localhost", "testclient"}
SERVED_HEADER = "X-Llmplay-Served-By"  # the model or version that answered (a line's active version)
TRACE_ID_HEADER = "X-Llmplay-Trace-Id"  # the stored trace's id (also the response's id): feedback names it


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
        if spec.source == "endpoint":  # an external engine serves the line (models/line_serving.py): forward
            return spec, served
        return engine.catalog.get(served), served
    return spec, spec.name


def _failed(result: GenerationResult) -> ApiError:
    return ApiError(result.error or "The model ended without a reply.", 500, "server_error")


def openai_router(engine: Engine) -> APIRouter:
    router = APIRouter(prefix="/v1")
    gate = Gate()
    waiters = anyio.CapacityLimiter(gate.waiting_max + GENERATION_LIMIT)

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
            caller = guarded(request, "generate", "generate through the API")
            call = parse(await _body(request), engine.settings.max_new_tokens_limit)
            spec, served = _resolve(engine, call.model)
            provider = engine.provider(spec)
            provider.check_request(call.request)  # too long, bad parameters: a 400 before waiting for a slot
        except ApiError as exc:
            return _error(exc)
        except (InvalidRequestError, LlmplayError) as exc:
            return _error(ApiError(str(exc), 400))
        try:  # waits off the event loop (the replies holding the slots stream through it), in threads of its
            # own: a queue of waiting requests must not take the pool that labeling calls run in
            await anyio.to_thread.run_sync(gate.acquire, WAIT_S, limiter=waiters)
        except Busy as exc:
            return _error(ApiError(f"llmplay is busy ({exc}); try again shortly.", 429, "rate_limit_error"))
        trace = Tracer(engine.settings, caller, call, served, new_id(call.chat))
        headers = {SERVED_HEADER: served, TRACE_ID_HEADER: trace.id}
        if call.stream:
            return StreamingResponse(_events(engine, spec, call, trace, gate), media_type="text/event-stream",
                                     headers=headers)  # fmt: skip
        try:
            result = await _run(engine, spec, call)
        finally:
            gate.release()
        await run_in_threadpool(trace.done, result, result.text)
        if result.error:
            return _error(_failed(result))
        return JSONResponse(completion_body(call, trace.id, result, served), headers=headers)

    @router.post("/chat/completions")
    @requires("generate")
    async def chat_completions(request: Request):
        return await generate(request, parse_chat)

    @router.post("/completions")
    @requires("generate")
    async def completions(request: Request):
        return await generate(request, parse_completion)

    @router.post("/feedback")
    @requires("vote")
    async def feedback(request: Request):
        """{"trace_id", "rating"?, "correction"?, "preferred"?, "comment"?} -> what was stored, per kind."""
        try:
            caller = guarded(request, "vote", "send feedback through the API")
            body = await _body(request)
            if not isinstance(body, dict) or not isinstance(body.get("trace_id"), str):
                raise ApiError("'trace_id' is required: the 'id' of the response the feedback is about.", 400,
                               param="trace_id")  # fmt: skip
            texts = {k: body.get(k) for k in ("correction", "preferred", "comment")}
            for name, value in texts.items():
                if value is not None and not isinstance(value, str):
                    raise ApiError(f"'{name}' must be a string.", 400, param=name)
            sender = Sender(caller.name, caller.role)
            sent = await run_in_threadpool(
                traces.send_feedback, engine.settings, body["trace_id"], sender, rating=body.get("rating"), **texts
            )
        except ApiError as exc:
            return _error(exc)
        except FeedbackError as exc:
            status = 404 if "not found" in str(exc).lower() or "yours" in str(exc).lower() else 400
            return _error(ApiError(str(exc), status))
        except LlmplayError as exc:
            return _error(ApiError(str(exc), 400))
        stored = [
            {"queue": s.queue.name, "item_id": s.item.id, "response_id": s.response.id if s.response else None}
            for s in sent
            if s is not None
        ]
        return {"object": "feedback", "trace_id": body["trace_id"], "stored": stored}

    return router


async def _run(engine: Engine, spec: ModelSpec, call: ApiCall) -> GenerationResult:
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


def _events(engine: Engine, spec: ModelSpec, call: ApiCall, trace: Tracer, gate: Gate) -> Iterator[str]:
    """Server-sent events of one streamed reply; the slot is released and the trace stored when the stream ends
    or the client goes (a trace of what it had, ``cancelled``)."""
    id_, served, text, result, released = trace.id, trace.served, "", None, False
    try:
        if call.chat:
            yield _sse(chunk(call, id_, served, first=True))
        with closing(engine.stream(spec, call.request)) as events:
            for event in events:
                if event.done:
                    result = event.result
                elif event.delta:
                    text += event.delta
                    if not call.tools:  # with tools the reply is read whole: a call, or its text, at the end
                        yield _sse(chunk(call, id_, served, text=event.delta))
        if result is None or result.error:
            result = result or GenerationResult.failure("The model ended without a reply.", spec.name)
            yield _sse(_failed(result).body())
        else:
            calls = tool_calls(call, result) if call.tools else []
            if calls:
                yield _sse(tool_calls_chunk(call, id_, served, calls))
            elif call.tools and text:
                yield _sse(chunk(call, id_, served, text=text))
            yield _sse(chunk(call, id_, served, finish="tool_calls" if calls else finish_reason(result)))
            if call.include_usage:
                yield _sse(usage_chunk(call, id_, served, result))
        gate.release()
        released = True
        trace.done(result, text)  # stored before [DONE]: a client that saw the end finds its trace
        yield "data: [DONE]\n\n"
    finally:
        if not released:  # the client went away mid-reply: a trace of what it had
            gate.release()
            trace.done(None, text)


class Tracer:
    """Stores one request's trace once it ends (when ``trace_sample`` draws it); never fails the request."""

    def __init__(self, settings: Settings, caller: Caller, call: ApiCall, served: str, id_: str):
        self.settings, self.caller, self.call, self.served, self.id = settings, caller, call, served, id_
        line = call.model[len(LINE_PREFIX) :] if call.model.startswith(LINE_PREFIX) else None
        self.keep = traces.sampled(settings, line=line)

    def done(self, result: GenerationResult | None, text: str) -> None:
        if not self.keep:
            return
        request = self.call.request
        line = self.call.model[len(LINE_PREFIX) :] if self.call.model.startswith(LINE_PREFIX) else None
        reason = "cancelled" if result is None else ("error" if result.error else finish_reason(result))
        try:
            traces.record(
                self.settings,
                id=self.id,
                user=self.caller.name,
                endpoint="chat" if self.call.chat else "completion",
                model=self.call.model,
                served=self.served,
                line=line,
                request=request.as_messages() if self.call.chat else request.prompt,
                params=request.params.to_dict(),
                reply=text if result is None or result.error else result.text,
                finish_reason=reason,
                error=result.error if result is not None else None,
                prompt_tokens=result.prompt_tokens if result is not None else 0,
                completion_tokens=result.completion_tokens if result is not None else 0,
                latency_s=result.latency_s if result is not None else None,
                ttft_s=result.time_to_first_token_s if result is not None else None,
                backend=result.backend if result is not None else None,
                stream=self.call.stream,
            )
        except Exception:  # a full disk or a locked database must not fail an answer already sent
            log.exception("Storing API trace %s failed", self.id)
