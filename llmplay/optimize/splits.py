"""Honest splits: the dataset's rows dealt, with a seed, into an examples pool, a dev set and a test set that
share no row and no input text. The search draws examples from the pool and scores on dev only; the test rows
are read once, for the final report, so the gain it shows is on rows the search never saw.

Rows whose input repeats an earlier row's (same values in every input column) are dropped before dealing:
a sentence seen in dev must not come back in test. Rows with an empty reference cannot be scored and go too.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from typing import Any

from llmplay.errors import InvalidRequestError
from llmplay.optimize.config import MIN_TEST_ROWS


@dataclass(frozen=True)
class Splits:
    pool: tuple[int, ...]  # dataset row indices (positions in the saved dataset), in dealt order
    dev: tuple[int, ...]
    test: tuple[int, ...]
    seed: int
    duplicates: int = 0  # rows left out: their input repeats an earlier row's
    unlabelled: int = 0  # rows left out: empty reference

    def part(self, name: str) -> tuple[int, ...]:
        return {"pool": self.pool, "dev": self.dev, "test": self.test}[name]

    def digest(self, dataset_hash: str) -> str:
        """A short id of these exact splits of that dataset content: names the split datasets."""
        text = json.dumps([dataset_hash, self.pool, self.dev, self.test])
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:10]

    def describe(self) -> str:
        left = []
        if self.duplicates:
            left.append(f"{self.duplicates} duplicate inputs")
        if self.unlabelled:
            left.append(f"{self.unlabelled} rows without a reference")
        out = f"pool {len(self.pool)} / dev {len(self.dev)} / test {len(self.test)} rows (seed {self.seed})"
        return out + (f"; left out: {', '.join(left)}" if left else "")


def make_splits(
    rows: list[dict[str, Any]],
    inputs: list[str],
    reference: str | None,
    pool: int,
    dev: int,
    test: int | None,
    seed: int,
    dataset: str = "the dataset",
) -> Splits:
    """Deal ``rows`` into pool / dev / test (``test`` None: every row left). Refuses, before anything runs, an
    empty dataset, one with no reference column, too few rows, and a test split too small for an interval."""
    if not rows:
        raise InvalidRequestError(f"{dataset} has no rows: there is nothing to search or test on.")
    if not reference:
        raise InvalidRequestError(
            f"{dataset} has no reference column: a search scores answers against the expected ones. "
            "Map the column that holds them when saving the dataset (or give `reference:` in the config)."
        )
    seen: set[str] = set()
    usable, duplicates, unlabelled = [], 0, 0
    for i, row in enumerate(rows):
        if str(row.get(reference) or "").strip() == "":
            unlabelled += 1
            continue
        key = json.dumps([str(row.get(c, "")).strip() for c in inputs], ensure_ascii=False)
        if key in seen:
            duplicates += 1
            continue
        seen.add(key)
        usable.append(i)
    wanted = pool + dev + (test if test is not None else MIN_TEST_ROWS)
    if len(usable) < wanted:
        need = f"pool {pool} + dev {dev} + test {test if test is not None else f'at least {MIN_TEST_ROWS}'}"
        raise InvalidRequestError(
            f"{dataset} has {len(usable)} usable rows (of {len(rows)}: duplicates and rows without a reference "
            f"left out); the splits need {need} = {wanted}. Lower the split sizes or use a larger dataset."
        )
    random.Random(seed).shuffle(usable)
    test_rows = usable[pool + dev :] if test is None else usable[pool + dev : pool + dev + test]
    if len(test_rows) < MIN_TEST_ROWS:  # reached only with test=None; kept as a guard for direct callers
        raise InvalidRequestError(
            f"The test split would have {len(test_rows)} rows; at least {MIN_TEST_ROWS} are needed for an interval."
        )
    return Splits(
        pool=tuple(usable[:pool]),
        dev=tuple(usable[pool : pool + dev]),
        test=tuple(test_rows),
        seed=seed,
        duplicates=duplicates,
        unlabelled=unlabelled,
    )
