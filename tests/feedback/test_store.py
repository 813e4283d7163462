"""The feedback store under several labelers at once, idempotent submits, k slots, bad input and the audit."""

from __future__ import annotations

import threading

import pytest

from llmplay.feedback import store as fs
from llmplay.store import connect


def _items(db, queue, n, prefix="q"):
    return [
        i
        for i, _ in fs.add_items(
            db, queue, [{"source": "test", "prompt": f"{prefix}{i}", "output": f"o{i}"} for i in range(n)]
        )
    ]


def _run_threads(target, names):
    errors: list[BaseException] = []

    def wrapped(name):
        try:
            target(name)
        except BaseException as exc:  # any exception, "database is locked" above all, fails the test
            errors.append(exc)

    threads = [threading.Thread(target=wrapped, args=(n,)) for n in names]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a labeler thread hung"
    return errors


def _count(db, table, where=None, args=()):
    return db[table].count_where(where, args) if where else db[table].count


def test_ten_labelers_fifty_responses_each_at_once(db, db_path):
    # k = 10 and 10 labelers: every labeler answers every one of the 50 items, so the 500 responses are
    # 500 distinct (item, labeler) pairs, all written at the same time through separate connections.
    fs.create_queue(db, "crowd", "label", labels=["good", "bad"], k=10)
    _items(db, "crowd", 50)
    labelers = [f"labeler{n}" for n in range(10)]
    handed: dict[str, list[int]] = {name: [] for name in labelers}

    def work(name):
        with connect(db_path) as conn:
            for n in range(50):
                item = fs.next_item(conn, "crowd", name)
                assert item is not None, f"{name} ran out of items after {n}"
                handed[name].append(item.id)
                fs.respond(conn, item.id, name, "good" if n % 3 else "bad", client_token=f"{name}-{n}")
            assert fs.next_item(conn, "crowd", name) is None

    errors = _run_threads(work, labelers)
    assert errors == []
    rows = db.execute("select item_id, labeler, status from feedback_responses").fetchall()
    assert len(rows) == 500
    assert len({(item, labeler) for item, labeler, _ in rows}) == 500
    assert {status for *_, status in rows} == {"submitted"}
    assert all(len(set(ids)) == 50 for ids in handed.values())  # nobody was handed an item twice
    assert _count(db, "feedback_audit", "action = 'submit'") == 500
    assert fs.progress(db, "crowd").complete == 50


def test_concurrent_hand_out_never_fills_more_than_k(db, db_path):
    fs.create_queue(db, "triple", "rating", k=3)
    items = _items(db, "triple", 20)
    labelers = [f"l{n}" for n in range(8)]

    def work(name):
        with connect(db_path) as conn:
            while (item := fs.next_item(conn, "triple", name)) is not None:
                fs.respond(conn, item.id, name, 4)

    assert _run_threads(work, labelers) == []
    counts = dict(
        db.execute(
            "select item_id, count(*) from feedback_responses where status = 'submitted' group by item_id"
        ).fetchall()
    )
    assert counts == {item.id: 3 for item in items}  # every item filled, none past k
    assert _count(db, "feedback_claims") == 0


def test_same_client_token_twice_is_stored_once(db):
    fs.create_queue(db, "fix", "correction")
    (item,) = _items(db, "fix", 1)
    first = fs.respond(db, item.id, "ann", "Better answer.", client_token="tok-1")
    again = fs.respond(db, item.id, "ann", "Better answer.", client_token="tok-1")
    assert again.id == first.id
    assert _count(db, "feedback_responses") == 1
    assert _count(db, "feedback_audit", "action = 'submit' and entity = 'feedback_responses'") == 1
    assert _count(db, "feedback_audit", "action = 'edit'") == 0


def test_a_client_token_reused_on_another_item_or_by_another_labeler_is_a_conflict(db):
    fs.create_queue(db, "lab", "label", labels=["yes", "no"], k=2)
    first, second = _items(db, "lab", 2)
    mine = fs.respond(db, first.id, "ann", "yes", client_token="tok-9")
    with pytest.raises(fs.ClientTokenConflict, match="already used for another answer"):
        fs.respond(db, second.id, "ann", "no", client_token="tok-9")  # another item: not silently dropped
    with pytest.raises(fs.ClientTokenConflict) as other:
        fs.respond(db, first.id, "bo", "no", client_token="tok-9")  # another labeler: not ann's answer back
    assert "ann" not in str(other.value) and '"yes"' not in str(other.value)
    assert fs.respond(db, first.id, "ann", "yes", client_token="tok-9").id == mine.id  # the retry still works
    assert [(r.item_id, r.labeler, r.value) for r in fs.list_responses(db, queue="lab")] == [(first.id, "ann", "yes")]
    fresh = fs.respond(db, second.id, "ann", "no", client_token="tok-10")  # with its own token it is stored
    assert fresh.item_id == second.id and fresh.value == "no"


