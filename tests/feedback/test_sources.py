"""Where feedback comes from: Compare, the Playground's thumbs, evaluation runs (a real small run on SmolLM2),
and training reading the accepted corrections and recording what it consumed (the real training entry)."""

from __future__ import annotations

import uuid

import pandas as pd
import pytest

from llmplay.compare import Column, ColumnConfig, Comparison, correction_from_comparison, preference_from_comparison
from llmplay.compare.results import save_comparison
from llmplay.engine import GenerationParams, GenerationRequest, GenerationResult, StreamEvent
from llmplay.errors import InvalidRequestError
from llmplay.feedback.accepted import accepted_items
from llmplay.feedback.provenance import Sender
from llmplay.feedback.sources import (
    create_eval_queue,
    queue_eval_rows,
    rate_reply,
    send_correction,
)
from llmplay.feedback.store import (
    FeedbackError,
    consumed_by,
    get_queue,
    list_items,
    list_queues,
    list_responses,
    respond,
)
from llmplay.store import connect
from tests.conftest import CHAT_MODEL

GREEDY = GenerationParams(max_new_tokens=8)
ASKED = [{"role": "user", "content": "Say hello."}]


def finished_comparison() -> dict:
    """Two finished columns that answered the same messages (Compare's streaming is tested elsewhere)."""
    columns = [
        Column(ColumnConfig("chat-a", GREEDY, adapter="/loras/a", template_version_id=3), GenerationRequest.of(ASKED)),
        Column(ColumnConfig("chat-b", GREEDY), GenerationRequest.of(ASKED)),
    ]
    comparison = Comparison(columns, inputs={"message": "Say hello."})
    for index, model in enumerate(("chat-a", "chat-b")):
        text = {"chat-a": "Hello there!", "chat-b": "Bye."}[model]
        comparison.apply(index, StreamEvent(delta=text))
        comparison.apply(index, StreamEvent(done=True, result=GenerationResult(text=text, model=model)))
    return comparison.snapshot()


# ---- Compare and the Playground ---------------------------------------------------------------------------


ANA, BO = Sender("ana", "labeler"), Sender("bo", "admin")


def test_a_compare_preference_is_an_item_in_preferences_with_the_senders_a(db):
    comparison = save_comparison(db, finished_comparison(), "ana")
    sent = preference_from_comparison(db, comparison, 1, 2, ANA)

    (item,) = list_items(db, "preferences")
    assert get_queue(db, "preferences").task == "preference" and get_queue(db, "preferences").k == 1
    assert item.id == sent.item.id and item.source == "compare" and item.prompt == ASKED
    assert (item.output, item.output_b) == ("Hello there!", "Bye."), "output is the chosen reply"
    assert (item.model, item.adapter, item.model_b, item.adapter_b) == ("chat-a", "/loras/a", "chat-b", None)
    assert item.template_version_id == 3
    (response,) = list_responses(db, item_id=item.id)
    assert (response.labeler, response.value, response.status) == ("ana", "a", "submitted")
    (accepted,) = accepted_items(db, "preferences")
    assert accepted.value == "a" and accepted.how == "single"

    again = preference_from_comparison(db, comparison, 1, 2, ANA)  # a double click
    assert again.item.id == item.id and not again.created and len(list_responses(db, item_id=item.id)) == 1


def test_a_second_persons_correction_of_the_same_reply_is_its_own_item(db):
    comparison = save_comparison(db, finished_comparison(), "ana")
    first = correction_from_comparison(db, comparison, 2, "Hello!", ANA)
    mine_again = correction_from_comparison(db, comparison, 2, "Hello, friend!", ANA)  # an edit
    other = correction_from_comparison(db, comparison, 2, "Hi!", BO)  # an admin reviewing it

    assert mine_again.item.id == first.item.id and mine_again.response.value == "Hello, friend!"
    assert other.item.id != first.item.id and other.item.source == "compare:bo"
    assert sorted(a.value for a in accepted_items(db, "inbox")) == ["Hello, friend!", "Hi!"]


