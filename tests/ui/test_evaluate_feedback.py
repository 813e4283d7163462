"""The Evaluate tab's "Send rows to a labeling queue" panel through the app's API: a real two-row run of
SmolLM2, its rows queued into a new queue, queued again (nothing added), and bad requests refused."""

from __future__ import annotations

import uuid

import pandas as pd
import pytest

from llmplay.engine import GenerationParams
from llmplay.feedback.store import get_queue, list_items, list_queues
from llmplay.store import connect
from tests.conftest import CHAT_MODEL
from tests.feedback.test_sources import TEMPLATE

ROWS = [("Harbourline Shipping doubled its quarterly profit.", "positive"), ("It rained in Oslo.", "neutral")]


@pytest.fixture(scope="module")
def run_id(engine, ui_prompts_dir) -> int:
    from llmplay.datasets import ColumnMapping, save_dataset
    from llmplay.evaluation.config import ColumnConfig, MetricConfig, RunConfig
    from llmplay.evaluation.runner import EvalRunner
    from llmplay.templates import TemplateLibrary

    library = TemplateLibrary(ui_prompts_dir, engine.settings.db_path)
    library.save(TEMPLATE, message="evaluate feedback test")
    df = pd.DataFrame(ROWS, columns=["sentence", "label"], dtype=object)
    save_dataset(engine.settings, "queue-rows", df, ColumnMapping({"text": "sentence"}, "label"), source="test")
    column = ColumnConfig("sources-sentiment", CHAT_MODEL, params=GenerationParams(max_new_tokens=4))
    config = RunConfig(dataset="queue-rows", columns=(column,), metrics=(MetricConfig("accuracy"),))
    return EvalRunner(engine, library).run(config)


def queue_rows(client, run_id, queue, which="all", column="1", rows="", task="label", labels=""):
    return client.predict(
        run_id=run_id, column=column, which=which, rows=rows, queue=queue, task=task, labels=labels,
        show_reference=True, user="lead", api_name="/eval_queue_rows",
    )  # fmt: skip


def test_rows_of_a_run_go_to_a_new_queue_once(client, engine, run_id):
    name = f"ui-review-{uuid.uuid4().hex[:6]}"
    assert queue_rows(client, run_id, name) == f"✅ Queued 2 rows in '{name}'."
    assert queue_rows(client, run_id, name) == f"✅ Queued 2 rows in '{name}' (2 were already there)."
    assert (
        queue_rows(client, run_id, name, which="rows", rows="1")
        == f"✅ Queued 1 row in '{name}' (1 was already there)."
    )
    with connect(engine.settings.db_path) as db:
        queue = get_queue(db, name)
        assert (queue.task, queue.labels, queue.show_reference) == ("label", ["positive", "negative", "neutral"], True)
        assert [i.meta["row"] for i in list_items(db, queue)] == [0, 1]


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"run_id": None}, "Choose a run"),
        ({"queue": " "}, "Name the queue"),
        ({"which": "rows", "rows": "two"}, "Rows are numbers"),
        ({"which": "rows", "rows": "7"}, "there is no row 7"),
        ({"column": "9"}, "no column 8"),
        ({"queue": "bad name!"}, "is not allowed"),
    ],
)
def test_bad_requests_say_why_and_queue_nothing(client, engine, run_id, kwargs, message):
    args = {"run_id": run_id, "queue": f"ui-bad-{uuid.uuid4().hex[:6]}"} | kwargs
    before = eval_items(engine, run_id)
    reply = queue_rows(client, **args)
    assert reply.startswith("⚠️ Error:") and message in reply, reply
    assert eval_items(engine, run_id) == before
    with connect(engine.settings.db_path) as db:
        assert args["queue"] not in [q.name for q in list_queues(db)], "no queue made for a refused request"


def eval_items(engine, run_id: int) -> int:
    with connect(engine.settings.db_path) as db:
        return db.execute("select count(*) from feedback_items where source = ?", [f"eval-run:{run_id}"]).fetchone()[0]
