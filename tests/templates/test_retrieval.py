"""Per-row retrieved examples (``retrieve: {k, pool}``): parsing and validation, the real MiniLM choosing the
nearest pool rows, and one rendered prompt whichever way a row is sent: the Templates preview, an evaluation run's
stored prompt (generate and likelihood columns), Compare, and the Playground given the same turns."""

from __future__ import annotations

import dataclasses
import json
import re

import pandas as pd
import pytest

from llmplay.datasets import ColumnMapping, save_dataset
from llmplay.engine import GenerationParams, GenerationRequest
from llmplay.evaluation.config import ColumnConfig as EvalColumn
from llmplay.evaluation.config import MetricConfig, RunConfig
from llmplay.evaluation.results import get_run, load_results
from llmplay.evaluation.runner import EvalRunner
from llmplay.models.embeddings import DEFAULT_ENCODER, get_embedder
from llmplay.store import connect
from llmplay.templates import retrieval
from llmplay.templates.library import TemplateLibrary
from llmplay.templates.model import Example, Retrieval, TemplateError, parse_template
from llmplay.templates.render import build_messages, render_for_model
from llmplay.templates.retrieval import select_examples
from tests.conftest import CHAT_MODEL
from tests.templates.conftest import write

LABELS = ("positive", "negative", "neutral")
POOL = [
    ("Quarterly profit rose 30 % on strong sales.", "positive"),
    ("Net profit doubled compared with last year.", "positive"),
    ("The company reported a heavy net loss.", "negative"),
    ("Losses widened as revenue fell sharply.", "negative"),
    ("Heavy rain and strong winds are expected tomorrow.", "neutral"),
    ("The football team won the championship final.", "neutral"),
]


def _yaml(k=2, pool=POOL, name="fin-retrieve", extra_pool_rows: str = "") -> str:
    rows = "".join(f"    - text: {text}\n      output: {label}\n" for text, label in pool) + extra_pool_rows
    return f"""name: {name}
task: classification
variables:
  - name: text
system: You label the sentiment of financial news.
body: |-
  Answer with one word: positive, negative or neutral.
  Sentence: {{{{ text }}}}
examples:
  - text: The shares will be listed on 2 May.
    output: neutral
retrieve:
  k: {k}
  pool:
{rows}output:
  labels: [positive, negative, neutral]
metrics: [accuracy]
"""


def _problems(text: str) -> list[str]:
    with pytest.raises(TemplateError) as err:
        parse_template(text, "t")
    return err.value.problems


# ---- the format ----------------------------------------------------------------------------------------------
def test_retrieve_is_parsed_and_written_back_exactly():
    template = parse_template(_yaml(k=3))
    assert template.retrieve.k == 3
    assert [(e.values["text"], e.output) for e in template.retrieve.pool] == POOL
    text = template.to_yaml()
    assert parse_template(text) == template and parse_template(text).to_yaml() == text
    assert "retrieve:\n  k: 3\n  pool:\n" in text
    # part of the content: a different k or pool is a different template (and version)
    assert parse_template(_yaml(k=2)) != template
    assert parse_template(_yaml(k=3, pool=POOL[:-1])) != template


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (_yaml(k=0), "retrieve.k must be a whole number from 1 to 16; got 0"),
        (_yaml(k=17), "retrieve.k must be a whole number from 1 to 16; got 17"),
        (_yaml(k="three"), "retrieve.k must be a whole number from 1 to 16; got 'three'"),
        (_yaml(k=4, pool=POOL[:3]), "retrieve.pool has 3 row(s); it needs at least k=4 to choose from"),
        (
            _yaml(extra_pool_rows="    - output: positive\n"),
            "retrieve.pool row #7 is missing required variable(s): text",
        ),
        (
            _yaml(extra_pool_rows="    - text: Fine.\n      tone: calm\n      output: neutral\n"),
            "retrieve.pool row #7 sets undeclared variable(s): tone",
        ),
        (
            _yaml(extra_pool_rows="    - text: No answer.\n"),
            "retrieve.pool row #7 must be a mapping of variable values",
        ),
        (_yaml().replace("  k: 2\n", "  k: 2\n  size: 3\n"), "retrieve: unknown field(s) size; known fields: k, pool"),
        (_yaml().replace("  k: 2\n", "  k: [2]\n"), "retrieve.k must be a whole number from 1 to 16; got [2]"),
    ],
    ids=[
        "k-0",
        "k-17",
        "k-text",
        "pool-smaller-than-k",
        "row-missing-variable",
        "row-undeclared",
        "row-no-output",
        "unknown-field",
        "k-list",
    ],
)
def test_invalid_retrieve_is_refused_with_a_clear_message(text, expected):
    problems = _problems(text)
    assert any(p.startswith(expected) for p in problems), problems


