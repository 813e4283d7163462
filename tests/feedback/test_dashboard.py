"""Dashboard figures: volume per period, per-labeler throughput, one line per queue."""

from __future__ import annotations

import pandas as pd
import pytest

from llmplay.feedback import store as fs
from llmplay.feedback.dashboard import queue_summary, throughput, volume


def _stamp(db, table, row_id, **stamps):
    db[table].update(row_id, stamps)


def test_volume_counts_items_and_submits_per_day_and_week(db):
    fs.create_queue(db, "q", "label", labels=["a", "b"], k=2)
    fs.create_queue(db, "other", "correction")
    items = [fs.add_item(db, "q", source="t", prompt=f"p{n}")[0] for n in range(3)]
    extra = fs.add_item(db, "other", source="t", prompt="x", output="y")[0]
    days = ["2025-03-03T09:00:00.000+00:00", "2025-03-03T17:00:00.000+00:00", "2025-03-10T08:00:00.000+00:00"]
    for item, day in zip(items, days):
        _stamp(db, "feedback_items", item.id, created_at=day)
    _stamp(db, "feedback_items", extra.id, created_at=days[0])
    r1 = fs.respond(db, items[0].id, "ann", "a")
    r2 = fs.respond(db, items[0].id, "bob", "b")
    draft = fs.respond(db, items[1].id, "ann", "a", status="draft")  # drafts are not work done yet
    _stamp(db, "feedback_responses", r1.id, submitted_at="2025-03-04T10:00:00.000+00:00")
    _stamp(db, "feedback_responses", r2.id, submitted_at="2025-03-10T10:00:00.000+00:00")
    assert draft.submitted_at is None

    daily = volume(db, "q")
    assert daily.to_dict("records") == [
        {"period": "2025-03-03", "items": 2, "responses": 0},
        {"period": "2025-03-04", "items": 0, "responses": 1},
        {"period": "2025-03-10", "items": 1, "responses": 1},
    ]
    weekly = volume(db, by="week")  # every queue; weeks start on Monday (3 and 10 March 2025)
    assert weekly.to_dict("records") == [
        {"period": "2025-03-03", "items": 3, "responses": 1},
        {"period": "2025-03-10", "items": 1, "responses": 1},
    ]
    with pytest.raises(fs.FeedbackError, match="not 'month'"):
        volume(db, by="month")


def test_throughput_per_labeler_with_median_time_between_submits(db):
    fs.create_queue(db, "q", "rating", k=2)
    items = [fs.add_item(db, "q", source="t", prompt=f"p{n}", output="o")[0] for n in range(5)]
    ann = ["10:00:00", "10:00:30", "10:01:30", "10:02:00", "12:00:00"]  # gaps 30, 60, 30 s, then a break
    for item, at in zip(items, ann):
        r = fs.respond(db, item.id, "ann", 3)
        _stamp(db, "feedback_responses", r.id, submitted_at=f"2025-03-03T{at}.000+00:00")
    fs.respond(db, items[0].id, "bob", 4)
    fs.respond(db, items[1].id, "bob", None, status="discarded")
    table = throughput(db, "q")
    assert list(table.labeler) == ["ann", "bob"]
    ann_row, bob_row = table.to_dict("records")
    assert (ann_row["submitted"], ann_row["median_seconds"]) == (5, 30.0)
    assert (bob_row["submitted"], bob_row["discarded"]) == (1, 1)
    assert pd.isna(bob_row["median_seconds"])  # one submit: no gap to measure
    assert throughput(db, "q").shape[0] == 2 and throughput(db).shape[0] == 2


def test_queue_summary_has_items_complete_accepted_and_agreement(db):
    assert queue_summary(db).empty
    fs.create_queue(db, "sent", "label", labels=["pos", "neg"], k=2)
    items = [fs.add_item(db, "sent", source="t", prompt=f"p{n}")[0] for n in range(4)]
    for item, (ann, bob) in zip(items[:3], [("pos", "pos"), ("neg", "neg"), ("pos", "neg")]):
        fs.respond(db, item.id, "ann", ann)
        fs.respond(db, item.id, "bob", bob)
    (row,) = queue_summary(db).to_dict("records")
    assert (row["queue"], row["items"], row["complete"], row["accepted"], row["labelers"]) == ("sent", 4, 3, 2, 2)
    assert row["agreement"] == pytest.approx(2 / 3)
    assert row["summary"].startswith("67% agree, kappa")
