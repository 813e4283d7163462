"""Local transformers models: batched generation for many prompts, streaming for one.

Speed comes from batching: prompts are grouped by decoding parameters, sorted by length so that a
batch wastes little on padding, left-padded, and decoded together; bf16 where the CPU has it.
"""

from __future__ import annotations

import copy
import threading
import time
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Iterator
from types import SimpleNamespace

from llmplay.engine import backends, likelihood
from llmplay.engine.base import Provider
from llmplay.engine.detokenize import TokenStreamer
from llmplay.engine.prompt_text import encode_prompt, render_prompt, soft_prompt
from llmplay.engine.sampling import Sampler
from llmplay.engine.text import stop_holdback, truncate_at_stop
from llmplay.engine.types import GenerationParams, GenerationRequest, GenerationResult, OptionScore, StreamEvent
from llmplay.errors import InvalidRequestError, LlmplayError
from llmplay.models.catalog import ModelSpec
from llmplay.models.loader import LoadedModel, ModelManager
from llmplay.settings import Settings

# Padded tokens per batch (rows x longest prompt): bounds memory when prompts are long.
TOKEN_BUDGET = 16 * 1024
# Rows of a batch that start with the same tokens (a template's system message and few-shot examples) share
# one forward pass over that prefix; its keys/values are copied to every row. Shorter shared prefixes are not
# worth the copy. Kept per provider for the next batches of the same run (a few entries, least recent dropped).
MIN_SHARED_PREFIX = 64
PREFIX_ENTRIES = 4


def _completion_length(tokens: list[int], stop_ids: set[int]) -> int:
    """Generated tokens before the first end-of-sequence or padding token."""
    return next((k for k, t in enumerate(tokens) if t in stop_ids), len(tokens))


_HF_LOCK = threading.Lock()
_HF_NAMES: dict[str, object] = {}


def _hf() -> SimpleNamespace:
    """transformers' generation classes, imported once under a lock: its lazy module resolves names in a way
    that is not thread-safe, and two first requests at once (e.g. Compare columns) could fail with
    "cannot import name 'StoppingCriteriaList'"."""
    with _HF_LOCK:
        if not _HF_NAMES:
            from transformers import DynamicCache, LogitsProcessorList, StoppingCriteriaList, TextIteratorStreamer

            _HF_NAMES.update(
                DynamicCache=DynamicCache,
                LogitsProcessorList=LogitsProcessorList,
                StoppingCriteriaList=StoppingCriteriaList,
                TextIteratorStreamer=TextIteratorStreamer,
            )
    return SimpleNamespace(**_HF_NAMES)


def _shared_prefix_length(batch: list[list[int]]) -> int:
    """Tokens every row starts with, leaving each row at least one token of its own."""
    limit = min(len(ids) for ids in batch) - 1
    first = batch[0]
    n = 0
    while n < limit and all(ids[n] == first[n] for ids in batch):
        n += 1
    return n


def _shape(params: GenerationParams, rows: list[list[int]], new_tokens: int | None = None):
    """What decides a batch backend's time for ``rows`` (llmplay.engine.backends.BatchShape)."""
    return backends.BatchShape(
        rows=len(rows),
        prompt_tokens=sum(len(ids) for ids in rows),
        shared_tokens=_shared_prefix_length(rows) if len(rows) > 1 else 0,
        new_tokens=min(params.max_new_tokens, new_tokens or params.max_new_tokens),
    )


class _StopOnEvent:
    """StoppingCriteria that ends generation when an event is set (stream closed, run cancelled)."""

    def __init__(self, event: threading.Event):
        self.event = event

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)


