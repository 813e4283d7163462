"""Temporary files the app makes (export downloads) or receives (Gradio's uploads), kept under
``<data dir>/tmp`` so the app owns them: a failed export removes its folder, an upload is deleted once its
content is stored, and whatever is left over (a closed tab, a crash) is swept a day later at start-up.

No gradio import: the UI passes the folders to Gradio (GRADIO_TEMP_DIR, allowed_paths).
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from llmplay.settings import Settings

log = logging.getLogger(__name__)

STALE_AFTER_S = 24 * 3600  # long enough for a download started from an open page to finish


def temp_root(settings: Settings) -> Path:
    return settings.data_dir / "tmp"


def exports_dir(settings: Settings) -> Path:
    return temp_root(settings) / "exports"


def upload_dir() -> Path:
    """Where Gradio keeps uploads and served files: the same rule as gradio.utils.get_upload_folder."""
    return Path(os.environ.get("GRADIO_TEMP_DIR") or Path(tempfile.gettempdir()) / "gradio").resolve()


def claim_upload_dir(settings: Settings) -> Path:
    """Point Gradio's temp dir at ``<data dir>/tmp/gradio`` (unless GRADIO_TEMP_DIR is set) and sweep stale
    files from everything under ``<data dir>/tmp``. Call before the app's components are built: each reads the
    folder when it is created."""
    os.environ.setdefault("GRADIO_TEMP_DIR", str((temp_root(settings) / "gradio").resolve()))
    removed = sweep(temp_root(settings))
    if removed:
        log.info("Removed %d stale temporary file(s) from %s", removed, temp_root(settings))
    folder = upload_dir()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextmanager
def export_folder(settings: Settings, prefix: str) -> Iterator[Path]:
    """A fresh folder for one download; removed again if the block raises, so a failed export leaves nothing."""
    root = exports_dir(settings)
    root.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=root))
    try:
        yield folder
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise


def discard_upload(path: str | Path | None) -> bool:
    """Delete an uploaded file (and its folder, once empty) after its content has been stored. Only files inside
    Gradio's upload folder: a path given by a script or a test is the caller's, never deleted."""
    if not path:
        return False
    file = Path(path).resolve()
    root = upload_dir()
    if root not in file.parents or not file.is_file():
        return False
    try:
        file.unlink()
        if file.parent != root and not any(file.parent.iterdir()):
            file.parent.rmdir()
    except OSError as exc:  # another request may be reading the same upload; the sweep gets it later
        log.debug("Could not delete upload %s: %s", file, exc)
        return False
    return True


def sweep(folder: Path, max_age_s: float = STALE_AFTER_S, now: float | None = None) -> int:
    """Delete files under ``folder`` not modified for ``max_age_s``, then the folders left empty; returns the
    number of files deleted. ``folder`` itself stays."""
    if not folder.is_dir():
        return 0
    cutoff = (time.time() if now is None else now) - max_age_s
    removed, emptied = 0, set()  # emptied: folders this sweep took something out of
    for root, dirs, files in os.walk(folder, topdown=False):
        base = Path(root)
        for name in files:
            path = base / name
            try:
                if path.lstat().st_mtime < cutoff:
                    path.unlink()
                    removed += 1
                    emptied.add(base)
            except OSError:
                continue  # gone already, or not ours to delete
        for name in dirs:
            sub = base / name
            try:
                # A fresh empty folder may be an export being written right now: only old or emptied ones go.
                if sub.is_symlink() or any(sub.iterdir()) or (sub not in emptied and sub.stat().st_mtime >= cutoff):
                    continue
                sub.rmdir()
                emptied.add(base)
            except OSError:
                continue
    return removed
