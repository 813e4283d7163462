"""Sentence embeddings from an encoder model in the catalog (the bundled all-MiniLM-L6-v2 by default).

Used by the semantic-similarity metric. Mean pooling over tokens, then L2 normalisation, as the
sentence-transformers recipe for MiniLM does, so a dot product is the cosine similarity.
"""

from __future__ import annotations

import functools
import tempfile
import threading
from pathlib import Path

from llmplay.errors import ModelLoadError
from llmplay.models import sources
from llmplay.models.catalog import Catalog
from llmplay.openmp import released

DEFAULT_ENCODER = "all-minilm-l6-v2"


class Embedder:
    def __init__(self, folder: str):
        from transformers import AutoModel, AutoTokenizer

        try:
            self.tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=False)
            self.model = AutoModel.from_pretrained(folder, trust_remote_code=False).eval()
        except Exception as exc:
            raise ModelLoadError(f"Could not load the encoder from {folder}: {str(exc)[:300]}") from exc
        self._lock = threading.Lock()

    @released  # (llmplay/openmp.py)
    def encode(self, texts: list[str], batch_size: int = 64):
        """One unit-length vector per text (torch tensor, float32)."""
        import torch

        vectors = []
        with self._lock, torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                batch = self.tokenizer(
                    texts[start : start + batch_size], padding=True, truncation=True, return_tensors="pt"
                )
                hidden = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                vectors.append(torch.nn.functional.normalize(pooled, dim=-1))
        return torch.cat(vectors) if vectors else torch.empty(0)

    def similarity(self, a: list[str], b: list[str]) -> list[float]:
        """Cosine similarity of a[i] and b[i] for every i."""
        if len(a) != len(b):
            raise ValueError(f"{len(a)} texts vs {len(b)} references")
        if not a:
            return []
        return (self.encode(a) * self.encode(b)).sum(-1).tolist()


@functools.cache
@released
def get_embedder(model: str = DEFAULT_ENCODER) -> Embedder:
    """The encoder named ``model`` (a catalog name or a local folder), loaded once per process."""
    if Path(model).is_dir():
        return Embedder(model)
    spec = Catalog().get(model)
    if spec.kind != "encoder":
        raise ModelLoadError(f"{model!r} is a {spec.kind} model; semantic similarity needs an encoder.")
    weights = sources.resolve(spec, Path(tempfile.gettempdir()))
    return Embedder(weights.path)
