"""The Engine: one object per process that the UI, the CLI and later the evaluation runner share.

It owns the catalog, the model manager (each local model, causal or encoder, loaded once per engine and dropped
when it closes) and one provider per (model, dtype, adapter); callers name a model (or pass the ModelSpec they
resolved) and get results back as data.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from llmplay.engine.base import Provider, provider_class
from llmplay.engine.types import GenerationParams, GenerationRequest, GenerationResult, OptionScore, StreamEvent
from llmplay.errors import LlmplayError
from llmplay.models.catalog import Catalog, ModelSpec
from llmplay.models.loader import ModelManager
from llmplay.openmp import released
from llmplay.settings import Settings

if TYPE_CHECKING:
    from llmplay.engine.likelihood import ScoredRow


class Engine:
    def __init__(
        self,
        settings: Settings | None = None,
        catalog: Catalog | None = None,
        *,
        shared_models: ModelManager | None = None,
    ):
        """``shared_models``: another engine's model manager whose plain catalog models (no adapter) this engine
        reuses instead of loading its own copy; that engine keeps owning them."""
        self.settings = settings or Settings.from_env()
        self.catalog = catalog or Catalog(self.settings.models_file, settings=self.settings)
        self.models = ModelManager(self.settings, shared=shared_models)
        self._providers: dict[tuple, Provider] = {}
        self._lock = threading.Lock()

    def provider(
        self,
        model: str | ModelSpec,
        dtype: str | None = None,
        adapter: str | None = None,
        backend: str | None = None,
    ) -> Provider:
        """The provider for ``model``: a catalog name, or the spec a caller already resolved (one catalog lookup
        per request: a trained version's is a SQLite read)."""
        spec = model if isinstance(model, ModelSpec) else self.catalog.get(model)  # raises UnknownModelError
        key = (spec, dtype, adapter, backend)
        with self._lock:
            if key not in self._providers:
                cls = provider_class(spec.provider)
                if spec.provider == "local":
                    self._providers[key] = cls(
                        spec, self.settings, manager=self.models, dtype=dtype, adapter=adapter, backend=backend
                    )
                elif adapter:
                    raise LlmplayError(f"{spec.name!r} is an endpoint; LoRA adapters apply to local models only.")
                elif spec.provider == "encoder":  # loaded here too: the engine's manager owns every model it loads
                    self._providers[key] = cls(spec, self.settings, manager=self.models)
                else:
                    self._providers[key] = cls(spec, self.settings)
            return self._providers[key]

    @released  # each call gives its thread's OpenMP workers back (llmplay/openmp.py)
    def generate(
        self,
        model: str | ModelSpec,
        prompts: Sequence[str | GenerationRequest],
        params: GenerationParams | None = None,
        dtype: str | None = None,
        adapter: str | None = None,
        cancel: threading.Event | None = None,
        batch_backend: str | None = None,
    ) -> list[GenerationResult]:
        """Generate for many prompts at once; per-row problems come back as error results. ``batch_backend``: how
        a local model's batches decode ("transformers", "onnx/<precision>", "auto"; default: the settings')."""
        requests = [p if isinstance(p, GenerationRequest) else GenerationRequest.of(p, params) for p in prompts]
        provider = self.provider(model, dtype, adapter)
        if batch_backend and hasattr(provider, "batch_backend_for"):
            return provider.generate(requests, cancel=cancel, batch_backend=batch_backend)
        return provider.generate(requests, cancel=cancel)

    def batch_backend(
        self,
        model: str | ModelSpec,
        requests: Sequence[GenerationRequest],
        choice: str | None = None,
        dtype: str | None = None,
        adapter: str | None = None,
        new_tokens: int | None = None,
    ) -> str:
        """What ``generate`` decodes these requests' batches on under ``choice`` ("transformers" or
        "onnx/<precision>"; "" for endpoints), decided once for all of them: an evaluation column's rows."""
        provider = self.provider(model, dtype, adapter)
        if not hasattr(provider, "batch_backend_for"):
            return ""
        return provider.batch_backend_for(list(requests), choice, new_tokens)

    def batch_estimates(
        self,
        model: str | ModelSpec,
        requests: Sequence[GenerationRequest],
        dtype: str | None = None,
        adapter: str | None = None,
        new_tokens: int | None = None,
    ) -> dict[str, float]:
        """Seconds each batch backend able to decode these requests would take, for a caller that picks one
        backend for several calls (an evaluation run's columns); {} for endpoints."""
        provider = self.provider(model, dtype, adapter)
        if not hasattr(provider, "batch_estimates"):
            return {}
        return provider.batch_estimates(list(requests), new_tokens)

    def ready_for_batches(
        self, model: str | ModelSpec, backend: str, dtype: str | None = None, adapter: str | None = None
    ) -> bool:
        """Whether a local model can decode batches on ``backend`` now (an ONNX export made once if missing)."""
        provider = self.provider(model, dtype, adapter)
        return hasattr(provider, "ready_for_batches") and provider.ready_for_batches(backend)

    def stream(
        self,
        model: str | ModelSpec,
        prompt: str | list | GenerationRequest,
        params: GenerationParams | None = None,
        dtype: str | None = None,
        adapter: str | None = None,
        backend: str | None = None,
    ) -> Iterator[StreamEvent]:
        """One reply as it is produced; ``backend`` overrides the settings' choice for local models."""
        request = prompt if isinstance(prompt, GenerationRequest) else GenerationRequest.of(prompt, params)
        return self.provider(model, dtype, adapter, backend).stream(request)

    @released
    def choose(
        self,
        model: str | ModelSpec,
        prompt: str | list | GenerationRequest,
        options: Sequence[str],
        dtype: str | None = None,
        adapter: str | None = None,
        per_token: bool = False,
    ) -> tuple[str, list[OptionScore]]:
        """The most likely of ``options`` as the reply (local models), with every option's score.

        ``per_token`` ranks by mean log-probability per token instead of the sum (favours no length).
        """
        provider = self.provider(model, dtype, adapter)
        if not hasattr(provider, "score_options"):
            raise LlmplayError(f"{provider.spec.name!r} is an endpoint: choosing by likelihood needs a local model.")
        request = prompt if isinstance(prompt, GenerationRequest) else GenerationRequest.of(prompt)
        scores = provider.score_options(request, list(options))
        best = max(scores, key=lambda s: s.logprob_per_token if per_token else s.logprob)
        return best.option, scores

    @released
    def score_batch(
        self,
        model: str | ModelSpec,
        prompts: Sequence[str | list | GenerationRequest],
        options: Sequence[str],
        dtype: str | None = None,
        adapter: str | None = None,
        cancel: threading.Event | None = None,
    ) -> list[ScoredRow]:
        """Every option's log-likelihood as the reply to each prompt, many rows at once: a local model shares the
        prompts' common prefix and packs the rows (same scores as ``choose`` row by row); an endpoint scores them
        by the prompt log-probabilities it returns (``/completions`` with echo + logprobs). Each row names the
        backend and precision that scored it; per-row problems are error rows, ``row.best()`` the choice."""
        provider = self.provider(model, dtype, adapter)
        if not hasattr(provider, "score_batch"):
            raise LlmplayError(f"{provider.spec.name!r} cannot score given answers by likelihood.")
        requests = [p if isinstance(p, GenerationRequest) else GenerationRequest.of(p) for p in prompts]
        return provider.score_batch(requests, list(options), cancel=cancel)

    def close(self) -> None:
        for provider in self._providers.values():
            provider.close()
        self.models.close()
