"""Files written whole or not at all: a temp file in the same folder, flushed to disk, renamed over the target.
A reader (the app, a training job, an upload of the export) sees the old file or the new one, never half of one,
and a process killed mid-write leaves the old file and no temp file behind it (the temp is removed on errors)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path


def atomic_write(path: Path | str, content: str | Iterable[str]) -> None:
    """Write ``content`` (a text, or text chunks) to ``path`` atomically; creates the folder if needed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            for chunk in [content] if isinstance(content, str) else content:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
