"""Evaluation speed as the scoreboard and the form show it (evaluation/rates.py, summary.py, runner chunks):
a batch's time is shared by its rows, latency and tokens/s are shown once per column when rows were timed
together, measured rates per model and mode give the estimate before a run, chunks keep progress moving, and
a column that answers one label everywhere says so."""

from __future__ import annotations

from dataclasses import replace

import pytest

from llmplay.evaluation import rates
from llmplay.evaluation.summary import column_usage, one_label_note


def test_rows_of_one_batch_share_its_time():
    # Two engine batches in one chunk (19.038 s for 16 rows, 4.0 s for 4), and a row timed alone.
    latencies = [19.038] * 16 + [4.0] * 4 + [0.7]
    shares = rates.row_latencies(latencies)
    assert shares[:16] == [pytest.approx(19.038 / 16)] * 16
    assert shares[16:20] == [pytest.approx(1.0)] * 4
    assert shares[20] == pytest.approx(0.7)
    assert sum(shares) == pytest.approx(19.038 + 4.0 + 0.7)  # the column's time is kept


def test_a_batch_repeated_on_every_row_is_shown_once_without_a_degenerate_interval():
    usage = column_usage([19.038 / 20] * 20, [2] * 20)
    assert usage["latency_s"]["score"] == pytest.approx(0.9519)
    assert usage["latency_s"]["low"] is None and usage["latency_s"]["high"] is None
    assert usage["tokens_per_s"]["score"] == pytest.approx(40 / 19.038)  # not 2 / 19.038 = 0.105 per row
    assert usage["tokens_per_s"]["low"] is None
    timed_apart = column_usage([0.5, 0.7, 0.9, 0.6], [0, 0, 0, 0])
    assert timed_apart["latency_s"]["low"] <= timed_apart["latency_s"]["score"] <= timed_apart["latency_s"]["high"]
    assert "tokens_per_s" not in timed_apart  # likelihood mode generates no tokens


def test_measured_rates_give_the_estimate(tmp_path):
    assert rates.seconds_per_cell(tmp_path, "m", "likelihood", "float32") is None
    rates.record(tmp_path, "m", "likelihood", "float32", 20.0, 2)  # 10 s a cell
    rates.record(tmp_path, "m", "generate", "float32", 6.0, 10)  # 0.6 s a cell
    assert rates.seconds_per_cell(tmp_path, "m", "likelihood", "float32") == pytest.approx(10.0)
    rates.record(tmp_path, "m", "likelihood", "float32", 8.0, 1)  # a moving average, not the last chunk
    assert 8.0 < rates.seconds_per_cell(tmp_path, "m", "likelihood", "float32") < 10.0
    seconds, unknown = rates.estimate(tmp_path, [("m", "generate", "float32"), ("other", "generate", None)], 40)
    assert seconds == pytest.approx(24.0) and unknown == ["other (generate)"]
    rates.record(tmp_path, "m", "generate", "float32", 0.0, 0)  # nothing measured: nothing stored
    assert rates.seconds_per_cell(tmp_path, "m", "generate", "float32") == pytest.approx(0.6)


def test_chunks_keep_progress_moving(engine):
    from llmplay.evaluation.runner import EvalRunner

    runner = EvalRunner(engine)
    assert runner._chunk(40, None) == 2  # nothing measured yet: a small first chunk
    assert runner._chunk(40, 0.5) == 8  # at most a fifth of the column: five updates at least
    assert runner._chunk(400, 0.5) == 8  # about 4 s of work
    assert runner._chunk(400, 10.0) == 1  # slow cells (likelihood on a busy machine): one at a time
    # a synchronous run (the CLI): about 16 s of work, up to the batch size, whatever the column's size
    assert (runner._chunk(40, None, watched=False), runner._chunk(40, 2.0, watched=False)) == (2, 8)
    assert runner._chunk(40, 0.1, watched=False) == engine.settings.max_batch_size
    assert EvalRunner(engine, chunk_size=3)._chunk(40, 0.5) == 3  # a fixed size when asked for


def test_one_label_on_every_row_is_named_with_what_to_try():
    labels = ("positive", "negative", "neutral")
    note = one_label_note(["positive"] * 20, labels, "generate")
    assert "'positive' on every row" in note and "likelihood" in note
    assert "another model" in one_label_note(["neutral"] * 5, labels, "likelihood")
    assert one_label_note(["positive"] * 19 + ["negative"], labels, "generate") is None
    assert one_label_note(["positive"] * 3, labels, "generate") is None  # too few rows to say
    assert one_label_note(["x"] * 10, (), "generate") is None  # free text: not a classification


def test_the_form_says_how_long_a_long_run_takes_before_it_starts(tmp_path):
    from llmplay.ui.tabs.evaluate.estimate import describe_estimate

    columns = [("smollm2", "likelihood", "float32")]
    assert "no speed measured yet" in describe_estimate(tmp_path, columns, 40)
    rates.record(tmp_path, "smollm2", "likelihood", "float32", 10.0, 1)
    text = describe_estimate(tmp_path, columns, 40)
    assert "about **6 min 40 s**" in text and "smollm2 (likelihood) ~10.0 s a cell" in text
    rates.record(tmp_path, "smollm2", "generate", "float32", 0.6, 1)
    assert describe_estimate(tmp_path, [("smollm2", "generate", "float32")], 40) == ""  # 24 s: no warning


def test_a_slow_stored_rate_does_not_shrink_a_runs_chunks_to_one_cell(isolated_engine, monkeypatch):
    """Chunks follow the run's own pace. A rate stored by other runs (long answers, a busy machine) once sized every
    chunk at one cell, and a lone cell shared no prompt prefix, so the run stayed at one slow cell at a time."""
    from llmplay.datasets import install_builtins
    from llmplay.engine import GenerationParams
    from llmplay.evaluation.config import ColumnConfig, RunConfig
    from llmplay.evaluation.runner import EvalRunner
    from llmplay.templates.library import TemplateLibrary
    from tests.conftest import CHAT_MODEL, ROOT

    settings = isolated_engine.settings
    install_builtins(settings)  # the app installs the sample datasets when it starts
    rates.record(settings.data_dir, CHAT_MODEL, "generate", settings.dtype, 100.0, 10)  # 10 s a cell, stored
    sizes, generate = [], isolated_engine.generate
    monkeypatch.setattr(
        isolated_engine,
        "generate",
        lambda m, prompts, *a, **k: sizes.append(len(prompts)) or generate(m, prompts, *a, **k),
    )
    runner = EvalRunner(isolated_engine, TemplateLibrary.from_settings(settings, folder=ROOT / "prompts"))
    column = ColumnConfig("financial-sentiment", CHAT_MODEL, params=GenerationParams(max_new_tokens=2), mode="generate")
    run_id = runner.submit(RunConfig(dataset="financial-sentiment", columns=(column,)))  # as the Evaluate tab does
    assert runner.wait(run_id, timeout=600).status == "done"
    assert sum(sizes) == 20 and sizes[0] == 2, sizes  # the first chunk measures this run's pace
    # then about 4 s of work at this run's pace (here: 4 once the prefix is kept), at most a fifth of the column
    assert max(sizes) <= 4, sizes

    # A run nobody watches (the CLI, CI: ``run``) batches more rows a chunk: up to ~16 s of work, no fifth cap.
    sizes.clear()
    again = replace(column, params=GenerationParams(max_new_tokens=3))  # other cells: nothing cached
    runner.run(RunConfig(dataset="financial-sentiment", columns=(again,)))
    assert sum(sizes) == 20 and sizes[0] == 2 and max(sizes) > 4, sizes
