"""LoRA adapters: a folder's identity by content, so retraining into the same folder counts as a new adapter
(for the loaded-model cache and for cached evaluation outputs)."""

from __future__ import annotations

import hashlib
from pathlib import Path

_file_hashes: dict[tuple[str, int, int], str] = {}


def adapter_identity(adapter: str | None) -> str:
    """A content hash of a LoRA adapter folder's config and weights ("" for none), cached by size and mtime."""
    if not adapter:
        return ""
    folder = Path(adapter)
    files = sorted(p for p in folder.glob("adapter_*") if p.is_file())
    if not files:
        return f"missing:{adapter}"  # the engine reports the missing adapter when it tries to load it
    digest = hashlib.sha256()
    for path in files:
        stat = path.stat()
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        if key not in _file_hashes:
            _file_hashes[key] = hashlib.sha256(path.read_bytes()).hexdigest()
        digest.update(f"{path.name}:{_file_hashes[key]}".encode())
    return digest.hexdigest()
