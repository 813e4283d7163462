"""Running columns in parallel: merged events, isolated failures, lanes per local model; on the real bundled
models (greedy) the parallel streamed replies equal the engine's non-streamed ones."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from llmplay.compare import (
    Column,
    ColumnConfig,
    Comparison,
    lanes,
    run_columns,
    stream_columns,
)
from llmplay.engine import GenerationParams, GenerationRequest
from tests.compare.scripted import GREEDY, STORY, ScriptedEngine, collect, column
from tests.conftest import BASE_MODEL, CHAT_MODEL, ROOT


# ---- merging scripted streams ----------------------------------------------------------------------------
def test_events_from_all_columns_interleave_and_each_ends_once():
    engine = ScriptedEngine({"a": ["A1 ", "A2 ", "A3"], "b": ["B1 ", "B2 ", "B3"]})
    order = [index for index, event in stream_columns(engine, [column("a"), column("b")]) if event.delta]
    assert sorted(order) == [0, 0, 0, 1, 1, 1]
    assert order != [0, 0, 0, 1, 1, 1], "columns ran one after the other instead of in parallel"

    texts, done = collect(engine, [column("a"), column("b")])
    assert texts == {0: "A1 A2 A3", 1: "B1 B2 B3"}
    assert {i: len(events) for i, events in done.items()} == {0: 1, 1: 1}


def test_a_failing_column_reports_its_error_while_the_others_finish():
    engine = ScriptedEngine({"ok": ["fine ", "reply"], "crash": ["half", "<boom>"], "cut": ["x", "<end>"]})
    broken = Column(ColumnConfig(model="ok"), error="Template 'nope' not found.")
    columns = [column("crash"), column("ok"), column("missing"), broken, column("cut")]
    results = run_columns(engine, columns)
    assert [r.ok for r in results] == [False, True, False, False, False]
    assert "RuntimeError: kaboom" in results[0].error
    assert results[1].text == "fine reply"
    assert "Unknown model 'missing'" in results[2].error
    assert results[3].error == "Template 'nope' not found."
    assert "without a result" in results[4].error


def test_closing_the_merged_stream_stops_every_column():
    engine = ScriptedEngine({"a": ["x"] * 200, "b": ["y"] * 200}, pause_s=0.01)
    events = stream_columns(engine, [column("a"), column("b")])
    next(events)
    events.close()
    deadline = time.monotonic() + 5
    while len(engine.closed) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert sorted(engine.closed) == ["a", "b"], "each column's stream is closed once nobody listens"
    time.sleep(0.1)
    assert not [t for t in threading.enumerate() if t.name.startswith("compare-column")], "the workers ended"


def test_columns_on_one_local_model_share_a_lane_and_take_turns_in_order(engine, dead_endpoint):
    columns = [column(CHAT_MODEL), column(BASE_MODEL), column(CHAT_MODEL), column(dead_endpoint)]
    columns += [column(dead_endpoint), Column(ColumnConfig(CHAT_MODEL, GREEDY, dtype="bfloat16")), column("nope")]
    assert lanes(engine, columns) == [[0, 2], [1], [3], [4], [5], [6]]

    scripted = ScriptedEngine({CHAT_MODEL: ["x", "y"], BASE_MODEL: ["z"] * 6})
    three = [column(CHAT_MODEL), column(BASE_MODEL), column(CHAT_MODEL)]
    events = [(i, event.done) for i, event in stream_columns(scripted, three)]
    assert events.index((2, False)) > events.index((0, True)), "column 3 starts once column 1 is done"
    assert events.index((1, False)) < events.index((0, True)), "another model runs alongside"
    snapshot = Comparison(three).run(scripted).snapshot()
    assert [c["waits_for"] for c in snapshot["columns"]] == [None, None, 1]


# ---- real models in parallel ------------------------------------------------------------------------------
def test_parallel_streams_equal_the_engines_greedy_replies_and_overlap(engine):
    requests = {CHAT_MODEL: GenerationRequest.of([{"role": "user", "content": STORY}], GREEDY)}
    requests[BASE_MODEL] = GenerationRequest.of(STORY, GREEDY)

    def alone(model, request) -> str:  # the same stream backend, one reply at a time
        return next(e.result for e in engine.stream(model, request) if e.done).text

    expected = {model: alone(model, request) for model, request in requests.items()}
    assert all(expected.values())

    comparison = Comparison([Column(ColumnConfig(m), r) for m, r in requests.items()]).run(engine)
    for run, model in zip(comparison.runs, requests):
        assert run.result.ok, run.result.error
        assert run.result.text == expected[model]
        assert run.text == expected[model], "the streamed pieces add up to the reply"
        assert run.result.time_to_first_token_s is not None and run.result.tokens_per_s > 0
    first_texts = [run.first_text_s for run in comparison.runs]
    finishes = [run.finished_s for run in comparison.runs]
    assert max(first_texts) < min(finishes), "both columns were generating at the same time"


FRESH_PROCESS = """
import sys
from pathlib import Path
from llmplay.compare import Column, ColumnConfig, run_columns
from llmplay.engine import Engine, GenerationParams, GenerationRequest
from llmplay.settings import Settings

assert "transformers" not in sys.modules
engine = Engine(Settings(data_dir=Path(sys.argv[1]), cache_dir=Path(sys.argv[2])))
request = GenerationRequest.of("Hello", GenerationParams(max_new_tokens=2))
columns = [Column(ColumnConfig(model), request) for model in sys.argv[3:]]
print([result.error for result in run_columns(engine, columns)])
"""


@pytest.mark.slow
def test_first_use_in_a_fresh_process_runs_every_column(tmp_path, model_cache_dir):
    """transformers' first import is not thread-safe: columns that import it at once used to fail with
    ImportError (4 columns in a fresh process showed it in 2 runs out of 3; 2 processes make a miss rare)."""
    models = [CHAT_MODEL, BASE_MODEL, CHAT_MODEL, BASE_MODEL]
    for run in range(2):
        args = [sys.executable, "-c", FRESH_PROCESS, str(tmp_path / str(run)), str(model_cache_dir), *models]
        proc = subprocess.run(args, capture_output=True, text=True, timeout=600, cwd=ROOT)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert proc.stdout.strip().splitlines()[-1] == "[None, None, None, None]", proc.stdout


def test_unreachable_endpoint_fails_alone(engine, dead_endpoint):
    request = GenerationRequest.of([{"role": "user", "content": "Say hi."}], GenerationParams(max_new_tokens=8))
    expected = engine.generate(CHAT_MODEL, [request])[0].text
    results = run_columns(
        engine, [Column(ColumnConfig(dead_endpoint), request), Column(ColumnConfig(CHAT_MODEL), request)]
    )
    assert results[0].error and "Cannot reach endpoint" in results[0].error
    assert results[1].ok and results[1].text == expected


def test_a_prepared_column_consults_the_catalog_once(engine, monkeypatch):
    """A trained version's lookup is a SQLite read: prepare_column resolves the model and the lanes, the import
    guard and the stream reuse that spec."""
    from llmplay.compare import prepare_column

    lookups = []
    get = engine.catalog.get
    monkeypatch.setattr(engine.catalog, "get", lambda name: lookups.append(name) or get(name))
    columns = [prepare_column(engine, ColumnConfig(CHAT_MODEL, GenerationParams(max_new_tokens=2)), message="Hi.")]
    results = run_columns(engine, columns)
    assert results[0].ok, results[0].error
    assert lookups == [CHAT_MODEL]
