"""ONNX Runtime GenAI as the step engine of one streamed reply (the ``onnx/<precision>`` backends).

Why: on this kind of CPU, decoding one reply is bound by reading the weights. ONNX Runtime's int8 products
(MatMulNBits, weights quantized per block of 32) read a quarter of float32's bytes in kernels that keep up with
memory, on its own thread pool (which does not suffer the OpenMP slowdown torch sees in request threads);
bench/generation.py measures it against the fast decoder and transformers, speed and task accuracy.

Only the forward pass runs in ONNX Runtime. The prompt is rendered and tokenized by llmplay (one chat template
and the same ids on every backend), and each next token is chosen by llmplay's Sampler from the step's logits,
so sampling, the seed, stop strings, cancel and token counts behave as on the other backends.

Conversion: the loaded model's weights (a trained version's adapter already merged) are exported once by
onnxruntime-genai's model builder, in a subprocess, into ``<cache>/onnx/<key>-<precision>``: written to a
temporary folder beside it, then renamed, so a reader never sees half a conversion. The key names the source
weights and the adapter's content, so every version converts its own weights and reuses them after a restart.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from llmplay.backend_names import ONNX_PRECISIONS as PRECISIONS
from llmplay.engine.sampling import decode_loop

log = logging.getLogger(__name__)

ROWS = "w8a8"  # int8 weights and per-row int8 activations, from the float32 export (onnx_rows.py)
SUPPORTED = ("llama", "gemma3_text")  # architectures the builder exports and bench/generation.py measured
# ONNX Runtime's own intra-op pool (not OpenMP): two threads ran ~1.5x one here, also from a request thread.
THREADS = 2
READY = "genai_config.json"  # the builder writes it last
MIN_CACHE = 1024  # positions; Gemma-3-270M's sliding window is 512
# Exports kept in <cache>/onnx (LLMPLAY_ONNX_KEEP): each trained version streamed on "auto" adds one (~260 MB int8
# for SmolLM2, ~1 GB for Gemma-3); the least recently opened go first.
KEEP = 8
# onnxruntime-genai's model builder, run in a subprocess. transformers 5 keeps Gemma-3's rotary settings per layer
# type (rope_parameters = {"full_attention": {...}, "sliding_attention": {...}}); the builder reads the older
# flat fields, so the config it loads gets them back (the global theta and the local one) before it runs.
_EXPORT = """
import runpy, sys
import transformers

_load = transformers.AutoConfig.from_pretrained


def load(*args, **kwargs):
    config = _load(*args, **kwargs)
    rope = getattr(config, "rope_parameters", None)
    if isinstance(rope, dict) and rope and all(isinstance(v, dict) for v in rope.values()):
        full = rope.get("full_attention") or next(iter(rope.values()))
        config.rope_parameters = dict(full)
        config.rope_theta = full["rope_theta"]
        config.rope_local_base_freq = rope.get("sliding_attention", full)["rope_theta"]
    return config


transformers.AutoConfig.from_pretrained = load
sys.argv = ["builder", *sys.argv[1:]]
runpy.run_module("onnxruntime_genai.models.builder", run_name="__main__")
"""


def unavailable_reason() -> str | None:
    """Why the onnx backend cannot run in this install (None when it can)."""
    try:
        import onnx  # noqa: F401  - the builder's
        import onnx_ir  # noqa: F401
        import onnxruntime_genai  # noqa: F401
    except ImportError as exc:
        return f"onnxruntime-genai is not installed ({exc.name}); pip install onnxruntime-genai onnx onnx-ir"
    return None


def unsupported_reason(model) -> str | None:
    """Why ``model`` cannot run on this backend (None when it can)."""
    missing = unavailable_reason()
    if missing:
        return missing
    kind = getattr(getattr(model, "config", None), "model_type", None)
    if kind not in SUPPORTED:
        return f"architecture {kind!r} is not one the onnx backend exports ({', '.join(SUPPORTED)})"
    if getattr(model, "peft_config", None):
        return "a prompt-tuning adapter adds virtual tokens the onnx export does not model"
    return None


def pads_rows(model) -> bool:
    """Whether ONNX batches of ``model`` hold prompts of different lengths: not with sliding-window attention
    (Gemma-3), whose ONNX Runtime kernel refuses padded rows (``OnnxDecoder.pads_rows``, read from the export)."""
    config = getattr(model, "config", None)
    if "sliding_attention" in (getattr(config, "layer_types", None) or ()):
        return False
    return not (getattr(config, "sliding_window", None) and getattr(config, "use_sliding_window", True))


# ---- conversion, once per weights and precision ------------------------------------------------------------
def conversion_key(loaded, precision: str) -> str:
    """A folder name for ``loaded``'s weights in ``precision``: the source folder's name (the model cache names
    its folders by content) and a digest of the adapter's files, if any."""
    digest = hashlib.sha256(str(loaded.folder).encode())
    source = Path(str(loaded.folder))
    if source.is_dir():
        for path in sorted(source.glob("*.safetensors")):
            stat = path.stat()
            digest.update(f"{path.name}:{stat.st_size}:{int(stat.st_mtime)}".encode())
    if loaded.adapter:
        for path in sorted(p for p in Path(loaded.adapter).rglob("*") if p.is_file()):
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    name = "".join(c if c.isalnum() or c in "-_." else "_" for c in source.name)[:60]
    return f"{name}-{digest.hexdigest()[:12]}-{precision}"


