"""Load each model once per engine and share it.

``ModelManager.get`` returns a ``LoadedModel`` (torch module + tokenizer + facts about it). The first
call for a model may convert GGUF weights (see cache.py); later calls return the same object.
``ModelManager.encoder`` does the same for fine-tuned classifiers and taggers (``LoadedEncoder``). One manager
per engine (``engine.models``) owns every model the engine loaded; closing the engine drops them. A manager
built with ``shared=`` another one takes the plain catalog models (no adapter) from it and loads only the rest
itself (the tests' engines on their own data dirs share one copy of the base weights this way).
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmplay.errors import ModelLoadError
from llmplay.models import cache, sources
from llmplay.models.access import Access
from llmplay.models.adapters import adapter_identity, merge_adapters, stack_of
from llmplay.models.catalog import ModelSpec
from llmplay.openmp import released
from llmplay.settings import Settings

Progress = Callable[[str], None]


@functools.cache
def cpu_supports_bf16() -> bool:
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def resolve_dtype(name: str):
    import torch

    if name == "auto":
        if torch.cuda.is_available():
            return torch.bfloat16
        return torch.bfloat16 if cpu_supports_bf16() else torch.float32
    return {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


_LOADING = threading.Lock()


@dataclass
class LoadedModel:
    spec: ModelSpec
    model: Any
    tokenizer: Any
    dtype: Any
    folder: str
    context_length: int
    load_s: float
    from_cache: bool
    adapter: str | None = None
    # Generation on one model is serialised: two threads decoding at once on 2 cores only thrash.
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # Other backends' converted copies of these weights (llmplay.engine.backends), built once each.
    conversions: dict = field(default_factory=dict, repr=False)

    @property
    def eos_ids(self) -> set[int]:
        ids: set[int] = set()
        eos = self.model.generation_config.eos_token_id
        if isinstance(eos, int):
            ids.add(eos)
        elif eos:
            ids.update(eos)
        if self.tokenizer.eos_token_id is not None:
            ids.add(self.tokenizer.eos_token_id)
        return ids


@dataclass
class LoadedEncoder:
    """A fine-tuned encoder (kind classifier or tagger) as llmplay.engine.encoder serves it."""

    model: Any
    tokenizer: Any
    labels: list[str]
    max_length: int
    folder: str
    load_s: float
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


def _folder_identity(folder: str) -> tuple:
    """Size and mtime of the folder's files: a version rewritten in place is another model."""
    path = Path(folder)
    if not path.is_dir():
        return (folder,)
    return tuple(sorted((p.name, p.stat().st_size, p.stat().st_mtime_ns) for p in path.iterdir() if p.is_file()))


