"""The search space's model-made parts in a real search (bundled SmolLM2, real SQLite): instructions from a proposer
(a real local OpenAI-compatible server, tests/servers.py, scripted to answer one good instruction and one
garbage reply) and per-row retrieved examples (real MiniLM). What must hold: the proposer reads pool rows only,
garbage is left out with a note while the search goes on, and a retrieved candidate's prompts show pool rows
only, never a dev or test row's answer."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd
import pytest

from llmplay.datasets import ColumnMapping, save_dataset
from llmplay.models.catalog import ModelSpec
from llmplay.optimize.config import OptimizeConfig
from llmplay.optimize.proposer import END, START
from llmplay.optimize.search import run_search
from llmplay.store import connect
from llmplay.templates.library import TemplateLibrary
from tests.conftest import CHAT_MODEL, ROOT
from tests.optimize.rows import sentiment_rows

GOOD = "Say how this news affects the company: positive if it improves, negative if it hurts, neutral otherwise."
CONFIG = {
    "template": "sentiment-zero-shot@v1",
    "dataset": "invented",
    "model": CHAT_MODEL,
    "splits": {"pool": 12, "dev": 10, "test": 30},
    "budget": {"minutes": 10},
    "params": {"max_new_tokens": 3},
    "search": {
        "few_shot": False,
        "instruction_edits": False,
        "retrieved": True,
        "max_examples": 2,
        "answer_modes": ["likelihood"],
        "proposer": "proposer-ep",
        "proposals": 2,
        "eta": 2,
    },
}


def _chat(text: str) -> tuple[int, dict, dict]:
    choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
    return 200, {"choices": [choice], "usage": {"prompt_tokens": 50, "completion_tokens": 20}}, {}


@pytest.fixture(scope="module")
def searched(tmp_path_factory, model_cache_dir, engine):
    from llmplay.engine import Engine
    from llmplay.settings import Settings
    from tests.servers import Scripted

    server = Scripted([_chat(f"{START}\n{GOOD}\n{END}"), _chat(f"{START}Answer {{{{ text }}}} now.{END}")])
    settings = Settings(data_dir=tmp_path_factory.mktemp("parts") / "data", cache_dir=model_cache_dir)
    eng = Engine(settings, shared_models=engine.models)
    eng.catalog.add(ModelSpec("proposer-ep", "chat", "endpoint", server.url, api_model="scripted"), persist=False)
    rows = sentiment_rows(60)
    save_dataset(settings, "invented", pd.DataFrame(rows, dtype=object), ColumnMapping({"text": "text"}, "label"))
    library = TemplateLibrary.from_settings(settings, ROOT / "prompts")
    start = replace(library.load("financial-sentiment"), name="sentiment-zero-shot", examples=())
    library.save(start, message="financial-sentiment without its examples")
    result = run_search(eng, OptimizeConfig.from_dict(CONFIG), library)
    yield settings, result, rows, server
    server.close()
    eng.close()


def test_the_proposer_reads_pool_rows_only_and_its_garbage_is_left_out_with_a_note(searched):
    _, result, rows, server = searched
    assert result.stopped == "done" and result.test is not None
    splits = result.prepared.splits
    asked = [body for _, path, _, body in server.seen if path.endswith("/chat/completions")]
    assert len(asked) == 2
    meta = asked[0]["messages"][-1]["content"]
    assert "Is this news positive, negative or neutral" in meta  # the current instruction
    shown = {rows[i]["text"] for i in range(len(rows)) if rows[i]["text"] in meta}
    assert shown and shown <= {rows[i]["text"] for i in splits.pool}  # wrong pool rows; never dev or test
    changed = [s.candidate.changed for s in result.standings]
    assert "proposed instruction 1 (by proposer-ep); answer by likelihood over the labels" in changed
    assert not any("proposed instruction 2" in c for c in changed)
    assert any("1 of 2 proposals left out" in n and "Jinja" in n for n in result.notes)
    proposed = next(s for s in result.standings if s.candidate.changed.startswith("proposed instruction 1"))
    assert GOOD in proposed.candidate.template.body and proposed.score is not None
    assert result.calls >= 2  # the proposer's calls count


def test_retrieved_candidates_show_each_dev_row_its_nearest_pool_rows_and_never_a_scored_row(searched):
    settings, result, rows, _ = searched
    splits = result.prepared.splits
    retrieved = [s for s in result.standings if s.candidate.template.retrieve is not None]
    assert {s.candidate.template.retrieve.k for s in retrieved} == {1, 2}
    assert all(s.candidate.template.examples == () and s.score is not None for s in retrieved)
    assert all(len(s.candidate.template.retrieve.pool) == 12 for s in retrieved)
    pool_texts = {rows[i]["text"] for i in splits.pool}
    scored_texts = {rows[i]["text"] for i in (*splits.dev, *splits.test)}
    k2 = next(s for s in retrieved if s.candidate.template.retrieve.k == 2)
    run = next(e for e in result.evaluations if e.phase == "dev" and k2.candidate.id in e.candidates)
    with connect(settings.db_path) as db:
        prompts = [
            r["prompt"]
            for r in db.query(
                "select o.prompt from eval_cells c join eval_outputs o on o.id = c.output_id where c.run_id = ?",
                [run.run_id],
            )
        ]
    assert len(prompts) == len(run.rows) == 10
    for prompt in prompts:
        assert sum(text in prompt for text in pool_texts) == 2  # k pool rows as examples
        assert sum(text in prompt for text in scored_texts) == 1  # the row itself, no other scored row