def test_k3_item_leaves_the_queue_after_three_submits(db):
    fs.create_queue(db, "k3", "label", labels=["yes", "no"], k=3)
    (only,) = _items(db, "k3", 1)
    for name in ("a", "b", "c"):
        item = fs.next_item(db, "k3", name)
        assert item is not None and item.id == only.id
        fs.respond(db, item.id, name, "yes")
        assert fs.next_item(db, "k3", name) is None  # never handed the item they answered
    assert fs.next_item(db, "k3", "d") is None  # three submitted: it left the queue
    assert fs.progress(db, "k3").complete == 1
    with pytest.raises(fs.FeedbackError, match="already has its 3 response"):
        fs.respond(db, only.id, "d", "no")
    assert _count(db, "feedback_responses") == 3

    (second,) = _items(db, "k3", 1, prefix="new")
    assert fs.next_item(db, "k3", "d").id == second.id  # a 4th labeler gets another item
    assert fs.next_item(db, "k3", "a").id == second.id


def test_last_slot_is_not_handed_to_two_labelers(db):
    fs.create_queue(db, "k2", "label", labels=["yes", "no"], k=2)
    (item,) = _items(db, "k2", 1)
    fs.respond(db, item.id, "a", "yes")
    assert fs.next_item(db, "k2", "b").id == item.id  # b holds the last slot now
    assert fs.next_item(db, "k2", "c") is None
    fs.release(db, item.id, "b")
    assert fs.next_item(db, "k2", "c").id == item.id


@pytest.mark.parametrize(
    ("action", "message"),
    [
        (lambda db, item: fs.respond(db, item.id, "ann", "   "), "The correction is empty"),
        (lambda db, item: fs.respond(db, item.id, "ann", "x" * (fs.MAX_TEXT + 1)), "the limit is 20,000"),
        (lambda db, item: fs.respond(db, 99999, "ann", "Fine."), "There is no feedback item 99999"),
        (lambda db, item: fs.add_item(db, "nope", source="t", prompt="p", output="o"), "no feedback queue 'nope'"),
        (lambda db, item: fs.next_item(db, "nope", "ann"), "no feedback queue 'nope'"),
        (lambda db, item: fs.add_item(db, "fix", source="t", prompt="", output="o"), "The prompt is empty"),
        (lambda db, item: fs.adjudicate(db, item.id, "", adjudicator="lead"), "The correction is empty"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message_and_nothing_stored(db, action, message):
    fs.create_queue(db, "fix", "correction")
    (item,) = _items(db, "fix", 1)
    tables = ("feedback_items", "feedback_responses", "feedback_adjudications", "feedback_audit")
    before = {t: _count(db, t) for t in tables}
    with pytest.raises(fs.FeedbackError, match=message):
        action(db, item)
    assert {t: _count(db, t) for t in tables} == before


def test_response_to_a_discarded_item_is_refused(db):
    fs.create_queue(db, "fix", "correction")
    (item,) = _items(db, "fix", 1)
    fs.discard_item(db, item.id, user="lead", reason="off-topic")
    before = _count(db, "feedback_responses")
    with pytest.raises(fs.FeedbackError, match=f"Item {item.id} was discarded"):
        fs.respond(db, item.id, "ann", "Better.")
    assert _count(db, "feedback_responses") == before == 0
    assert fs.next_item(db, "fix", "ann") is None


def test_editing_a_submitted_response_keeps_the_old_value_in_the_audit(db):
    fs.create_queue(db, "fix", "correction")
    (item,) = _items(db, "fix", 1)
    first = fs.respond(db, item.id, "ann", "First try.")
    edited = fs.respond(db, item.id, "ann", "Second try.")
    assert edited.id == first.id and edited.value == "Second try."
    assert _count(db, "feedback_responses") == 1
    log = fs.audit_log(db, entity="feedback_responses", entity_id=first.id)
    assert [entry["action"] for entry in log] == ["edit", "submit"]
    assert log[0]["before"]["value"] == "First try." and log[0]["user"] == "ann"
    assert log[0]["after"]["value"] == '"Second try."'