def converted_dir(cache_dir: Path, loaded, precision: str) -> Path:
    return Path(cache_dir) / "onnx" / conversion_key(loaded, precision)


def is_converted(folder: Path) -> bool:
    return (Path(folder) / READY).is_file()


def convert(loaded, cache_dir: Path, precision: str) -> tuple[Path, float]:
    """The ONNX folder of ``loaded``'s weights in ``precision`` and the seconds spent converting (0 when cached)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}")
    target = converted_dir(cache_dir, loaded, precision)
    if is_converted(target):
        return target, 0.0
    started = time.perf_counter()
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    try:
        source = _source_folder(loaded, partial / "source")
        out = partial / "model"
        command = [sys.executable, "-c", _EXPORT, "-i", str(source), "-o", str(out)]
        # w8a8: the float32 export, quantized afterwards with a scale per row (llmplay/engine/onnx_rows.py)
        command += ["-p", "fp32" if precision == ROWS else precision, "-e", "cpu", "-c", str(partial / "work")]
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
        proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1800)
        if proc.returncode == 0 and precision == ROWS and is_converted(out):
            command = [sys.executable, "-m", "llmplay.engine.onnx_rows", str(out)]
            proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0 or not is_converted(out):
            raise RuntimeError(f"the ONNX export failed: {(proc.stderr or proc.stdout)[-1500:]}")
        with contextlib.suppress(OSError):  # another process finished the same export first: keep theirs
            out.rename(target)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    prune(target.parent, keep(), protect={target})
    return target, time.perf_counter() - started


def keep() -> int:
    """How many exports the cache keeps (LLMPLAY_ONNX_KEEP, at least 1)."""
    try:
        return max(1, int(os.environ.get("LLMPLAY_ONNX_KEEP", KEEP)))
    except ValueError:
        log.warning("LLMPLAY_ONNX_KEEP must be a whole number; keeping %d exports", KEEP)
        return KEEP


def prune(root: Path, keep: int, protect: set[Path] = frozenset()) -> list[Path]:
    """Remove from ``root`` (``<cache>/onnx``) the least recently opened exports beyond ``keep`` (never those in
    ``protect``), and partial exports a day old (a process killed mid-export); returns what was removed. An export
    open in a running process stays usable there: its files leave the folder, not the memory that holds them."""
    root = Path(root)
    if not root.is_dir():
        return []
    removed = []
    done = sorted((p for p in root.iterdir() if is_converted(p)), key=last_used, reverse=True)
    stale = [p for p in root.glob(".*.partial") if time.time() - p.stat().st_mtime > 86_400]
    for path in [p for p in done[keep:] if p not in protect] + stale:
        shutil.rmtree(path, ignore_errors=True)
        removed.append(path)
        log.info("onnx: removed the export %s (least recently used)", path.name)
    return removed


def last_used(folder: Path) -> float:
    return (Path(folder) / READY).stat().st_mtime


def _source_folder(loaded, scratch: Path) -> Path:
    """A transformers folder holding exactly ``loaded``'s weights: the model cache's own folder for a plain
    model, else (a merged adapter, a Hub id) the loaded model saved once to ``scratch``."""
    folder = Path(str(loaded.folder))
    if not loaded.adapter and (folder / "config.json").is_file() and any(folder.glob("*.safetensors")):
        return folder
    loaded.model.save_pretrained(scratch)
    loaded.tokenizer.save_pretrained(scratch)
    return scratch


# ---- decoding ----------------------------------------------------------------------------------------------
class OnnxDecoder:
    """One ONNX Runtime GenAI model over a converted folder. Thread-safe to share (a generator per reply)."""

    def __init__(self, folder: Path, precision: str, threads: int = THREADS):
        import onnxruntime_genai as og

        started = time.perf_counter()
        self.og = og
        self.folder = Path(folder)
        self.precision = precision
        config = og.Config(str(folder))
        config.overlay(json.dumps({"model": {"decoder": {"session_options": {"intra_op_num_threads": threads}}}}))
        self.model = og.Model(config)
        with contextlib.suppress(OSError):  # when it was last used: the cache keeps the most recent (prune)
            os.utime(self.folder / READY)
        settings = json.loads((self.folder / READY).read_text())["model"]
        self.context_length = int(settings.get("context_length") or 2048)
        self.pad_id = int(settings.get("pad_token_id") or 0)
        sliding = bool(settings.get("decoder", {}).get("sliding_window"))
        # ONNX Runtime's sliding-window attention (Gemma-3) refuses right-padded rows: its batches hold equal lengths,
        # and it wants a cache at least one window long whatever the reply's length (others: only what a reply
        # needs; a 1024-position cache for every row of a batch cost ~7% of its speed).
        self.pads_rows = not sliding
        self.min_length = min(self.context_length, MIN_CACHE) if sliding else 0
        self.open_s = time.perf_counter() - started

    @property
    def label(self) -> str:
        return f"onnx {self.precision}"

    def decode(self, prompt_ids: list[int], max_new_tokens: int, sampler, stop_ids: set[int], on_token=None, done=None):
        """The new tokens (an end-of-sequence token included, as transformers returns it), as FastDecoder.decode:
        ``on_token`` sees each one as it comes; ``done(tokens)`` returning True ends after the current token."""
        import torch

        params = self.og.GeneratorParams(self.model)
        # The builder's config asks for its own search (sampling, a repetition penalty): llmplay's Sampler chooses.
        length = max(len(prompt_ids) + max_new_tokens + 1, self.min_length)
        params.set_search_options(max_length=min(length, self.context_length), do_sample=False)
        generator = self.og.Generator(self.model, params)
        generator.append_tokens(list(prompt_ids))

        def logits():
            return torch.from_numpy(generator.get_logits().reshape(-1)).float()

        def step(token: int):
            generator.append_tokens([token])
            return logits()

        return decode_loop(sampler, prompt_ids, logits(), step, max_new_tokens, stop_ids, on_token, done)

    def decode_batch(self, prompts: list[list[int]], max_new_tokens: int, stop_ids: set[int], cancel=None, done=None):
        """Greedy new tokens for each prompt (a stop token included), decoded in ONNX Runtime batches; a row ends
        at a stop token, at ``max_new_tokens`` or when ``done(tokens)`` says so (a stop string completed).

        Each row's reply is the one this method gives for that prompt alone: rows are padded on the right, which
        ONNX Runtime GenAI masks exactly (a padded row's first logits equalled its own run's bit for bit, checked by
        hand; tests/engine/test_onnx_batch.py checks the replies), while left padding, as transformers batches use,
        changed them. Where the model has sliding-window attention (which refuses padded rows), only prompts of
        one length share a batch. Prompts are not shared between rows (each row's whole prompt runs), so batches
        of long few-shot prompts are bound by that pass."""
        groups: dict[int, list[int]] = {}
        for i, ids in enumerate(prompts):
            groups.setdefault(0 if self.pads_rows else len(ids), []).append(i)
        out: list[list[int]] = [[] for _ in prompts]
        for rows in groups.values():
            decoded = self._decode_padded([prompts[i] for i in rows], max_new_tokens, stop_ids, cancel, done)
            for i, tokens in zip(rows, decoded):
                out[i] = tokens
        return out

    def _decode_padded(self, prompts, max_new_tokens, stop_ids, cancel, done) -> list[list[int]]:
        import numpy as np

        rows, width = len(prompts), max(len(ids) for ids in prompts)
        params = self.og.GeneratorParams(self.model)
        length = min(max(width + max_new_tokens + 1, self.min_length), self.context_length)
        # ONNX Runtime's own greedy search picks each next token (the argmax, as llmplay's Sampler when greedy)
        params.set_search_options(batch_size=rows, max_length=length, do_sample=False, repetition_penalty=1.0)
        generator = self.og.Generator(self.model, params)
        generator.append_tokens(np.array([ids + [self.pad_id] * (width - len(ids)) for ids in prompts], np.int32))
        out: list[list[int]] = [[] for _ in prompts]
        open_rows = set(range(rows))
        while open_rows and not generator.is_done():
            if cancel is not None and cancel.is_set():
                break
            generator.generate_next_token()
            for i, token in enumerate(generator.get_next_tokens().tolist()):
                if i not in open_rows:
                    continue
                out[i].append(int(token))
                if token in stop_ids or len(out[i]) >= max_new_tokens or (done is not None and done(out[i])):
                    open_rows.discard(i)
        return out