def test_a_thumbs_down_is_rating_0_and_a_reply_in_the_inbox_without_a_response(db):
    prompt = [{"role": "user", "content": "Capital of France?"}]
    sent = rate_reply(db, prompt, "Lyon.", False, source="playground", user="ann", model=CHAT_MODEL)

    ratings = get_queue(db, "playground-ratings")
    assert (ratings.task, ratings.rating_min, ratings.rating_max, ratings.k) == ("rating", 0, 1, 1)
    (rated,) = list_items(db, ratings)
    assert rated.id == sent.item.id and (rated.prompt, rated.output, rated.model) == (prompt, "Lyon.", CHAT_MODEL)
    assert [(r.labeler, r.value, r.status) for r in list_responses(db, item_id=rated.id)] == [("ann", 0, "submitted")]
    (flagged,) = list_items(db, "inbox")
    assert (flagged.prompt, flagged.output) == (prompt, "Lyon.")
    assert list_responses(db, item_id=flagged.id, status=None) == [], "waits for a labeler's correction"
    assert accepted_items(db, "inbox") == []

    respond(db, flagged.id, "labeler", "Paris.")  # a labeler corrects it
    assert [a.value for a in accepted_items(db, "inbox")] == ["Paris."]
    rate_reply(db, prompt, "Lyon.", "", source="playground", user="ann")  # the thumb clicked again
    assert [r.status for r in list_responses(db, item_id=rated.id, status=None)] == ["discarded"]
    assert list_items(db, "inbox")[0].status == "open", "someone answered it: taking the 👎 back keeps it"


def test_a_thumbs_up_is_rating_1_and_taking_a_thumbs_down_back_unflags_the_reply(db):
    rate_reply(db, "Two plus two is", "five", False, source="playground", user="ann")
    (flagged,) = list_items(db, "inbox")
    rate_reply(db, "Two plus two is", "five", None, source="playground", user="ann")
    assert list_items(db, "inbox") == [] and list_items(db, "inbox", status="discarded")[0].id == flagged.id
    sent = rate_reply(db, "Two plus two is", "four", True, source="playground", user="ann")
    assert sent.response.value == 1 and list_items(db, "inbox") == [], "a 👍 flags nothing"


@pytest.mark.parametrize(
    "send, message",
    [
        (lambda db: send_correction(db, "Q?", "A.", "   ", source="playground"), "empty"),
        (lambda db: send_correction(db, "Q?", "A.", "x" * 20_001, source="playground"), "limit is 20,000"),
        (lambda db: send_correction(db, "", "A.", "B.", source="playground"), "prompt"),
        (lambda db: rate_reply(db, "Q?", "A.", "maybe", source="playground"), "liked"),
        (
            lambda db: preference_from_comparison(db, save_comparison(db, finished_comparison(), "bo"), 1, 1, BO),
            "two different columns",
        ),
    ],
    ids=["empty-correction", "too-long", "no-prompt", "bad-thumb", "same-column"],
)
def test_bad_feedback_is_refused_clearly_and_stores_no_item(db, send, message):
    with pytest.raises(InvalidRequestError, match=message):
        send(db)
    assert all(list_items(db, q, status=None) == [] for q in list_queues(db))


# ---- evaluation runs --------------------------------------------------------------------------------------

TEMPLATE = """\
name: sources-sentiment
description: A short sentiment prompt for the feedback source tests.
task: classification
variables:
  - name: text
body: |-
  Sentence: {{ text }}
  Is this news positive, negative or neutral? Answer with one word.
output:
  labels: [positive, negative, neutral]
"""
ROWS = [
    ("Harbourline Shipping doubled its quarterly profit.", "positive"),
    ("Quillon Chemicals will lay off 600 workers and close two plants.", "negative"),
    ("Profits at Norvik Bank rose 40% to a record.", "negative"),  # labelled wrong on purpose: a wrong row
    ("The meeting will take place in Oslo on 3 April.", "neutral"),
]


