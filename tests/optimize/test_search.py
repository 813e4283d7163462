"""The prompt search on the real bundled model and real Financial PhraseBank rows, stored in a real SQLite file.

One small search runs once for the module (pool 6 / dev 10 / test 30, four candidates, four new tokens) and the
tests read what it did; the CLI test reruns it from YAML, every cell from the cache. It starts from the library's
financial-sentiment template without its six examples: with them a generate call costs about 4 s on 2 busy cores
(the prompt pass over ~700 tokens), and the start template is the one candidate scored in generate mode. The
others answer by likelihood with 0, 1 or 3 examples from the pool. Ten dev rows make one rung: halving itself is
tested with scripted scores (test_halving.py); here every second counts (each model call is 1-3 s on 2 busy cores).
"""

from __future__ import annotations

import json
import random
from dataclasses import replace

import pandas as pd
import pytest
import yaml

from llmplay.cli import main
from llmplay.datasets import ColumnMapping, save_dataset
from llmplay.engine import Engine, GenerationParams
from llmplay.errors import InvalidRequestError
from llmplay.evaluation.config import ColumnConfig, MetricConfig, RunConfig
from llmplay.evaluation.results import get_run
from llmplay.evaluation.runner import EvalRunner
from llmplay.optimize.config import OptimizeConfig
from llmplay.optimize.lineage import save_winner
from llmplay.optimize.search import Standing, run_search
from llmplay.settings import Settings
from llmplay.store import connect
from llmplay.templates.library import TemplateLibrary
from tests.conftest import CHAT_MODEL, ROOT, SHARED_DATASETS

FPB = SHARED_DATASETS / "financial_phrasebank" / "sentences_allagree.jsonl"
CONFIG = {
    "template": "fpb-zero-shot@v1",
    "dataset": "fpb",
    "model": CHAT_MODEL,
    "seed": 0,
    "splits": {"pool": 6, "dev": 10, "test": 30},
    "budget": {"calls": 400, "minutes": 10},
    "params": {"max_new_tokens": 4},
    "search": {
        "max_examples": 3,
        "example_sets": 1,
        "retrieved": False,
        "instruction_edits": False,
        "answer_modes": ["likelihood"],
        "eta": 2,
    },
}


@pytest.fixture(scope="module")
def searched(tmp_path_factory, model_cache_dir, engine):
    if not FPB.exists():  # a clone without ../shared
        pytest.skip(f"{FPB} is missing (the shared datasets are not next to this clone)")
    lines = [json.loads(line) for line in FPB.read_text(encoding="utf-8").splitlines() if line.strip()]
    rows = random.Random(0).sample(lines, 100)
    data = tmp_path_factory.mktemp("optimize") / "data"
    settings = Settings(data_dir=data, cache_dir=model_cache_dir, prompts_dir=ROOT / "prompts")
    eng = Engine(settings, shared_models=engine.models)
    frame = pd.DataFrame(rows, columns=["text", "label"], dtype=object)
    save_dataset(settings, "fpb", frame, ColumnMapping({"text": "text"}, "label"))
    library = TemplateLibrary.from_settings(settings)
    start = replace(library.load("financial-sentiment"), name="fpb-zero-shot", examples=())
    library.save(start, message="financial-sentiment without its examples (fast enough for a test)")
    events = []
    result = run_search(eng, OptimizeConfig.from_dict(CONFIG), library, on_event=events.append)
    yield settings, eng, library, result, events, rows
    eng.close()


def test_search_keeps_the_best_dev_candidate_and_reports_a_paired_test_interval(searched):
    _, _, _, result, events, _ = searched
    assert result.stopped == "done" and result.rungs == [10] and len(result.standings) == 4
    final = [s for s in result.standings if s.rows == 10]
    assert len(final) == 4 and result.winner in final
    best = max(s.score.estimate for s in final)
    assert result.winner.score.estimate == best
    tied = [s for s in final if s.score.estimate == best]
    assert result.winner == min(tied, key=Standing.rank)  # shorter prompt first among equals
    assert 0 < result.calls <= 400
    t = result.test
    assert t is not None and t.gain.n == t.start.n == t.winner.n == 30
    assert t.gain.low <= t.gain.estimate <= t.gain.high
    assert t.gain.estimate == pytest.approx(t.winner.estimate - t.start.estimate)
    scored = [e for e in events if e.kind == "scored"]
    assert len(scored) == 4 and scored[0].candidate == 0 and {e.rows for e in scored} == {10}


