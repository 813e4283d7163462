"""Stored model outputs and the cache key that finds them again.

An output is reused when everything that decides it is unchanged: the exact text the model sees, the
model (its catalog entry: weights, endpoint, dtype), the backend that decodes it, the adapter (by content
hash, so retraining into the same folder is a new adapter), the decoding parameters including the seed, and
the answer mode. Failed generations are never stored, so they are retried on the next run. Each stored
output names its backend and precision ("transformers float32").
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlite_utils import Database

from llmplay.engine.backends import REFERENCE
from llmplay.engine.types import GenerationParams, GenerationResult
from llmplay.models.adapters import adapter_identity
from llmplay.models.catalog import ModelSpec


@dataclass(frozen=True)
class StoredOutput:
    id: int
    text: str
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    finish_reason: str
    details: dict[str, Any]
    backend: str = ""

    @property
    def tokens_per_s(self) -> float:
        return self.completion_tokens / self.latency_s if self.latency_s > 0 else 0.0


def cache_key(
    *,
    prompt: str,
    spec: ModelSpec,
    dtype: str,
    adapter: str | None,
    params: GenerationParams,
    mode: str,
    options: tuple[str, ...] = (),
    backend: str = REFERENCE,
) -> str:
    model = {k: v for k, v in spec.to_dict().items() if k != "description"}
    local = spec.provider == "local"
    payload = {
        "prompt": prompt,
        "model": model,
        "dtype": dtype if local else "",
        # Evaluation batches decode on transformers (llmplay.engine.backends); another backend's outputs,
        # even with the same weights, are other outputs.
        "backend": backend if local else "",
        "adapter": adapter_identity(adapter or spec.adapter),  # a trained version's adapter, by content
        "params": params.to_dict(),
        "mode": mode,
        "options": list(options),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def find(db: Database, keys: list[str]) -> dict[str, StoredOutput]:
    """Stored outputs for those of ``keys`` that have one."""
    found: dict[str, StoredOutput] = {}
    for start in range(0, len(keys), 500):  # SQLite's bound-parameter limit
        chunk = keys[start : start + 500]
        marks = ",".join("?" * len(chunk))
        for row in db.query(f"select * from eval_outputs where cache_key in ({marks})", chunk):
            found[row["cache_key"]] = _stored(row)
    return found


def get(db: Database, output_id: int) -> StoredOutput:
    return _stored(db["eval_outputs"].get(output_id))


def insert(
    db: Database,
    *,
    key: str,
    mode: str,
    model: str,
    adapter: str | None,
    template_version_id: int | None,
    prompt: str,
    params: GenerationParams,
    result: GenerationResult,
    details: dict[str, Any] | None = None,
) -> int:
    """Store a successful output (or return the one another run stored under the same key meanwhile)."""
    existing = next(db.query("select id from eval_outputs where cache_key = ?", [key]), None)
    if existing:
        return existing["id"]
    record = {
        "cache_key": key,
        "mode": mode,
        "model": model,
        "adapter": adapter or "",
        "template_version_id": template_version_id,
        "prompt": prompt,
        "params": json.dumps(params.to_dict()),
        "text": result.text,
        "prompt_tokens": result.prompt_tokens,
        "completion_tokens": result.completion_tokens,
        "latency_s": result.latency_s,
        "finish_reason": result.finish_reason,
        "backend": result.backend,
        "details": json.dumps(details or {}),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    return db["eval_outputs"].insert(record).last_pk


def _stored(row: dict) -> StoredOutput:
    return StoredOutput(
        id=row["id"],
        text=row["text"] or "",
        prompt_tokens=row["prompt_tokens"] or 0,
        completion_tokens=row["completion_tokens"] or 0,
        latency_s=row["latency_s"] or 0.0,
        finish_reason=row["finish_reason"] or "",
        details=json.loads(row["details"] or "{}"),
        backend=row.get("backend") or "",
    )