class ModelManager:
    def __init__(self, settings: Settings, shared: ModelManager | None = None):
        self.settings = settings
        self.shared = shared  # owns the plain models this manager reuses; what this one loads stays its own
        self._loaded: dict[tuple, LoadedModel] = {}
        self._encoders: dict[tuple, LoadedEncoder] = {}
        self._locks: dict[tuple, threading.Lock] = {}
        self._guard = threading.Lock()

    def _key(self, spec: ModelSpec, dtype: str | None, adapter: str | None) -> tuple:
        # The adapter by content: new weights in the same folder load (and merge) afresh.
        adapter = adapter or spec.adapter
        # A version (or a model line) names the catalog model whose weights it shares as ``base``: one copy.
        name = spec.base or spec.name
        return (name, spec.location, dtype or self.settings.dtype, adapter, adapter_identity(adapter))

    def is_loaded(self, spec: ModelSpec, dtype: str | None = None, adapter: str | None = None) -> bool:
        if self.shared is not None and not (adapter or spec.adapter):
            return self.shared.is_loaded(spec, dtype)
        return self._key(spec, dtype, adapter) in self._loaded

    def weights(self, spec: ModelSpec) -> sources.Weights:
        return sources.resolve(spec, self.settings.cache_dir / "_gguf")

    def cache_entry(self, spec: ModelSpec) -> Path | None:
        """The converted-cache folder for a GGUF model (whether or not it exists yet)."""
        try:
            weights = self.weights(spec)
        except ModelLoadError:
            return None
        if not weights.is_gguf:
            return None
        return self.settings.cache_dir / sources.cache_key(spec, weights)

    def is_cached(self, spec: ModelSpec) -> bool | None:
        """True/False for GGUF models (converted or not); None when no conversion is needed."""
        entry = self.cache_entry(spec)
        return None if entry is None else cache.is_valid(entry)

    @released  # loading runs torch in the caller's thread (llmplay/openmp.py)
    def get(
        self,
        spec: ModelSpec,
        dtype: str | None = None,
        adapter: str | None = None,
        progress: Progress | None = None,
    ) -> LoadedModel:
        adapter = adapter or spec.adapter  # a trained version's own adapter, unless the caller names one
        if self.shared is not None and not adapter:
            return self.shared.get(spec, dtype, None, progress)
        key = self._key(spec, dtype, adapter)
        if key in self._loaded:
            return self._loaded[key]
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:  # one load per key even when many requests arrive at once
            if key in self._loaded:
                return self._loaded[key]
            # transformers' from_pretrained builds models under process-global state (meta-device init): two
            # loads at once in one process corrupt each other ("Cannot copy out of meta tensor"), so loads of
            # different models take turns; generation on loaded models still runs in parallel.
            with _LOADING:
                loaded = self._load(spec, dtype or self.settings.dtype, adapter, progress or (lambda _: None))
            self._loaded[key] = loaded
            return loaded

    def unload(self, name: str) -> None:
        for key in [k for k in self._loaded if k[0] == name]:
            del self._loaded[key]

    def unload_adapters(self) -> None:
        """Drop the adapter versions loaded so far (each a merged copy of its base's weights); plain models stay."""
        with self._guard:
            for key in [k for k in self._loaded if k[3]]:
                del self._loaded[key]

    def drop_conversions(self, keep: Callable[[tuple], bool]) -> None:
        """Drop the converted copies (e.g. the fast decoder's weights in one precision) ``keep`` says no to; each
        model converts again on its next use of one."""
        with self._guard:
            for loaded in self._loaded.values():
                for key in [k for k in loaded.conversions if not keep(k)]:
                    del loaded.conversions[key]

    def close(self) -> None:
        """Drop every loaded model (the engine closes): their memory goes once no provider holds them."""
        with self._guard:
            self._loaded.clear()
            self._encoders.clear()

    # ---- fine-tuned encoders (classifier / tagger) ---------------------------------------------------------
    def is_encoder_loaded(self, folder: str, kind: str) -> bool:
        return (folder, kind, _folder_identity(folder)) in self._encoders

    @released
    def encoder(self, folder: str, kind: str) -> LoadedEncoder:
        """The classifier / tagger in ``folder``, loaded once per manager (a folder whose files changed, once
        more). float32: an encoder this small gains nothing from bf16."""
        key = (folder, kind, _folder_identity(folder))
        if key in self._encoders:
            return self._encoders[key]
        with _LOADING:  # loads take turns (see get) and happen once
            if key not in self._encoders:
                self._encoders[key] = _load_encoder(folder, kind)
            return self._encoders[key]

    def _load(self, spec: ModelSpec, dtype_name: str, adapter: str | None, progress: Progress) -> LoadedModel:
        if spec.kind == "encoder":
            raise ModelLoadError(f"{spec.name!r} is an encoder (embeddings) model; it cannot generate text.")
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # stages are reported through `progress` instead
        # Before resolving: a refused model must not download anything either.
        refused = Access.from_settings(self.settings).remote_code_refusal(spec)
        if refused:
            raise ModelLoadError(refused)
        remote_code = spec.trust_remote_code  # allowed by the operator if it got here
        started = time.perf_counter()
        weights = self.weights(spec)
        from_cache = False
        folder = weights.path
        if weights.is_gguf:
            key = sources.cache_key(spec, weights)
            entry, from_cache = cache.ensure_converted(weights, self.settings.cache_dir, key, progress)
            folder = str(entry)
        progress(f"Loading {spec.name} weights")
        try:
            from_hub = weights.from_hub and not weights.is_gguf
            model, tokenizer = self._from_folder(folder, from_hub, dtype_name, remote_code)
        except Exception as exc:
            if weights.is_gguf and from_cache:
                # The manifest looked fine but the files did not load: rebuild once.
                progress("Cached copy failed to load; rebuilding it")
                cache.invalidate(Path(folder))
                entry, from_cache = cache.ensure_converted(weights, self.settings.cache_dir, key, progress)
                model, tokenizer = self._from_folder(str(entry), False, dtype_name, remote_code)
            else:
                raise ModelLoadError(_explain_load_error(spec, folder, exc)) from exc
        if adapter:
            progress(f"Applying LoRA adapter {adapter}")
            model = _apply_adapter(model, adapter)
        if spec.chat_template:
            tokenizer.chat_template = spec.chat_template
        if spec.kind == "chat" and not getattr(tokenizer, "chat_template", None):
            raise ModelLoadError(
                f"{spec.name!r} is marked as a chat model but its tokenizer has no chat template. "
                "Mark it as a base model, or give it a chat_template."
            )
        context = spec.context_length or int(getattr(model.config, "max_position_embeddings", 0) or 2048)
        return LoadedModel(
            spec=spec,
            model=model,
            tokenizer=tokenizer,
            dtype=model.dtype,
            folder=folder,
            context_length=context,
            load_s=time.perf_counter() - started,
            from_cache=from_cache,
            adapter=adapter,
        )

    @staticmethod
    def _from_folder(folder: str, from_hub: bool, dtype_name: str, remote_code: bool = False):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        dtype = resolve_dtype(dtype_name)
        # Explicit: a model's own Python code runs only when its entry asks and the operator allowed it.
        tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=remote_code)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, trust_remote_code=remote_code)
        model.to(device())
        model.eval()
        # Batched generation needs left padding and a pad token.
        tokenizer.padding_side = "left"
        if tokenizer.pad_token_id is None:
            tokenizer.pad_token = tokenizer.eos_token
        if model.generation_config.pad_token_id is None:
            model.generation_config.pad_token_id = tokenizer.pad_token_id
        return model, tokenizer