def test_the_test_rows_are_never_scored_during_the_search(searched):
    settings, _, _, result, _, rows = searched
    test_rows = set(result.prepared.splits.test)
    phases = [e.phase for e in result.evaluations]
    assert phases[0] == "pool" and phases.count("test") == 1 and phases[-1] == "test"
    search = result.evaluations[:-1]
    assert all(not (set(e.rows) & test_rows) for e in search)
    # From the run records themselves: no run before the test run stored a test row.
    test_texts = {rows[i]["text"] for i in test_rows}
    test_run = result.evaluations[-1].run_id
    with connect(settings.db_path) as db:
        stored = {}
        for r in db.query("select run_id, data from eval_rows"):
            stored.setdefault(r["run_id"], set()).add(json.loads(r["data"])["text"])
    assert {e.run_id for e in search} <= set(stored)
    assert all(not (texts & test_texts) for run_id, texts in stored.items() if run_id < test_run)
    assert stored[test_run] == test_texts


def test_a_saved_winner_is_a_new_version_naming_its_lineage_and_reproducing_its_dev_score(searched):
    settings, eng, library, result, _, _ = searched
    assert result.winner.candidate.id != 0, "the search should beat the library template on SmolLM2"
    before = library.current_version("fpb-zero-shot")
    saved = save_winner(library, result)
    assert saved.created and saved.version.number == before.number + 1
    message, test = saved.version.message, result.test
    assert "optimized from fpb-zero-shot v1" in message and result.winner.candidate.changed in message
    assert f"Dev accuracy {result.winner.score.estimate:.3f}" in message
    assert f"Test accuracy {test.winner.estimate:.3f} vs start {test.start.estimate:.3f} on 30" in message
    assert f"gain {test.gain.estimate:+.3f}" in message
    # Evaluated like any version, the saved one gives its dev score again, every cell from the cache.
    dev = next(e.dataset for e in result.evaluations if e.phase == "dev")
    column = ColumnConfig("fpb-zero-shot", CHAT_MODEL, params=GenerationParams(max_new_tokens=4))
    run_id = EvalRunner(eng, library).run(
        RunConfig(dataset=dev, columns=(column,), metrics=(MetricConfig("accuracy"),))
    )
    info = get_run(settings, run_id)
    assert (info.generated_cells, info.cached_cells) == (0, 10)
    assert info.summary["columns"][0]["metrics"]["accuracy"]["score"] == pytest.approx(result.winner.score.estimate)


def test_the_cli_runs_the_search_from_yaml_and_saves_the_winner(searched, tmp_path, monkeypatch, capsys):
    settings, _, _, result, _, _ = searched
    monkeypatch.setenv("LLMPLAY_CACHE_DIR", str(settings.cache_dir))
    path = tmp_path / "search.yaml"
    path.write_text(yaml.safe_dump(CONFIG), encoding="utf-8")
    argv = ["--data-dir", str(settings.data_dir), "optimize", str(path), "--save", "--quiet"]
    code = main([*argv, "--prompts-dir", str(ROOT / "prompts")])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "what changed" in out and "4 candidates, 0 model calls" in out  # the module's search cached every cell
    assert "test (30 held-out rows, run #" in out and f"gain {result.test.gain.estimate:+.3f}" in out
    assert "saved fpb-zero-shot v" in out


@pytest.mark.parametrize(
    "frame, mapping, config, says",
    [
        (100, ColumnMapping({"text": "text"}, None), {}, "no reference column"),
        (50, ColumnMapping({"text": "text"}, "label"), {"splits": {"pool": 10, "dev": 20}}, "at least 30"),
        (100, ColumnMapping({"text": "text"}, "label"), {"model": "no-such-model"}, "no-such-model"),
        (100, ColumnMapping({"text": "text"}, "label"), {"template": "no-such-template"}, "no-such-template"),
    ],
)
def test_bad_input_is_refused_before_anything_runs(isolated_engine, frame, mapping, config, says):
    settings = isolated_engine.settings
    rows = [
        {"text": f"Sentence number {i}.", "label": ("positive", "negative", "neutral")[i % 3]} for i in range(frame)
    ]
    save_dataset(settings, "rows", pd.DataFrame(rows, dtype=object), mapping)
    library = TemplateLibrary.from_settings(settings, ROOT / "prompts")
    data = {**CONFIG, "template": "financial-sentiment", "dataset": "rows", **config}
    with pytest.raises(InvalidRequestError, match=says):
        run_search(isolated_engine, OptimizeConfig.from_dict(data), library)
    with connect(settings.db_path) as db:
        assert "eval_runs" not in db.table_names() or db["eval_runs"].count == 0
        assert [d["name"] for d in db["datasets"].rows] == ["rows"]  # no split was saved either