class LocalProvider(Provider):
    def __init__(
        self,
        spec: ModelSpec,
        settings: Settings,
        manager: ModelManager | None = None,
        dtype: str | None = None,
        adapter: str | None = None,
        backend: str | None = None,
    ):
        super().__init__(spec, settings)
        self.manager = manager or ModelManager(settings)
        self.dtype = dtype
        self.adapter = adapter
        # How one streamed reply decodes (llmplay.engine.backends); batches: settings.batch_backend unless a call says.
        self.backend = backends.check_choice(backend or settings.backend)
        self.batch_backend = backends.check_batch_choice(getattr(settings, "batch_backend", backends.REFERENCE))
        self._prefixes: OrderedDict[tuple, object] = OrderedDict()

    def load(self, progress: Callable[[str], None] | None = None) -> LoadedModel:
        return self.manager.get(self.spec, dtype=self.dtype, adapter=self.adapter, progress=progress)

    # ---- preparing rows -------------------------------------------------------------------------
    def _prepare(self, loaded: LoadedModel, request: GenerationRequest) -> list[int]:
        self.check_request(request)
        ids = encode_prompt(loaded, render_prompt(loaded, request))
        budget = loaded.context_length - request.params.max_new_tokens
        if len(ids) > budget:
            raise InvalidRequestError(
                f"The prompt is {len(ids):,} tokens; with max_new_tokens={request.params.max_new_tokens} "
                f"it exceeds {self.spec.name}'s context of {loaded.context_length:,} tokens. "
                "Shorten the prompt or lower max_new_tokens."
            )
        return ids

    def _gen_kwargs(self, loaded: LoadedModel, params: GenerationParams) -> dict:
        kw: dict = {
            "max_new_tokens": params.max_new_tokens,
            "pad_token_id": loaded.tokenizer.pad_token_id,
            "do_sample": not params.greedy,
        }
        if params.greedy:
            # Override sampling defaults some models ship in generation_config.json.
            kw.update(temperature=None, top_p=None, top_k=None)
        else:
            kw.update(temperature=params.temperature, top_p=params.top_p, top_k=params.top_k or None)
        if params.repetition_penalty != 1.0:
            kw["repetition_penalty"] = params.repetition_penalty
        if params.stop:
            kw.update(stop_strings=list(params.stop), tokenizer=loaded.tokenizer)
        return kw

    # ---- batched ----------------------------------------------------------------------------------
    def generate(
        self,
        requests: list[GenerationRequest],
        cancel: threading.Event | None = None,
        batch_backend: str | None = None,
    ) -> list[GenerationResult]:
        """``batch_backend``: how the batches decode (default: the settings'); "auto" decides once per call and
        parameter set (``batch_backend_for``), so an evaluation column passes what it chose for all its rows."""
        results: list[GenerationResult | None] = [None] * len(requests)
        try:
            loaded = self.load()
        except LlmplayError as exc:
            return [GenerationResult.failure(str(exc), self.spec.name) for _ in requests]
        groups = self._group(loaded, requests, results)
        for params, rows in groups.items():
            rows.sort(key=lambda r: len(r[1]))
            backend = self._resolve_batch(loaded, batch_backend, params, [ids for _, ids in rows])
            for batch in self._batches(rows):
                if cancel is not None and cancel.is_set():
                    batch_results = [self.cancelled_result(self.spec.name) for _ in batch]
                else:
                    batch_results = self._run_batch(loaded, params, [ids for _, ids in batch], cancel, backend)
                for i, res in zip([i for i, _ in batch], batch_results):
                    results[i] = res
        return [r for r in results if r is not None]

    def _group(self, loaded: LoadedModel, requests: list[GenerationRequest], results: list) -> dict:
        """Each request's prompt ids, grouped by decoding parameters; a request that fails to prepare gets its
        error result in ``results``."""
        groups: dict[GenerationParams, list[tuple[int, list[int]]]] = defaultdict(list)
        for i, req in enumerate(requests):
            try:
                groups[req.params].append((i, self._prepare(loaded, req)))
            except LlmplayError as exc:
                results[i] = GenerationResult.failure(str(exc), self.spec.name)
        return groups

    def batch_backend_for(
        self, requests: list[GenerationRequest], choice: str | None = None, new_tokens: int | None = None
    ) -> str:
        """The batch backend that ``generate`` decodes these requests on under ``choice`` (default: the settings'):
        "transformers" or "onnx/<precision>", decided once over all of them (llmplay.engine.backends
        ``choose_batch``; ``new_tokens``: the tokens a reply is expected to take, default max_new_tokens)."""
        found = self._rows_of(requests)
        if found is None:
            return backends.REFERENCE
        loaded, params, rows = found
        return self._resolve_batch(loaded, choice, params, rows, new_tokens)

    def batch_estimates(self, requests: list[GenerationRequest], new_tokens: int | None = None) -> dict[str, float]:
        """Seconds each batch backend able to decode these requests would take (llmplay.engine.backends
        ``batch_estimates``), so a caller can pick one backend for several calls (an evaluation run's columns)."""
        found = self._rows_of(requests)
        if found is None:
            return {backends.REFERENCE: 0.0}
        loaded, params, rows = found
        return backends.batch_estimates(loaded, params, _shape(params, rows, new_tokens), self.settings.cache_dir)

    def ready_for_batches(self, backend: str) -> bool:
        """Whether batches can decode on ``backend`` now (its ONNX export made once if missing)."""
        return backends.ready_for_batches(self.load(), backend, self.settings.cache_dir)

    def _rows_of(self, requests: list[GenerationRequest]) -> tuple | None:
        """(loaded, params, prompt ids) of requests that share their parameters; None where no batch backend but
        transformers applies: a model that fails to load, a soft prompt, mixed parameters, no request that prepares."""
        try:
            loaded = self.load()
        except LlmplayError:
            return None
        groups = self._group(loaded, requests, [None] * len(requests))
        if len(groups) != 1 or soft_prompt(loaded):
            return None
        [(params, rows)] = groups.items()
        return loaded, params, [ids for _, ids in rows]

    def _resolve_batch(self, loaded, choice, params, rows: list[list[int]], new_tokens: int | None = None) -> str:
        if not rows or soft_prompt(loaded):
            return backends.REFERENCE
        shape, cache = _shape(params, rows, new_tokens), self.settings.cache_dir
        return backends.choose_batch(loaded, choice or self.batch_backend, params, shape, cache)

    def _batches(self, rows: list[tuple[int, list[int]]]) -> Iterator[list[tuple[int, list[int]]]]:
        batch: list[tuple[int, list[int]]] = []
        for row in rows:  # rows are sorted by length, so the last row is the longest
            longest = max(len(row[1]), len(batch[-1][1]) if batch else 0)
            if batch and (len(batch) >= self.settings.max_batch_size or longest * (len(batch) + 1) > TOKEN_BUDGET):
                yield batch
                batch = []
            batch.append(row)
        if batch:
            yield batch

    def _run_batch(
        self,
        loaded: LoadedModel,
        params: GenerationParams,
        batch: list[list[int]],
        cancel: threading.Event | None = None,
        backend: str = backends.REFERENCE,
    ) -> list[GenerationResult]:
        import torch

        free = params.json_schema is None  # constrained decoding masks logits: transformers' generate only
        if (
            free
            and not soft_prompt(loaded)
            and (onnx := backends.batch_decoder(loaded, backend, params, self.settings.cache_dir))
        ):
            return self._run_batch_onnx(loaded, onnx, params, batch, cancel)
        StoppingCriteriaList = _hf().StoppingCriteriaList

        tok = loaded.tokenizer
        width = max(len(ids) for ids in batch)
        pad = tok.pad_token_id
        # a soft prompt sits before the tokens: no token prefix is shared
        shared = 0 if soft_prompt(loaded) else self.prefix_to_share(loaded, batch)
        if shared:
            # prefix, then padding, then each row's own tokens: positions come from the mask, so every row's
            # tokens sit at the same positions as when it runs alone.
            rows = [(ids[:shared], [pad] * (width - len(ids)), ids[shared:]) for ids in batch]
            input_ids = torch.tensor([a + b + c for a, b, c in rows])
            mask = torch.tensor([[1] * len(a) + [0] * len(b) + [1] * len(c) for a, b, c in rows])
        else:
            input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in batch])
            mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in batch])
        dev = loaded.model.device
        kwargs = self._gen_kwargs(loaded, params)
        if cancel is not None:  # checked after every decoding step
            kwargs["stopping_criteria"] = StoppingCriteriaList([_StopOnEvent(cancel)])
        started = time.perf_counter()
        try:
            if not free:
                from llmplay.engine.constrained import SchemaLogits

                schema = SchemaLogits(params.json_schema, tok, len(batch), width, pad)
                kwargs["logits_processor"] = _hf().LogitsProcessorList([schema])
            with loaded.lock, torch.inference_mode():
                if shared:
                    kwargs["cache"] = self._prefix_cache(loaded, tuple(batch[0][:shared]), len(batch))
                if params.seed is not None:
                    torch.manual_seed(params.seed)
                out = loaded.model.generate(input_ids=input_ids.to(dev), attention_mask=mask.to(dev), **kwargs)
        except Exception as exc:  # a crash in one batch must not take the others down
            elapsed = time.perf_counter() - started
            return [GenerationResult.failure(f"Generation failed: {exc}", self.spec.name, elapsed) for _ in batch]
        elapsed = time.perf_counter() - started
        if cancel is not None and cancel.is_set():  # the batch was cut short: its texts are incomplete
            return [self.cancelled_result(self.spec.name) for _ in batch]
        stop_ids = loaded.eos_ids | {pad}
        results = []
        for row, ids in zip(out[:, width:].tolist(), batch):
            n = _completion_length(row, stop_ids)
            text, hit_stop = truncate_at_stop(tok.decode(row[:n], skip_special_tokens=True), params.stop)
            results.append(self._result(text, len(ids), n, elapsed, params, hit_stop, backends.reference_label(loaded)))
        return results

    def _run_batch_onnx(self, loaded: LoadedModel, decoder, params: GenerationParams, batch, cancel=None):
        """A greedy batch on ONNX Runtime (the settings' or a column's batch backend): each reply is the one its
        prompt gets alone on this path (llmplay.engine.onnx_decoder ``decode_batch``). No model lock: each call has
        its own ONNX Runtime generator, and the torch model is not used."""
        tok, stops = loaded.tokenizer, params.stop
        tail = max((len(s) for s in stops), default=0) + 4  # as the stream's stop check (_decode_fast)

        def done(tokens: list[int]) -> bool:
            return bool(stops) and any(s in tok.decode(tokens[-tail:], skip_special_tokens=True) for s in stops)

        started = time.perf_counter()
        try:
            rows = decoder.decode_batch(batch, params.max_new_tokens, loaded.eos_ids, cancel=cancel, done=done)
        except Exception as exc:  # a crash in one batch must not take the others down
            elapsed = time.perf_counter() - started
            return [GenerationResult.failure(f"Generation failed: {exc}", self.spec.name, elapsed) for _ in batch]
        elapsed = time.perf_counter() - started
        if cancel is not None and cancel.is_set():
            return [self.cancelled_result(self.spec.name) for _ in batch]
        label, stop_ids = decoder.label, loaded.eos_ids | {tok.pad_token_id}
        results = []
        for row, ids in zip(rows, batch):
            n = _completion_length(row, stop_ids)
            text, hit_stop = truncate_at_stop(tok.decode(row[:n], skip_special_tokens=True), stops)
            results.append(self._result(text, len(ids), n, elapsed, params, hit_stop, label))
        return results

    def prefix_to_share(self, loaded: LoadedModel, rows: list[list[int]]) -> int:
        """How many leading tokens ``rows`` take from a prefix cache (0: none), each row keeping one of its own: the
        longest prefix already computed for this model that every row starts with (a run's later batches reuse its
        first batch's), else all that the rows share when that is long enough. A lone row (an evaluation's small
        chunk, a run's last batch) uses a prefix computed before, but computes none for itself."""
        first, compute = rows[0], len(rows) > 1
        shared = _shared_prefix_length(rows) if compute else len(first) - 1
        best = 0
        for model_id, tokens in list(self._prefixes):
            n = len(tokens)
            if model_id == id(loaded.model) and best < n <= shared and tuple(first[:n]) == tokens:
                best = n
        if best >= MIN_SHARED_PREFIX:
            return best
        return shared if compute and shared >= MIN_SHARED_PREFIX else 0

    def _prefix_cache(self, loaded: LoadedModel, prefix: tuple[int, ...], rows: int):
        """A fresh cache holding ``prefix``'s keys/values once per row (computed once, then copied)."""
        import torch

        DynamicCache = _hf().DynamicCache

        key = (id(loaded.model), prefix)  # a reloaded model (e.g. new adapter weights) computes its own
        computed = self._prefixes.get(key)
        if computed is None:
            computed = DynamicCache(config=loaded.model.config)
            loaded.model(input_ids=torch.tensor([prefix], device=loaded.model.device), cache=computed, use_cache=True)
            self._prefixes[key] = computed
            while len(self._prefixes) > PREFIX_ENTRIES:
                self._prefixes.popitem(last=False)
        self._prefixes.move_to_end(key)
        cache = copy.deepcopy(computed)  # generation appends to it
        cache.batch_repeat_interleave(rows)
        return cache

    def _result(
        self,
        text: str,
        prompt_tokens: int,
        n: int,
        elapsed: float,
        params: GenerationParams,
        hit_stop: bool,
        backend: str = "",
    ):
        return GenerationResult(
            text=text,
            prompt_tokens=prompt_tokens,
            completion_tokens=n,
            latency_s=elapsed,
            finish_reason="length" if n >= params.max_new_tokens and not hit_stop else "stop",
            model=self.spec.name,
            backend=backend,
        )

    # ---- likelihood of given answers -----------------------------------------------------------------
    def score_options(self, request: GenerationRequest, options: list[str]) -> list[OptionScore]:
        """Log-likelihood of each option as the model's reply to ``request`` (one forward pass for all).

        Lets classification pick the most likely label instead of parsing free text, so no answer is
        unparseable. Raises LlmplayError for a bad request or an empty option list.
        """
        import torch

        likelihood.check_options(options)
        loaded = self.load()
        likelihood.refuse_soft_prompt(self, loaded)
        prompt_ids = self._prepare(loaded, request)
        tok = loaded.tokenizer
        option_ids = [tok(o, add_special_tokens=False)["input_ids"] for o in options]
        width = max(len(ids) for ids in option_ids)
        # The prompt runs once; its keys/values are copied to one row per option, and only the options'
        # tokens run after it (right-padded, so the pads come after each option).
        opt = torch.tensor([ids + [tok.pad_token_id] * (width - len(ids)) for ids in option_ids])
        mask = torch.tensor([[1] * len(prompt_ids) + [1] * len(ids) + [0] * (width - len(ids)) for ids in option_ids])
        dev = loaded.model.device
        with loaded.lock, torch.inference_mode():
            cache = _hf().DynamicCache(config=loaded.model.config)
            head = loaded.model(input_ids=torch.tensor([prompt_ids], device=dev), cache=cache, use_cache=True)
            first = torch.log_softmax(head.logits[0, -1].float(), dim=-1)  # predicts each option's first token
            cache.batch_repeat_interleave(len(options))
            logits = loaded.model(input_ids=opt.to(dev), attention_mask=mask.to(dev), cache=cache).logits.float()
        logprobs = torch.log_softmax(logits, dim=-1)
        scores = []
        for row, (option, ids) in enumerate(zip(options, option_ids)):
            # option token j is predicted by the logits at j - 1 (the first one by the prompt's last position)
            total = first[ids[0]].item() + sum(logprobs[row, j - 1, ids[j]].item() for j in range(1, len(ids)))
            scores.append(OptionScore(option, total, len(ids)))
        return scores

    def score_batch(
        self, requests: list[GenerationRequest], options: list[str], cancel: threading.Event | None = None
    ) -> list[likelihood.ScoredRow]:
        """``score_options`` for many rows at once: the shared prompt prefix runs once, the rows and all their
        options in packed passes (llmplay.engine.likelihood); same scores as one row at a time."""
        return likelihood.score_batch(self, requests, options, cancel)

    # ---- streaming ----------------------------------------------------------------------------------
    def stream(self, request: GenerationRequest) -> Iterator[StreamEvent]:
        hf = _hf()
        StoppingCriteriaList, TextIteratorStreamer = hf.StoppingCriteriaList, hf.TextIteratorStreamer

        try:
            self.check_request(request)  # before a load: a refused request must not wait for one
            if not self.manager.is_loaded(self.spec, self.dtype, self.adapter):
                yield from self._load_with_status()
            loaded = self.load()
            ids = self._prepare(loaded, request)
        except LlmplayError as exc:
            yield StreamEvent(done=True, result=GenerationResult.failure(str(exc), self.spec.name))
            return
        started = time.perf_counter()  # after the load: latency and tokens/s are about generation
        import torch

        params = request.params
        tok = loaded.tokenizer
        cancel = threading.Event()
        kwargs = self._gen_kwargs(loaded, params)
        kwargs["stopping_criteria"] = StoppingCriteriaList([_StopOnEvent(cancel)])
        outcome: dict = {}
        plan = backends.Plan(backends.reference_label(loaded))
        if not soft_prompt(loaded):
            try:
                plan = backends.plan(loaded, self.backend, self.settings.fast_precision, self.settings.cache_dir)
            except Exception as exc:  # a conversion failure costs speed, never the reply
                plan = backends.Plan(plan.label, note=f"{backends.FALLBACK}: {self.backend} failed ({exc}).")
        if plan.note:
            yield StreamEvent(status=plan.note)
        if plan.decoder is not None:
            streamer = TokenStreamer(tok, timeout=600)
        else:
            streamer = TextIteratorStreamer(tok, skip_prompt=True, skip_special_tokens=True, timeout=600)

        def run() -> None:
            try:
                with loaded.lock, torch.inference_mode():
                    if params.seed is not None:
                        torch.manual_seed(params.seed)
                    if plan.decoder is not None:
                        outcome["tokens"] = self._decode_fast(loaded, plan.decoder, ids, params, streamer, cancel)
                        return
                    dev = loaded.model.device
                    out = loaded.model.generate(
                        input_ids=torch.tensor([ids], device=dev),
                        attention_mask=torch.ones(1, len(ids), dtype=torch.long, device=dev),
                        streamer=streamer,
                        **kwargs,
                    )
                outcome["tokens"] = out[0, len(ids) :].tolist()
            except Exception as exc:
                outcome["error"] = f"Generation failed: {exc}"
                streamer.end()

        worker = threading.Thread(target=run, daemon=True, name=f"stream-{self.spec.name}")
        worker.start()
        text, emitted, first_token_s = "", 0, None
        # Hold back enough characters that a stop string is never shown half-emitted.
        hold = stop_holdback(params.stop)
        hit_stop = drained = False
        try:
            for piece in streamer:
                if not piece:
                    continue
                if first_token_s is None:
                    first_token_s = time.perf_counter() - started
                text += piece
                if params.stop:
                    cut, hit_stop = truncate_at_stop(text, params.stop)
                    if hit_stop:
                        text = cut
                        cancel.set()
                        break
                safe = len(text) - hold
                if safe > emitted:
                    yield StreamEvent(delta=text[emitted:safe])
                    emitted = safe
            else:
                drained = True
        finally:
            # Runs also when the consumer stops iterating: stop decoding instead of burning CPU.
            cancel.set()
            if not drained:
                for _ in streamer:  # read up to the end signal so the worker finishes cleanly
                    pass
            worker.join()
        if len(text) > emitted:
            yield StreamEvent(delta=text[emitted:])
        elapsed = time.perf_counter() - started
        if "error" in outcome:
            yield StreamEvent(done=True, result=GenerationResult.failure(outcome["error"], self.spec.name, elapsed))
            return
        tokens = outcome.get("tokens", [])
        n = _completion_length(tokens, loaded.eos_ids | {tok.pad_token_id})
        result = self._result(text, len(ids), n, elapsed, params, hit_stop, plan.label)
        result.time_to_first_token_s = first_token_s
        yield StreamEvent(done=True, result=result)

    def _decode_fast(self, loaded: LoadedModel, decoder, ids: list[int], params: GenerationParams, streamer, cancel):
        """The fast decoder's tokens, fed to ``streamer`` as transformers' generate would (prompt first)."""
        import torch

        tok = loaded.tokenizer
        streamer.put(torch.tensor([ids]))
        stops = params.stop
        # A stop string completed by the newest token lies within its last len(stop) tokens (+ slack for
        # tokens that decode to nothing), so only that tail is decoded.
        tail = max((len(s) for s in stops), default=0) + 4

        def done(tokens: list[int]) -> bool:
            # Like transformers' stop_strings: end on the token that completes a stop string.
            if cancel.is_set():
                return True
            return bool(stops) and any(s in tok.decode(tokens[-tail:], skip_special_tokens=True) for s in stops)

        try:
            return decoder.decode(
                ids,
                params.max_new_tokens,
                Sampler.of(params, loaded.model.generation_config),
                loaded.eos_ids,
                on_token=lambda t: streamer.put(torch.tensor([t])),
                done=done,
            )
        finally:
            streamer.end()

    def _load_with_status(self) -> Iterator[StreamEvent]:
        """Load in a thread and report each stage, so the UI can show what the first load is doing."""
        import queue

        stages: queue.Queue = queue.Queue()
        box: dict = {}
        cached = self.manager.is_cached(self.spec)
        first = f"Loading {self.spec.name} for the first time in this process" + (
            " (converting the GGUF weights once; this takes up to a minute)" if cached is False else ""
        )
        yield StreamEvent(status=first)

        def run() -> None:
            try:
                self.load(progress=stages.put)
            except LlmplayError as exc:
                box["error"] = exc
            finally:
                stages.put(None)

        threading.Thread(target=run, daemon=True).start()
        while (stage := stages.get()) is not None:
            yield StreamEvent(status=f"{stage}…")
        if "error" in box:
            raise box["error"]
        yield StreamEvent(status=f"{self.spec.name} loaded.")