def _load_encoder(folder: str, kind: str) -> LoadedEncoder:
    import torch
    from transformers import AutoModelForSequenceClassification, AutoModelForTokenClassification, AutoTokenizer

    started = time.perf_counter()
    auto = AutoModelForTokenClassification if kind == "tagger" else AutoModelForSequenceClassification
    try:
        tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
        model = auto.from_pretrained(folder, dtype=torch.float32, trust_remote_code=False).eval()
    except (OSError, ValueError) as exc:
        raise ModelLoadError(f"Could not load the {kind} from {folder}: {str(exc)[:300]}") from exc
    id2label = model.config.id2label or {}
    labels = [str(id2label[i]) for i in sorted(id2label)]
    if kind == "tagger" and not tokenizer.is_fast:
        raise ModelLoadError(f"The tagger in {folder} has no fast tokenizer (tokenizer.json); it cannot align words.")
    limit = min(int(getattr(model.config, "max_position_embeddings", 512) or 512), tokenizer.model_max_length)
    return LoadedEncoder(model, tokenizer, labels, limit, folder, time.perf_counter() - started)


def _apply_adapter(model, adapter: str):
    from peft import PeftModel

    path = Path(adapter)
    if not (path / "adapter_config.json").exists():
        raise ModelLoadError(f"LoRA adapter folder {adapter!r} has no adapter_config.json.")
    # A stacked adapter was trained on the base with the adapters below it merged: merge those first.
    model = merge_adapters(model, stack_of(path))
    try:
        peft_model = PeftModel.from_pretrained(model, str(path))
    except Exception as exc:
        raise ModelLoadError(f"Could not apply LoRA adapter {adapter!r}: {exc}") from exc
    if peft_model.active_peft_config.is_prompt_learning:
        # A soft prompt (prompt tuning) is extra input embeddings, not weights to merge: peft prepends it
        # on every forward pass, so the model stays a PeftModel.
        return peft_model
    # Merging removes the adapter's per-step overhead; the base copy is private to this key.
    return peft_model.merge_and_unload()


def _explain_load_error(spec: ModelSpec, folder: str, exc: Exception) -> str:
    text = str(exc)
    if spec.source == "hub" or (spec.source == "bundled" and "/" in folder and not Path(folder).exists()):
        return (
            f"Could not load {spec.name!r} from the Hugging Face Hub ({folder}). The Hub may be "
            f"unreachable from this machine (offline?) or the id may be wrong. Details: {text[:300]}"
        )
    return f"Could not load {spec.name!r} from {folder}: {text[:300]}"