def test_every_problem_is_listed_at_once_and_a_big_bad_pool_is_summed_up():
    bad_rows = "".join(f"    - output: positive\n      tone: x{i}\n" for i in range(8))
    problems = _problems(_yaml(k=0, extra_pool_rows=bad_rows).replace("task: classification", "task: poetry"))
    assert any(p.startswith("unknown task 'poetry'") for p in problems)
    assert any(p.startswith("retrieve.k must be") for p in problems)
    assert "retrieve.pool: 3 more row(s) with such problems" in problems
    assert sum(p.startswith("retrieve.pool row #") for p in problems) == 10  # 5 rows, 2 problems each
    assert _problems(_yaml().replace("retrieve:\n  k: 2\n  pool:", "retrieve:\n  k: 2\n  nopool:"))


def test_a_retrieval_built_in_code_is_checked_before_rendering():
    """How a prompt search builds candidates: dataclasses.replace with a Retrieval of its own."""
    template = parse_template(_yaml())
    pool = tuple(Example({"text": t}, label) for t, label in POOL[:2])
    with pytest.raises(TemplateError, match="needs at least k=3"):
        build_messages(dataclasses.replace(template, retrieve=Retrieval(3, pool)), {"text": "Profit rose."})
    made = dataclasses.replace(template, retrieve=Retrieval(2, pool))
    assert parse_template(made.to_yaml()) == made


# ---- choosing with the real MiniLM ---------------------------------------------------------------------------
def _cosines(query: str, texts: list[str]) -> list[float]:
    """The test's own similarity: MiniLM vectors dotted by hand, each text embedded on its own."""
    embedder = get_embedder(DEFAULT_ENCODER)
    q = embedder.encode([query])[0]
    return [float(embedder.encode([t])[0] @ q) for t in texts]


def _texts(examples) -> list[str]:
    return [e.values["text"] for e in examples]


def test_the_nearest_pool_rows_are_chosen_most_similar_last_never_the_row_itself():
    template = parse_template(_yaml(k=2))
    profit = "Operating profit increased sharply this year."
    chosen = _texts(select_examples(template, {"text": profit}))
    assert set(chosen) == {POOL[0][0], POOL[1][0]}
    scores = dict(zip(chosen, _cosines(profit, chosen), strict=True))
    assert scores[chosen[-1]] >= scores[chosen[0]]  # the most similar is the last, next to the question

    k1 = dataclasses.replace(template, retrieve=dataclasses.replace(template.retrieve, k=1))
    assert _texts(select_examples(k1, {"text": "It will be windy with showers this weekend."})) == [POOL[4][0]]
    assert _texts(select_examples(k1, {"text": "Who scored the winning goal in the cup final?"})) == [POOL[5][0]]
    # a pool row evaluated never sees its own answer: the next nearest (the other loss) instead
    assert _texts(select_examples(k1, {"text": POOL[2][0]})) == [POOL[3][0]]
    assert POOL[2][0] not in _texts(select_examples(template, {"text": POOL[2][0]}))

    # a pool of exactly k rows: a pool row gets the k - 1 others
    k6 = dataclasses.replace(template, retrieve=dataclasses.replace(template.retrieve, k=len(POOL)))
    assert len(select_examples(k6, {"text": POOL[0][0]})) == len(POOL) - 1

    # the fixed examples come first, the retrieved ones after, then the question
    users = [m["content"] for m in build_messages(template, {"text": profit}) if m["role"] == "user"]
    sentences = [re.search(r"Sentence: (.*)", u).group(1) for u in users]
    assert sentences == ["The shares will be listed on 2 May.", *chosen, profit]


def test_the_order_matches_an_independent_ranking_and_the_pool_is_embedded_once(monkeypatch):
    template = parse_template(_yaml(k=4))
    query = "Revenue fell and the company lost money."
    texts = [t for t, _ in POOL]
    scores = _cosines(query, texts)
    expected = sorted(range(len(texts)), key=lambda i: -scores[i])[:4][::-1]
    assert _texts(select_examples(template, {"text": query})) == [texts[i] for i in expected]

    retrieval.clear_cache()
    embedder = get_embedder(DEFAULT_ENCODER)
    calls = []
    real = embedder.encode
    monkeypatch.setattr(embedder, "encode", lambda batch, **kw: calls.append(len(batch)) or real(batch, **kw))
    again = dataclasses.replace(template)  # another object with the same content (how a version is reloaded)
    for text in ("Profit rose.", "Sales dropped.", "It rained."):
        select_examples(again, {"text": text})
        select_examples(template, {"text": text})
    assert calls.count(len(POOL)) == 1 and calls.count(1) == 6