@pytest.fixture(scope="module")
def eval_run(engine, tmp_path_factory) -> int:
    """A real four-row run of SmolLM2 (greedy, 4 new tokens) on a small sentiment template, scored by accuracy."""
    from llmplay.datasets import ColumnMapping, save_dataset
    from llmplay.evaluation.config import ColumnConfig as EvalColumn
    from llmplay.evaluation.config import MetricConfig, RunConfig
    from llmplay.evaluation.runner import EvalRunner
    from llmplay.templates import TemplateLibrary

    library = TemplateLibrary(tmp_path_factory.mktemp("sources") / "prompts", engine.settings.db_path)
    library.folder.mkdir(parents=True, exist_ok=True)
    library.save(TEMPLATE, message="sources test")
    df = pd.DataFrame(ROWS, columns=["sentence", "label"], dtype=object)
    save_dataset(engine.settings, "sources-rows", df, ColumnMapping({"text": "sentence"}, "label"), source="test")
    column = EvalColumn("sources-sentiment", CHAT_MODEL, params=GenerationParams(max_new_tokens=4))
    config = RunConfig(dataset="sources-rows", columns=(column,), metrics=(MetricConfig("accuracy"),))
    return EvalRunner(engine, library).run(config)


def stored_cells(engine, run_id: int) -> list[dict]:
    with connect(engine.settings.db_path) as db:
        return list(
            db.query(
                "select c.row_index, c.answer, o.prompt, o.text, r.data from eval_cells c "
                "join eval_outputs o on o.id = c.output_id join eval_rows r on r.run_id = c.run_id "
                "and r.row_index = c.row_index where c.run_id = ? order by c.row_index",
                [run_id],
            )
        )


def test_wrong_rows_of_a_run_are_queued_exactly_once(engine, eval_run):
    import json

    cells = stored_cells(engine, eval_run)
    # The test's own idea of a wrong row: the parsed answer is not the row's label.
    wrong = [c["row_index"] for c in cells if c["answer"] != json.loads(c["data"])["label"]]
    assert 2 in wrong and len(wrong) < len(ROWS), f"expected row 2 (mislabelled) wrong and some right: {cells}"
    name = f"review-{uuid.uuid4().hex[:8]}"
    with connect(engine.settings.db_path) as db:
        queue = create_eval_queue(db, eval_run, name, "correction", show_reference=True, user="lead")
        queued = queue_eval_rows(db, eval_run, name, column=0, which="wrong", user="lead")
        items = list_items(db, queue)
        again = queue_eval_rows(db, eval_run, name, column=0, which="wrong", user="lead")
        assert len(list_items(db, queue)) == len(wrong), "a second call adds nothing"

    assert queued.added == len(wrong) and queued.existing == 0 and list(queued.rows) == wrong
    assert queued.message == f"Queued {len(wrong)} row{'s' if len(wrong) > 1 else ''} in '{name}'."
    assert again.added == 0 and again.existing == len(wrong) and "already there" in again.message
    assert queue.show_reference and queue.template == "sources-sentiment"
    by_row = {c["row_index"]: c for c in cells}
    for item in items:
        row = item.meta["row"]
        assert item.source == f"eval-run:{eval_run}" and item.meta["run_id"] == eval_run and item.meta["column"] == 0
        assert item.prompt == by_row[row]["prompt"], "the exact prompt stored with the run's output"
        assert item.output == by_row[row]["text"] and item.reference == ROWS[row][1]
        assert item.input == {"text": ROWS[row][0]} and item.model == CHAT_MODEL
        assert item.meta["scores"]["accuracy"] < 1 and item.template == "sources-sentiment"
        assert item.template_version_id is not None
        assert ROWS[row][0] in item.meta["messages"][-1]["content"], "the template's turns, for training"


def test_a_label_queue_for_a_run_takes_the_templates_labels_and_chosen_rows(engine, eval_run):
    name = f"labels-{uuid.uuid4().hex[:8]}"
    with connect(engine.settings.db_path) as db:
        queue = create_eval_queue(db, eval_run, name, "label")
        assert queue.labels == ["positive", "negative", "neutral"] and not queue.show_reference
        queued = queue_eval_rows(db, eval_run, name, which=[3, 0, 3])
        assert [i.meta["row"] for i in list_items(db, name)] == [3, 0] and queued.added == 2
        for which, message in [
            ([9], "no row 9"),
            ("best", "Which rows"),
        ]:
            with pytest.raises(FeedbackError, match=message):
                queue_eval_rows(db, eval_run, name, which=which)
        with pytest.raises(FeedbackError, match="correction, label, rating task, not .preference"):
            create_eval_queue(db, eval_run, f"{name}-pairs", "preference")
        with pytest.raises(FeedbackError, match="no column 5"):
            queue_eval_rows(db, eval_run, name, column=5)
        with pytest.raises(FeedbackError, match="no evaluation run #999999"):
            queue_eval_rows(db, 999999, name)
        with pytest.raises(FeedbackError, match="no feedback queue"):
            queue_eval_rows(db, eval_run, "no-such-queue")
        assert len(list_items(db, name)) == 2, "refused calls add nothing"


