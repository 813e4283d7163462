"""One-time conversion of GGUF weights into a local safetensors + tokenizer folder.

Dequantizing a GGUF file and converting its tokenizer takes 15-60 s; loading the saved folder takes
a fraction of a second. A cache entry is built in a temporary folder and renamed into place, and a
manifest (file names and sizes) is written last, so a half-written or damaged entry is detected and
rebuilt instead of being loaded.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import struct
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from llmplay.errors import ModelLoadError
from llmplay.models.sources import Weights

MANIFEST = "llmplay-cache.json"
Progress = Callable[[str], None]


def _noop(_: str) -> None:
    pass


def _safetensors_header_ok(path: Path) -> bool:
    """Cheap integrity check: the header length and JSON header parse and fit in the file."""
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            raw = fh.read(8)
            if len(raw) != 8:
                return False
            (n,) = struct.unpack("<Q", raw)
            if n <= 0 or 8 + n > size:
                return False
            header = json.loads(fh.read(n))
        end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
        return 8 + n + end == size
    except (OSError, ValueError, KeyError, TypeError):
        return False


def is_valid(entry: Path) -> bool:
    """True when ``entry`` is a complete cache folder: manifest present, every file at its size."""
    manifest = entry / MANIFEST
    try:
        data = json.loads(manifest.read_text())
        files = data["files"]
    except (OSError, ValueError, KeyError, TypeError):
        return False
    if not files or "config.json" not in files:
        return False
    for name, size in files.items():
        f = entry / name
        try:
            if f.stat().st_size != size:
                return False
        except OSError:
            return False
        if name.endswith(".safetensors") and not _safetensors_header_ok(f):
            return False
    return True


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """Cross-process lock so two processes never convert the same model at once."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def convert_gguf(weights: Weights, out_dir: Path, progress: Progress = _noop) -> None:
    """Dequantize ``weights`` (GGUF) with transformers and save model + tokenizer into ``out_dir``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if weights.prepare is not None:
        progress("Unpacking the bundled model file")
        weights.prepare()
    progress("Converting the tokenizer from GGUF")
    tokenizer = AutoTokenizer.from_pretrained(weights.path, gguf_file=weights.gguf_file, trust_remote_code=False)
    progress("Dequantizing GGUF weights")
    model = AutoModelForCausalLM.from_pretrained(
        weights.path, gguf_file=weights.gguf_file, dtype=torch.float32, trust_remote_code=False
    )
    # The weights are plain floats now; drop the GGUF marker that makes save_pretrained refuse.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    progress("Writing the converted model to the cache")
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)


def ensure_converted(
    weights: Weights,
    cache_root: Path,
    key: str,
    progress: Progress = _noop,
    convert: Callable[[Weights, Path, Progress], None] | None = None,
) -> tuple[Path, bool]:
    """Return (folder, was_cached). Builds the entry on a miss or when the entry is damaged."""
    convert = convert or convert_gguf
    entry = cache_root / key
    if is_valid(entry):
        return entry, True
    with _file_lock(cache_root / f".{key}.lock"):
        if is_valid(entry):  # another process finished it while we waited
            return entry, True
        if entry.exists():
            progress("Cached copy is incomplete or damaged; rebuilding it")
            shutil.rmtree(entry, ignore_errors=True)
        tmp = cache_root / f".{key}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        try:
            started = time.perf_counter()
            convert(weights, tmp, progress)
            files = {p.name: p.stat().st_size for p in sorted(tmp.iterdir()) if p.is_file()}
            manifest = {
                "files": files,
                "source": weights.path,
                "gguf_file": weights.gguf_file,
                "fingerprint": weights.fingerprint,
                "convert_s": round(time.perf_counter() - started, 2),
                "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            }
            with (tmp / MANIFEST).open("w") as fh:
                json.dump(manifest, fh, indent=1)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, entry)
        except Exception as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise ModelLoadError(f"Could not convert {weights.gguf_file} from {weights.path}: {exc}") from exc
        if weights.prepare is not None and weights.gguf_file:
            # The assembled GGUF was only needed for conversion; don't keep a second copy on disk.
            (Path(weights.path) / weights.gguf_file).unlink(missing_ok=True)
        return entry, False


def invalidate(entry: Path) -> None:
    """Forget a cache entry (used when loading it failed despite a valid manifest)."""
    shutil.rmtree(entry, ignore_errors=True)
