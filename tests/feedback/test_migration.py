"""Migration m007 on a database at the previous schema: the feedback inbox's rows become items + responses."""

from __future__ import annotations

import json

from sqlite_utils import Database

from llmplay.feedback import store as fs
from llmplay.feedback.accepted import accepted_items
from llmplay.migrations import MIGRATIONS
from llmplay.store import open_db


def test_inbox_rows_upgrade_in_place(db_path):
    old = Database(str(db_path))
    MIGRATIONS.apply(old, stop_before="m007_feedback")
    assert old["feedback_inbox"].exists() and not old["feedback_items"].exists()
    chat = [{"role": "user", "content": "Capital of France?"}]
    rows = [
        {
            "kind": "correction",
            "prompt": json.dumps("2+2?"),
            "rejected": "5",
            "correction": "4",
            "model": "smollm2-135m-instruct",
            "source": "compare",
            "user": "ann",
            "created_at": "2025-01-02T10:00:00",
        },
        {
            "kind": "correction",
            "prompt": json.dumps(chat),
            "rejected": "Lyon",
            "correction": "Paris",
            "model": "gemma-3-270m",
            "source": "playground",
            "user": "",
            "created_at": "2025-01-02T11:00:00",
            "consumed_at": "2025-01-03T09:00:00",
        },
        {
            "kind": "preference",
            "prompt": json.dumps(chat),
            "chosen": "Paris.",
            "rejected": "Berlin.",
            "model": "m-a",
            "rejected_model": "m-b",
            "source": "arena-vote:7",
            "user": "bob",
            "created_at": "2025-01-02T12:00:00",
        },
    ]
    old["feedback_inbox"].insert_all(rows)
    old.close()

    db = open_db(db_path)  # applies m007 in place
    try:
        assert not db["feedback_inbox"].exists()
        inbox, prefs = fs.get_queue(db, "inbox"), fs.get_queue(db, "preferences")
        assert (inbox.task, inbox.k, prefs.task) == ("correction", 1, "preference")
        corrections = fs.list_items(db, "inbox")
        assert [(i.prompt, i.output, i.model, i.source) for i in corrections] == [
            ("2+2?", "5", "smollm2-135m-instruct", "compare"),
            (chat, "Lyon", "gemma-3-270m", "playground"),
        ]
        responses = fs.list_responses(db, queue="inbox")
        assert [(r.labeler, r.value, r.status) for r in responses] == [
            ("ann", "4", "submitted"),
            ("anonymous", "Paris", "submitted"),
        ]
        (pair,) = fs.list_items(db, "preferences")
        assert (pair.output, pair.output_b, pair.model, pair.model_b) == ("Paris.", "Berlin.", "m-a", "m-b")
        assert [(r.labeler, r.value) for r in fs.list_responses(db, queue="preferences")] == [("bob", "a")]
        assert [i.meta["inbox_id"] for i in corrections + [pair]] == [1, 2, 3]
        assert fs.consumed_by(db, corrections[1].id) == ["inbox"] and fs.consumed_by(db, corrections[0].id) == []
        # The moved rows are accepted feedback (k = 1) and the consumed one is known as consumed.
        accepted = accepted_items(db, "inbox", unconsumed_by="inbox")
        assert [(a.value, a.how) for a in accepted] == [("4", "single")]
    finally:
        db.close()
