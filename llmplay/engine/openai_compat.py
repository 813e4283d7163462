"""OpenAI-compatible HTTP endpoints: vLLM, TGI, llama.cpp server, Ollama, OpenAI and the like.

Chat models go to ``/chat/completions``, base models to ``/completions``. Every failure (unreachable
server, HTTP error, odd reply) becomes an error result whose message names the URL and what to check.
Every request goes through ``_send``, which refuses before any network call when the model's API key
variable is not one the operator allows for its URL (models/access.py), so no handler can leak a secret.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx

from llmplay.engine.base import Provider
from llmplay.engine.likelihood import ScoredRow, check_options
from llmplay.engine.prompt_logprobs import ENDPOINT_LIKELIHOOD, likelihood_refusal, option_score, prompt_logprobs
from llmplay.engine.text import base_model_text, stop_holdback, truncate_at_stop
from llmplay.engine.tools import call_text
from llmplay.engine.types import FinishReason, GenerationRequest, GenerationResult, OptionScore, StreamEvent
from llmplay.errors import InvalidRequestError, LlmplayError, ProviderError
from llmplay.models.access import Access
from llmplay.models.catalog import ModelSpec, normalize_base_url
from llmplay.settings import Settings

# vLLM's documented placeholder. Some servers (llm-katan, proxies) reject a request without any
# Authorization header, while servers that need no key ignore it.
PLACEHOLDER_KEY = "EMPTY"
# Cap on a server's Retry-After, so that one rate-limited row cannot stall a batch for minutes.
MAX_RETRY_AFTER_S = 20.0
ENDPOINT_BACKEND = "endpoint"  # a reply's backend: the server at the spec's URL decoded it
_LENGTH_REASONS = {"length", "max_tokens", "model_length"}


def _finish(reason: str | None) -> FinishReason:
    return "length" if reason in _LENGTH_REASONS else "stop"


def _call_parts(call: dict) -> tuple[str, object]:
    """(name, arguments) of one ``tool_calls`` entry of a reply."""
    function = call.get("function") if isinstance(call.get("function"), dict) else call
    return str(function.get("name") or ""), function.get("arguments") or {}


class _AttemptError(ProviderError):
    """One failed attempt; ``retryable`` says whether trying again may help."""

    def __init__(self, message: str, retryable: bool = False, retry_after: float | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


class OpenAICompatProvider(Provider):
    def __init__(
        self,
        spec: ModelSpec,
        settings: Settings,
        *,
        concurrency: int = 4,
        connect_timeout: float = 5.0,
        read_timeout: float = 120.0,
        max_attempts: int = 3,
        backoff_s: float = 0.5,
    ):
        super().__init__(spec, settings)
        if concurrency < 1 or max_attempts < 1:
            raise LlmplayError("concurrency and max_attempts must be at least 1.")
        self.base_url = normalize_base_url(spec.location)
        self.model_name = spec.api_model or spec.name
        access = Access.from_settings(settings)
        self.api_key_env = access.key_env(spec)  # None: no key is sent
        self._key_refusal = access.key_refusal(spec)
        self.concurrency = concurrency
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self._no_prompt_logprobs: str | None = None  # set once the server showed it returns none
        self._client = httpx.Client(
            timeout=httpx.Timeout(read_timeout, connect=connect_timeout),
            limits=httpx.Limits(max_connections=max(concurrency, 10)),
        )

    # ---- public API ---------------------------------------------------------------------------------
    def generate(
        self, requests: list[GenerationRequest], cancel: threading.Event | None = None
    ) -> list[GenerationResult]:
        if not requests:
            return []

        def one(request: GenerationRequest) -> GenerationResult:
            if cancel is not None and cancel.is_set():  # requests not yet sent are skipped
                return self.cancelled_result(self.spec.name)
            return self._generate_one(request)

        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(requests))) as pool:
            return list(pool.map(one, requests))

    def stream(self, request: GenerationRequest) -> Iterator[StreamEvent]:
        started = time.perf_counter()
        text, emitted, first_token_s = "", 0, None
        try:
            self.check_request(request)
            # With tools the whole reply is asked for at once: a tool call arrives in fragments, read as one.
            path, body = self._payload(request, stream=not request.tools)
            stops = request.params.stop
            # Hold back enough characters that a stop string is never shown half-emitted.
            hold = stop_holdback(stops)
            usage: dict = {}
            finish: FinishReason = "stop"
            response = self._send(path, body, stream=True)
            try:
                if request.tools or "text/event-stream" not in response.headers.get("content-type", ""):
                    # The server ignored "stream": it sent the whole reply as one JSON document.
                    response.read()
                    result = self._parse_reply(self._json(response), request, started)
                    if result.text:
                        yield StreamEvent(delta=result.text)
                    result.time_to_first_token_s = result.latency_s
                    yield StreamEvent(done=True, result=result)
                    return
                for chunk in self._sse_chunks(response):
                    usage = chunk.get("usage") or usage
                    for choice in chunk.get("choices") or []:
                        piece = self._chunk_text(choice)
                        if choice.get("finish_reason"):
                            finish = _finish(choice["finish_reason"])
                        if not piece:
                            continue
                        if first_token_s is None:
                            first_token_s = time.perf_counter() - started
                        text += piece
                    if stops:
                        text, hit_stop = truncate_at_stop(text, stops)
                        if hit_stop:
                            finish = "stop"
                            break  # closing the response tells the server to stop generating
                    safe = len(text) - hold
                    if safe > emitted:
                        yield StreamEvent(delta=text[emitted:safe])
                        emitted = safe
            finally:
                response.close()
        except Exception as exc:  # never let a failure end the stream without a final event
            if isinstance(exc, LlmplayError):
                message = str(exc)
            elif isinstance(exc, httpx.TimeoutException):  # the connection broke mid-stream
                message = str(self._timeout_error(exc))
            elif isinstance(exc, httpx.TransportError):
                message = self._transport_message(exc)
            else:
                message = f"Unexpected error while streaming from {self.base_url}: {exc}"
            result = GenerationResult.failure(message, self.spec.name, time.perf_counter() - started)
            result.text = text  # what arrived before the failure
            yield StreamEvent(done=True, result=result)
            return
        if len(text) > emitted:
            yield StreamEvent(delta=text[emitted:])
        yield StreamEvent(
            done=True,
            result=GenerationResult(
                text=text,
                prompt_tokens=int(usage.get("prompt_tokens") or 0),
                completion_tokens=int(usage.get("completion_tokens") or 0),
                latency_s=time.perf_counter() - started,
                finish_reason=finish,
                model=self.spec.name,
                time_to_first_token_s=first_token_s,
                backend=ENDPOINT_BACKEND,
            ),
        )

    def score_batch(
        self, requests: list[GenerationRequest], options: list[str], cancel: threading.Event | None = None
    ) -> list[ScoredRow]:
        """Each option's log-likelihood as the reply to each request, from the prompt log-probabilities the
        server returns for ``prompt + option`` (``/completions`` with ``echo`` and ``logprobs``, as
        lm-evaluation-harness scores vLLM and llama.cpp servers): one request per row, all options in it.
        Raises InvalidRequestError for a chat endpoint (its chat template is the server's, unseen here)."""
        check_options(options)
        refusal = likelihood_refusal(self.spec)
        if refusal:
            raise InvalidRequestError(refusal)

        def one(request: GenerationRequest) -> ScoredRow:
            row = ScoredRow(backend=ENDPOINT_LIKELIHOOD)
            started = time.perf_counter()
            if cancel is not None and cancel.is_set():
                row.error, row.cancelled = "Cancelled before this row finished.", True
                return row
            try:
                self.check_request(request)
                if self._no_prompt_logprobs:  # found on an earlier row: refuse without asking again
                    raise ProviderError(self._no_prompt_logprobs)
                row.scores = self._score_one(base_model_text(request), options)
            except LlmplayError as exc:
                row.error = str(exc)
            except Exception as exc:  # one bad row must not take the batch down
                row.error = f"Unexpected error scoring on {self.base_url}: {exc}"
            row.latency_s = time.perf_counter() - started
            return row

        if not requests:
            return []
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(requests))) as pool:
            return list(pool.map(one, requests))

    def _score_one(self, context: str, options: list[str]) -> list[OptionScore]:
        body = {
            "model": self.model_name,
            "prompt": [context + option for option in options],
            # One token is generated (some servers refuse 0); its log-probability lies past the option and is
            # not counted.
            "max_tokens": 1,
            "temperature": 0,
            "echo": True,
            "logprobs": 1,
        }
        try:
            data = self._json(self._send("/completions", body))
        except ProviderError as exc:
            raise ProviderError(f"{exc} Likelihood mode needs /completions with echo + logprobs.") from None
        choices = data.get("choices")
        if not isinstance(choices, list) or len(choices) != len(options):
            got = len(choices) if isinstance(choices, list) else 0
            raise ProviderError(f"Endpoint {self.base_url} sent {got} choices for {len(options)} prompts.")
        choices = sorted(choices, key=lambda c: c.get("index", 0) if isinstance(c, dict) else 0)
        scores = []
        for option, choice in zip(options, choices):
            tokens = prompt_logprobs(choice, context + option)
            if tokens is None:
                self._no_prompt_logprobs = (
                    f"Endpoint {self.base_url} returned no prompt log-probabilities (it ignores echo + logprobs on "
                    "/completions), so it cannot score answers by likelihood: use a server that returns them "
                    "(vLLM, llama.cpp) or generate mode."
                )
                raise ProviderError(self._no_prompt_logprobs)
            scores.append(option_score(option, context, tokens, self.base_url))
        return scores

    def list_models(self) -> list[str]:
        """Model ids the server offers (GET /models); raises ProviderError. For "test connection"."""
        response = self._send("/models", None, attempts=1)
        data = self._json(response).get("data")
        if not isinstance(data, list):
            raise ProviderError(f"Endpoint {self.base_url}/models sent no model list.")
        return [str(m.get("id")) for m in data if isinstance(m, dict) and m.get("id")]

    def close(self) -> None:
        self._client.close()

    # ---- one request --------------------------------------------------------------------------------
    def _generate_one(self, request: GenerationRequest) -> GenerationResult:
        started = time.perf_counter()
        try:
            self.check_request(request)
            path, body = self._payload(request, stream=False)
            return self._parse_reply(self._json(self._send(path, body)), request, started)
        except LlmplayError as exc:
            return GenerationResult.failure(str(exc), self.spec.name, time.perf_counter() - started)
        except Exception as exc:  # one bad row must not take the batch down
            message = f"Unexpected error talking to {self.base_url}: {exc}"
            return GenerationResult.failure(message, self.spec.name, time.perf_counter() - started)

    def _payload(self, request: GenerationRequest, stream: bool) -> tuple[str, dict]:
        p = request.params
        body: dict = {"model": self.model_name, "max_tokens": p.max_new_tokens, "temperature": p.temperature}
        if self.spec.kind == "chat":
            path = "/chat/completions"
            body["messages"] = request.as_messages()
            if request.tools:
                body["tools"] = list(request.tools)
        else:
            path = "/completions"
            body["prompt"] = base_model_text(request)
        if p.top_p < 1:
            body["top_p"] = p.top_p
        # top_k and repetition_penalty are not OpenAI fields, but vLLM, TGI, llama.cpp and Ollama accept them.
        if p.top_k > 0:
            body["top_k"] = p.top_k
        if p.repetition_penalty != 1.0:
            body["repetition_penalty"] = p.repetition_penalty
        if p.stop:
            body["stop"] = list(p.stop)
        if p.seed is not None:
            body["seed"] = p.seed
        if stream:
            # Without include_usage, OpenAI and vLLM send no token counts in a stream.
            body.update(stream=True, stream_options={"include_usage": True})
        return path, body

    def _parse_reply(self, data: dict, request: GenerationRequest, started: float) -> GenerationResult:
        choices = data.get("choices")
        if not choices or not isinstance(choices[0], dict):
            raise ProviderError(f"Endpoint {self.base_url} sent a reply without choices: {str(data)[:300]}")
        choice = choices[0]
        if self.spec.kind == "chat":
            message = choice.get("message") or {}
            text = message.get("content") or ""
            # Tool calls read as text, as a local model writes them (engine/tools.py), after any content.
            calls = [c for c in message.get("tool_calls") or [] if isinstance(c, dict)]
            text += "".join(call_text(*_call_parts(c)) for c in calls)
        else:
            text = choice.get("text") or ""
        finish = _finish(choice.get("finish_reason"))
        # Servers that ignore "stop" would otherwise return text past it; a no-op for those that honour it.
        text, hit_stop = truncate_at_stop(text, request.params.stop)
        usage = data.get("usage") or {}
        return GenerationResult(
            text=text,
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            latency_s=time.perf_counter() - started,
            finish_reason="stop" if hit_stop else finish,
            model=self.spec.name,
            backend=ENDPOINT_BACKEND,
        )

    def _chunk_text(self, choice: dict) -> str:
        if self.spec.kind == "chat":
            return (choice.get("delta") or {}).get("content") or ""
        return choice.get("text") or ""

    def _sse_chunks(self, response: httpx.Response) -> Iterator[dict]:
        for line in response.iter_lines():
            if not line.startswith("data:"):
                continue  # blank separators, ": keep-alive" comments, "event:" lines
            data = line[5:].strip()
            if data == "[DONE]":
                return
            try:
                chunk = json.loads(data)
            except json.JSONDecodeError:
                message = f"Endpoint {self.base_url} sent a stream chunk that is not JSON: {data[:200]}"
                raise ProviderError(message) from None
            if isinstance(chunk, dict) and chunk.get("error"):
                raise ProviderError(f"Endpoint {self.base_url} reported an error: {_server_message_of(chunk)}")
            if isinstance(chunk, dict):
                yield chunk

    # ---- HTTP with retries ----------------------------------------------------------------------------
    def _headers(self) -> dict[str, str]:
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        return {"Authorization": f"Bearer {key or PLACEHOLDER_KEY}"}

    def _send(self, path: str, body: dict | None, stream: bool = False, attempts: int | None = None) -> httpx.Response:
        """A successful response (for ``stream``, still open: the caller closes it); raises ProviderError."""
        if self._key_refusal:
            raise ProviderError(self._key_refusal)
        url = self.base_url + path
        attempts = attempts or self.max_attempts
        for attempt in range(1, attempts + 1):
            try:
                return self._attempt(url, body, stream)
            except _AttemptError as exc:
                if not exc.retryable or attempt == attempts:
                    note = f" (tried {attempt} times)" if attempt > 1 else ""
                    raise ProviderError(f"{exc}{note}") from None
                delay = self.backoff_s * 2 ** (attempt - 1)
                if exc.retry_after is not None:
                    delay = max(delay, min(exc.retry_after, MAX_RETRY_AFTER_S))
                time.sleep(delay)
        raise AssertionError("unreachable")

    def _attempt(self, url: str, body: dict | None, stream: bool) -> httpx.Response:
        method = "GET" if body is None else "POST"
        try:
            req = self._client.build_request(method, url, json=body, headers=self._headers())
            response = self._client.send(req, stream=stream)
        except httpx.TimeoutException as exc:
            raise self._timeout_error(exc) from None
        except httpx.TransportError as exc:
            raise _AttemptError(self._transport_message(exc), retryable=True) from None
        if response.status_code < 300:
            return response
        try:
            response.read()
        finally:
            response.close()
        if response.is_redirect:
            # Not followed: httpx would turn a redirected POST into a GET, and the user should fix the URL.
            raise _AttemptError(
                f"Endpoint {url} redirects (HTTP {response.status_code}) to {response.headers.get('location')}: "
                "use that address as the endpoint URL."
            )
        raise self._http_error(url, response)

    def _timeout_error(self, exc: httpx.TimeoutException) -> _AttemptError:
        if isinstance(exc, httpx.ConnectTimeout | httpx.PoolTimeout):
            return _AttemptError(
                f"Cannot reach endpoint {self.base_url} (no answer within {self.connect_timeout:g} s). "
                "Check the URL and that the server is running.",
                retryable=True,
            )
        # Not retried: the server is probably still busy with this request, and each retry would make
        # the user wait another full read timeout.
        return _AttemptError(
            f"Endpoint {self.base_url} did not answer within {self.read_timeout:g} s. The server may be "
            "overloaded or the reply too long: lower max_new_tokens or try again later."
        )

    def _transport_message(self, exc: httpx.TransportError) -> str:
        detail = str(exc) or type(exc).__name__
        low = detail.lower()
        if isinstance(exc, httpx.ConnectError):
            if "refused" in low:
                reason = "connection refused"
            elif "name or service" in low or "name resolution" in low or "getaddrinfo" in low or "nodename" in low:
                reason = "host name not found"
            elif "certificate" in low or "ssl" in low:
                reason = f"TLS error: {detail}"
            else:
                reason = detail
            return f"Cannot reach endpoint {self.base_url} ({reason}). Is the server running?"
        return f"Connection to endpoint {self.base_url} failed: {detail}"

    def _http_error(self, url: str, response: httpx.Response) -> _AttemptError:
        code = response.status_code
        message = f"Endpoint {url} returned HTTP {code}: {_server_message(response)}."
        if code in (401, 403):
            if self.api_key_env is None:
                message += " This model sends no API key (no key variable was given for it)."
            elif os.environ.get(self.api_key_env):
                message += f" Check the API key in ${self.api_key_env}."
            else:
                message += f" Set the API key in ${self.api_key_env} (it is not set)."
        elif code == 404 and self.spec.kind == "base" and url.endswith("/completions"):
            message += (
                " Check the endpoint URL. Some servers offer only /chat/completions: if the model has a chat "
                "template, add it as a chat model."
            )
        elif code == 404:
            message += f" Check the endpoint URL and the model name {self.model_name!r}."
        elif code == 429:
            message += " The server is rate-limiting requests: lower the concurrency or try again later."
        return _AttemptError(message, retryable=code == 429 or code >= 500, retry_after=_retry_after(response))

    @staticmethod
    def _json(response: httpx.Response) -> dict:
        try:
            data = response.json()
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise ProviderError(
                f"Endpoint {response.request.url} sent a reply that is not JSON: {response.text[:200]!r}. "
                "Is this an OpenAI-compatible API URL?"
            ) from None
        if not isinstance(data, dict):
            raise ProviderError(f"Endpoint {response.request.url} sent unexpected JSON: {str(data)[:200]}")
        return data


def _server_message_of(data) -> str:
    """The human part of an error body: OpenAI {"error": {"message"}}, FastAPI {"detail"}, TGI {"error": str}."""
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        for key in ("error", "detail", "message"):
            if data.get(key):
                return str(data[key])
    return str(data)[:300]


def _server_message(response: httpx.Response) -> str:
    try:
        text = _server_message_of(response.json())
    except (json.JSONDecodeError, UnicodeDecodeError):
        text = response.text
    # The caller ends the sentence; a body that is an HTML error page is cut short.
    return text.strip()[:300].rstrip(".") or response.reason_phrase


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["retry-after"])
    except (KeyError, ValueError):
        return None  # absent, or an HTTP date: fall back to our own backoff
