"""bench/crash.py's own check: it must count an acknowledged response that is missing or changed as lost."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from llmplay.feedback import store
from llmplay.store import connect

spec = importlib.util.spec_from_file_location("crash_bench", Path(__file__).resolve().parents[1] / "bench" / "crash.py")
crash = importlib.util.module_from_spec(spec)
spec.loader.exec_module(crash)


def test_check_counts_missing_and_changed_responses_as_lost(tmp_path):
    db_path = tmp_path / "llmplay.db"
    crash.make_queue(db_path, items=3, k=2, name=crash.QUEUE)
    acked = []
    with connect(db_path) as db:
        for item in store.list_items(db, crash.QUEUE):
            response = store.respond(db, item.id, "ann", "positive", client_token=f"t{item.id}")
            acked.append((f"t{item.id}", response.id, item.id, "ann"))
    ok, text, present, stored = crash.check(db_path, acked)
    assert (ok, text, present, stored) == (True, "ok", 3, 3)
    token, response_id, item_id, labeler = acked[0]
    never_stored = ("not-there", 999, item_id, labeler)
    other_labeler = (token, response_id, item_id, "someone-else")  # the row under that token is not this reply
    assert crash.check(db_path, [*acked, never_stored, other_labeler])[2] == 3
