"""Data splits shared by the fine-tuning benches, so every bench trains and tests on the very same rows.

- ``fpb_split(seed)``: Financial PhraseBank AllAgree (``sentences_allagree.jsonl``) shuffled with ``seed``; the
  first ``train`` rows train, the next ``held_out`` rows test (disjoint by construction). Used by
  bench/finetune.py (SmolLM2 + LoRA) and bench/finetune_encoder.py (MiniLM classifier).
- ``conll_split(seed)``: CoNLL-2003 eng.testb split BY DOCUMENT (a news story's sentences stay on one side).

The data sets live in ../shared/datasets (research / non-commercial licences: benches only, never shipped);
``require`` exits with a clear message when they are missing.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"
FPB = DATASETS / "financial_phrasebank" / "sentences_allagree.jsonl"
CONLL = DATASETS / "conll2003" / "eng.testb"
FPB_LABELS = ("positive", "negative", "neutral")


def require(*paths: Path) -> None:
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        sys.exit(f"skipped: needs the shared data sets ({', '.join(missing)} not found)")


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def fpb_split(seed: int = 0, train: int = 500, held_out: int = 300) -> tuple[list[dict], list[dict]]:
    """(train rows, held-out rows) of FPB AllAgree, each ``{"text", "label"}``; disjoint, seeded."""
    require(FPB)
    rows = _jsonl(FPB)
    random.Random(seed).shuffle(rows)
    if train + held_out > len(rows):
        sys.exit(f"FPB AllAgree has {len(rows)} rows; {train} + {held_out} asked for")
    return rows[:train], rows[train : train + held_out]


def conll_split(seed: int = 0, held_out_fraction: float = 0.4) -> tuple[list[dict], list[dict]]:
    """(train, held-out) sentences of CoNLL-2003 eng.testb split by document; tags in BIO."""
    require(CONLL)
    from llmplay.training.encoder_data import read_conll, split_rows
    from llmplay.training.tasks.ner import to_bio

    rows = read_conll(CONLL)
    for i, row in enumerate(rows):
        row["id"] = i
        row["tags"] = to_bio(row["tags"])
    return split_rows(rows, held_out_fraction, seed)


def majority_share(rows: list[dict], key: str = "label") -> float:
    counts: dict[str, int] = {}
    for row in rows:
        counts[row[key]] = counts.get(row[key], 0) + 1
    return max(counts.values()) / len(rows) if rows else 0.0