def test_sft_export_of_evaluation_rows_holds_the_templates_turns_and_trains_on_them(engine, eval_run):
    """An evaluation row's stored prompt is SmolLM2's chat-templated text; its SFT export and the training rows
    read from that export are the template's own turns, with no chat-template token left in them."""
    import json

    from llmplay.feedback.exports import export_rows, to_text
    from llmplay.templates import build_messages, parse_template
    from llmplay.training.config import DataConfig
    from llmplay.training.data import formatted_text
    from llmplay.training.data_sources import record_ids, rows_from_records

    name = f"sft-{uuid.uuid4().hex[:8]}"
    with connect(engine.settings.db_path) as db:
        create_eval_queue(db, eval_run, name, "correction", user="lead")
        queue_eval_rows(db, eval_run, name, column=0, which="all", user="lead")
        items = list_items(db, name)
        for item in items:
            respond(db, item.id, "ann", ROWS[item.meta["row"]][1])
        export = export_rows(db, name, "sft")
    assert len(items) == len(ROWS) and all("<|im_start|>" in i.prompt for i in items), "the run stored chat text"

    template = parse_template(TEMPLATE)
    assert export.item_ids == [i.id for i in items] and not export.skipped
    for item, row in zip(items, export.rows):
        sentence, label = ROWS[item.meta["row"]]
        assert row["messages"] == [
            *build_messages(template, {"text": sentence}),
            {"role": "assistant", "content": label},
        ]
    text = to_text(export)
    assert "<|im_start|>" not in text and "<|im_end|>" not in text

    records = [json.loads(line) for line in text.splitlines()]
    rows, fmt = rows_from_records(records, record_ids(records), "sft", DataConfig(source="file"))
    assert fmt == "messages"
    loaded = engine.models.get(engine.catalog.get(CHAT_MODEL))
    for train_row, (sentence, label) in zip(rows, [ROWS[i.meta["row"]] for i in items]):
        assert train_row.messages == build_messages(template, {"text": sentence}) and train_row.target == label
        prompt_text, completion = formatted_text(loaded, train_row)
        assert prompt_text.count("<|im_start|>user") == 1, "the chat template is applied once, by training"
        assert sentence in prompt_text and completion.startswith(label)


# ---- training ---------------------------------------------------------------------------------------------


def test_training_reads_accepted_corrections_and_a_finished_job_records_them_consumed(settings, tmp_path, monkeypatch):
    from llmplay.training.data_sources import TrainDataError, feedback_records
    from tests.training.tiny_jobs import entry_env, tiny_config, write_config

    with connect(settings.db_path) as db:
        good = [
            send_correction(db, f"Is '{w}' good or bad? One word.", "?", label, source="test", user="ann").item
            for w, label in [("great", "good"), ("awful", "bad"), ("lovely", "good"), ("terrible", "bad")]
        ]
        rate_reply(db, "Is 'fine' good or bad?", "bad", False, source="test")  # in the inbox, not corrected yet
    records = feedback_records(settings)
    assert [r["id"] for r in records] == [i.id for i in good]
    assert records[0]["messages"] == [
        {"role": "user", "content": "Is 'great' good or bad? One word."},
        {"role": "assistant", "content": "good"},
    ]

    from llmplay.models import registry
    from llmplay.training import entry

    for key, value in entry_env(settings).items():
        monkeypatch.setenv(key, value)
    config = tiny_config("from-feedback", max_steps=1)
    config["data"] = {"source": "feedback", "validation_fraction": 0.0}
    assert entry.main([str(write_config(tmp_path, config))]) == 0
    (version,) = [v for v in registry.list_versions(settings.db_path) if v.name == "from-feedback"]
    assert sorted(version.row_ids) == sorted(i.id for i in good), "a version records the feedback item ids"
    with connect(settings.db_path) as db:
        assert all(consumed_by(db, i.id) == [f"training-job:{version.job_id}"] for i in good)
    with pytest.raises(TrainDataError, match="no accepted corrections"):
        feedback_records(settings)  # the next job has nothing new to train on