# ---- one prompt, whichever way it is sent ------------------------------------------------------------------
ROWS = [
    {"text": "Operating profit increased sharply this year.", "label": "positive"},
    {"text": POOL[2][0], "label": "negative"},  # a pool row: it must not be its own example
    {"text": "Heavy snow is expected in Helsinki tomorrow.", "label": "neutral"},
]


def test_retrieved_examples_render_identically_in_preview_evaluation_compare_and_the_playground(
    isolated_engine, tmp_path
):
    from llmplay.compare.columns import ColumnConfig as CompareColumn
    from llmplay.compare.columns import prepare_column
    from llmplay.engine.prompt_text import render_prompt
    from llmplay.ui.tabs.playground import build_prompt

    engine = isolated_engine
    folder = tmp_path / "prompts"
    write(folder / "fin-retrieve.yaml", _yaml(k=2))
    library = TemplateLibrary(folder, engine.settings.db_path)
    template = library.load("fin-retrieve")
    spec = engine.catalog.get(CHAT_MODEL)
    loaded = engine.models.get(spec)

    # (a) the Templates preview (render_for_model: also what "Run once" sends)
    previews = [render_for_model(engine, template, CHAT_MODEL, {"text": r["text"]}) for r in ROWS]
    for row, preview in zip(ROWS, previews, strict=True):
        assert preview.text.count(row["text"]) == 1  # the question only, never among its examples
        assert len(preview.messages) == 1 + 2 * (1 + 2) + 1  # system, fixed + 2 retrieved pairs, question
    assert len({p.text.split("Sentence: ")[2] for p in previews}) > 1  # rows got different examples

    # (b) an evaluation run: the prompt stored for each row, generate and likelihood columns
    df = pd.DataFrame(ROWS, columns=["text", "label"], dtype=object)
    save_dataset(engine.settings, "retr-rows", df, ColumnMapping({"text": "text"}, "label"), source="test")
    runner = EvalRunner(engine, library, chunk_size=3)
    one_token = GenerationParams(max_new_tokens=1)
    columns = (
        EvalColumn("fin-retrieve", CHAT_MODEL, params=one_token),
        EvalColumn("fin-retrieve", CHAT_MODEL, params=one_token, mode="likelihood"),
    )
    run_id = runner.run(RunConfig(dataset="retr-rows", columns=columns, metrics=(MetricConfig("accuracy"),)))
    info = get_run(engine.settings, run_id)
    assert info.status == "done" and info.failed_cells == 0, info
    with connect(engine.settings.db_path) as db:
        stored = {
            (r["row_index"], r["column_index"]): r["prompt"]
            for r in db.query(
                "select c.row_index, c.column_index, o.prompt from eval_cells c join eval_outputs o "
                "on o.id = c.output_id where c.run_id = ?",
                [run_id],
            )
        }
    for i, preview in enumerate(previews):
        assert stored[(i, 0)] == preview.text
        assert stored[(i, 1)] == preview.text
    # rows with different examples, scored in one batch (a shorter shared prefix), choose as a row alone does
    results = load_results(engine.settings, run_id)
    assert results.cells[(2, 1)].answer == engine.choose(CHAT_MODEL, previews[2].request, LABELS)[0]

    # (c) Compare: a column with the template
    for row, preview in zip(ROWS, previews, strict=True):
        column = prepare_column(
            engine, CompareColumn(model=CHAT_MODEL), template=template, values={"text": row["text"]}
        )
        assert column.error is None and render_prompt(loaded, column.request) == preview.text

    # (d) the Playground (free chat): the rendered turns as its system message, history and message
    for preview in previews:
        system, *turns, question = preview.messages
        prompt = build_prompt(spec.kind, question["content"], turns, system["content"])
        assert prompt == preview.messages
        assert render_prompt(loaded, GenerationRequest.of(prompt, GenerationParams())) == preview.text

    # the messages an evaluation keeps for a row (the feedback it sends) are the preview's too
    assert json.dumps(build_messages(template, {"text": ROWS[1]["text"]})) == json.dumps(previews[1].messages)
