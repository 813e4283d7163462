"""Successive halving, ranking, the budget and cancel, with the evaluation runs replaced by scripted scores (no
model): candidate ``c`` gets row ``r`` right when (7r + c) mod 10 is below ten times its quality, so on any
10-row prefix it scores exactly its quality."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import pandas as pd
import pytest

from llmplay.datasets import ColumnMapping, save_dataset
from llmplay.optimize.config import OptimizeConfig
from llmplay.optimize.search import Evaluation, PromptSearch
from llmplay.templates.library import TemplateLibrary
from tests.conftest import CHAT_MODEL, ROOT

CONFIG = {
    "template": "financial-sentiment",
    "dataset": "rows",
    "model": CHAT_MODEL,
    "splits": {"pool": 10, "dev": 30, "test": 30},
    "search": {"few_shot": False, "max_candidates": 6},
}


@pytest.fixture()
def scripted(isolated_engine, monkeypatch):
    settings = isolated_engine.settings
    rows = [{"text": f"Sentence number {i}.", "label": ("positive", "negative", "neutral")[i % 3]} for i in range(80)]
    save_dataset(settings, "rows", pd.DataFrame(rows, dtype=object), ColumnMapping({"text": "text"}, "label"))
    library = TemplateLibrary.from_settings(settings, ROOT / "prompts")
    quality = {}
    seen: set[tuple[int, int]] = set()
    clock, seconds_per_call = [0.0], [0.0]  # a model call takes seconds_per_call[0] on this clock

    def evaluate(self, phase, part, rows, columns):
        calls = sum((c, r) not in seen for c, _, _ in columns for r in rows)  # a prefix scored before is cached
        clock[0] += calls * seconds_per_call[0]
        seen.update((c, r) for c, _, _ in columns for r in rows)
        if phase != "test":
            self.calls += calls
        self.evaluations.append(Evaluation(len(self.evaluations) + 1, phase, part, tuple(rows), (), calls))
        cells = {
            (i, k): SimpleNamespace(error=None, scores={"accuracy": float((7 * i + c) % 10 < quality.get(c, 3))})
            for k, (c, _, _) in enumerate(columns)
            for i in range(len(rows))
        }
        return SimpleNamespace(rows=list(rows), cells=cells)

    monkeypatch.setattr(PromptSearch, "_evaluate", evaluate)

    def search(quality_by_id: dict[int, int], call_s: float = 0.0, **config) -> PromptSearch:
        quality.update(quality_by_id)
        if call_s:
            seconds_per_call[0] = call_s
            # the search's own clock only (patching time.monotonic itself would stop every timeout in the process)
            monkeypatch.setattr("llmplay.optimize.search.time", SimpleNamespace(monotonic=lambda: clock[0]))
        data = {**CONFIG, **config}
        return PromptSearch(isolated_engine, OptimizeConfig.from_dict(data), library)

    return search


def test_halving_promotes_the_best_and_breaks_ties_toward_the_shorter_prompt(scripted):
    search = scripted({1: 8, 4: 8, 2: 6})
    result = search.run()
    assert result.rungs == [10, 30] and result.stopped == "done"
    assert [s.rows for s in result.standings].count(30) == 3
    assert {s.candidate.id for s in result.standings if s.rows == 30} == {1, 2, 4}
    tied = [s for s in result.standings if s.candidate.id in (1, 4)]
    assert result.winner == min(tied, key=lambda s: (s.candidate.prompt_chars, s.candidate.id))
    assert result.winner.score.estimate == pytest.approx(0.8)
    assert result.test.start.estimate == pytest.approx(0.3) and result.test.gain.estimate == pytest.approx(0.5)
    assert result.calls == 6 * 10 + 3 * 20  # promoted candidates reuse their first 10 rows


def test_the_search_stops_at_the_call_budget_and_still_reports_the_test(scripted):
    search = scripted({1: 8}, budget={"calls": 75})
    result = search.run()
    assert result.stopped == "budget: model calls" and result.calls == 60 <= 75
    assert result.winner.candidate.id == 1 and result.winner.rows == 10  # ranked where every candidate was
    assert result.test is not None and result.test.gain.estimate == pytest.approx(0.5)


def test_cancel_stops_the_search_without_a_test_report(scripted):
    cancel = threading.Event()
    search = scripted({})
    search.cancel = cancel
    search.on_event = lambda e: cancel.set() if e.kind == "scored" else None
    result = search.run()
    assert result.stopped == "cancelled" and result.test is None
    assert sum(s.score is not None for s in result.standings) == 1
    assert [e.phase for e in result.evaluations] == ["dev"]


def test_past_the_minutes_budget_nothing_more_starts_and_the_start_template_stands(scripted):
    result = scripted({1: 8}, budget={"minutes": 1e-6}).run()
    assert result.stopped == "budget: minutes" and result.calls == 0
    assert result.winner.candidate.id == 0 and any("the start template stands" in n for n in result.notes)
    assert result.test is not None and result.test.gain.estimate == 0  # the report still compares start with itself


def test_an_evaluation_that_cannot_finish_within_the_minutes_is_not_started(scripted):
    # 1 s per call, 60 s of budget: the first rung (6 candidates x 10 rows) fills it; the second (3 x 20 more
    # rows) would end past it, so it does not start (a run stopped at the deadline is not ranked anyway).
    result = scripted({1: 8}, call_s=1.0, budget={"minutes": 1}).run()
    assert result.stopped == "budget: minutes" and result.calls == 60
    assert [e.phase for e in result.evaluations].count("dev") == 6 and result.search_s <= 60
    assert result.winner.candidate.id == 1 and result.test is not None
