"""LoRA adapters: a folder's identity by content, so retraining into the same folder counts as a new adapter
(for the loaded-model cache and for cached evaluation outputs), and stacked adapters.

A stacked adapter (TrainConfig.stack_on_parent) was trained on top of earlier adapters merged into the base,
so it only means something with them: its folder holds ``llmplay_stack.json`` = ``{"stack": [folders...]}``,
the adapters to merge first, in order (relative to the folder, so a moved data folder still resolves).
``adapter_chain`` gives every folder to apply, ``merge_adapters`` applies and merges them.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from llmplay.errors import ModelLoadError

STACK_FILE = "llmplay_stack.json"
_file_hashes: dict[tuple[str, int, int], str] = {}


def adapter_identity(adapter: str | None) -> str:
    """A content hash of a LoRA adapter folder's config and weights ("" for none), cached by size and mtime;
    a stacked adapter's hash covers the adapters below it too."""
    if not adapter:
        return ""
    folder = Path(adapter)
    files = sorted(p for p in folder.glob("adapter_*") if p.is_file())
    if not files:
        return f"missing:{adapter}"  # the engine reports the missing adapter when it tries to load it
    digest = hashlib.sha256()
    for below in stack_of(adapter):
        digest.update(f"stack:{adapter_identity(below)}".encode())
    for path in files:
        stat = path.stat()
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        if key not in _file_hashes:
            _file_hashes[key] = hashlib.sha256(path.read_bytes()).hexdigest()
        digest.update(f"{path.name}:{_file_hashes[key]}".encode())
    return digest.hexdigest()


def stack_of(adapter: str | Path) -> list[str]:
    """The adapter folders a stacked adapter was trained on top of, bottom first ([] for a plain adapter)."""
    path = Path(adapter) / STACK_FILE
    if not path.is_file():
        return []
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))["stack"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelLoadError(f"Adapter {str(adapter)!r} has an unreadable {STACK_FILE}: {exc}") from None
    return [str((Path(adapter) / e).resolve()) if not os.path.isabs(e) else e for e in entries]


def adapter_chain(adapter: str | Path) -> list[str]:
    """Every folder to apply for ``adapter``, in order: the stack below it, then the adapter itself."""
    return [*stack_of(adapter), str(adapter)]


def write_stack(folder: Path, stack: list[str]) -> None:
    """Record the adapters ``folder``'s adapter sits on (nothing for a plain adapter)."""
    if stack:
        entries = [os.path.relpath(Path(s).resolve(), Path(folder).resolve()) for s in stack]
        (Path(folder) / STACK_FILE).write_text(json.dumps({"stack": entries}, indent=2), encoding="utf-8")


def merge_adapters(model, folders: list[str]):
    """``model`` with each LoRA-family adapter in ``folders`` applied and merged into its weights, in order."""
    from peft import PeftModel

    for folder in folders:
        if not (Path(folder) / "adapter_config.json").exists():
            raise ModelLoadError(f"Stacked adapter folder {folder!r} is missing (no adapter_config.json).")
        try:
            peft_model = PeftModel.from_pretrained(model, str(folder))
        except Exception as exc:
            raise ModelLoadError(f"Could not apply LoRA adapter {folder!r}: {exc}") from exc
        if peft_model.active_peft_config.is_prompt_learning:
            raise ModelLoadError(f"Adapter {folder!r} is a soft prompt: it cannot sit below a stacked adapter.")
        model = peft_model.merge_and_unload()
    return model
