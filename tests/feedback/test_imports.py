"""Importing items (and existing responses) from JSONL / CSV; a malformed file stores nothing."""

from __future__ import annotations

import json
import re

import pytest

from llmplay.feedback import store as fs
from llmplay.feedback.accepted import accepted_items
from llmplay.feedback.imports import MAX_IMPORT_ROWS, import_file

TABLES = ("feedback_items", "feedback_responses", "feedback_audit")


def _counts(db):
    return {t: db[t].count for t in TABLES}


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_jsonl_import_with_responses(db, tmp_path):
    fs.create_queue(db, "fix", "correction", k=2)
    chat = [{"role": "user", "content": "Capital of France?"}]
    path = _jsonl(
        tmp_path / "items.jsonl",
        [
            {"prompt": "2+2?", "output": "5", "model": "m1", "input": {"q": "2+2"}, "reference": "4"},
            {
                "messages": chat,
                "output": "Lyon",
                "responses": [{"labeler": "ann", "value": "Paris"}, {"labeler": "bob", "value": "Paris"}],
            },
            {"prompt": "3+3?", "output": "7", "labeler": "ann", "value": "6", "comment": "arithmetic", "id": 17},
        ],
    )
    result = import_file(db, path, "fix", user="lead")
    assert (result.rows, result.added, result.existing, result.responses) == (3, 3, 0, 3)
    items = fs.list_items(db, "fix")
    assert [(i.prompt, i.output, i.source) for i in items] == [
        ("2+2?", "5", "import:items.jsonl"),
        (chat, "Lyon", "import:items.jsonl"),
        ("3+3?", "7", "import:items.jsonl"),
    ]
    assert (items[0].input, items[0].reference, items[0].model) == ({"q": "2+2"}, "4", "m1")
    assert items[2].meta == {"import_columns": {"id": 17}}
    responses = fs.list_responses(db, queue="fix")
    assert [(r.item_id, r.labeler, r.value) for r in responses] == [
        (items[1].id, "ann", "Paris"),
        (items[1].id, "bob", "Paris"),
        (items[2].id, "ann", "6"),
    ]
    assert [(a.item.id, a.value, a.how) for a in accepted_items(db, "fix")] == [(items[1].id, "Paris", "agreement")]
    again = import_file(db, tmp_path / "items.jsonl", "fix", user="lead")  # same file twice: no new items
    assert (again.added, again.existing) == (0, 3)


def test_csv_import_repeats_an_items_row_per_labeler(db, tmp_path):
    fs.create_queue(db, "stars", "rating", k=2)
    path = tmp_path / "ratings.csv"
    path.write_text(
        'prompt,output,labeler,value\nSay hi,Hello!,ann,5\nSay hi,Hello!,bob,4\n"Say bye, politely",Bye.,,\n',
        encoding="utf-8",
    )
    result = import_file(db, path, "stars")
    assert (result.added, result.existing, result.responses) == (2, 1, 2)
    first, second = fs.list_items(db, "stars")
    assert second.prompt == "Say bye, politely"
    assert [(r.labeler, r.value) for r in fs.list_responses(db, item_id=first.id)] == [("ann", 5), ("bob", 4)]


def test_chosen_rejected_pairs_import_as_the_users_choice(db, tmp_path):
    fs.create_queue(db, "prefs", "preference")
    path = _jsonl(tmp_path / "dpo.jsonl", [{"prompt": "Hi", "chosen": "Hello!", "rejected": "Go away."}])
    import_file(db, path, "prefs", user="lead")
    (item,) = fs.list_items(db, "prefs")
    assert (item.output, item.output_b) == ("Hello!", "Go away.")
    assert [(r.labeler, r.value) for r in fs.list_responses(db, item_id=item.id)] == [("lead", "a")]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "bad.jsonl",
            '{"prompt": "a", "output": "b"}\n{"prompt": "c", "output": "d"}\n{"prompt": oops}\n',
            "bad.jsonl line 3: not valid JSON",
        ),
        ("list.jsonl", '{"prompt": "a", "output": "b"}\n[1, 2]\n', "line 2: each line must be a JSON object"),
        ("nocol.csv", "text,output\nhello,world\n", "nocol.csv line 2: the 'prompt' (or 'messages') column is missing"),
        ("noout.csv", "prompt\nhello\n", "line 2: the 'output' column (the reply to review) is missing"),
        ("cells.csv", "prompt,output\na,b\nc,d,e\n", "cells.csv line 3: 3 cells, but the header has 2 columns"),
        (
            "empty.jsonl",
            '{"prompt": "a", "output": "b"}\n{"prompt": "  ", "output": "d"}\n',
            "empty.jsonl line 2: The prompt is empty. Nothing from the file was stored.",
        ),
        (
            "value.jsonl",
            '{"prompt": "a", "output": "b", "labeler": "ann", "value": "   "}\n',
            "line 1: The correction is empty",
        ),
        ("twice.csv", "prompt,output,labeler,value\na,b,ann,x\na,b,ann,y\n", "line 3: ann answers this item twice"),
        ("many.csv", "prompt,output,labeler,value\na,b,ann,x\na,b,bob,y\n", "line 3: this item has 2 labelers"),
        ("items.txt", "prompt,output\n", "import takes .jsonl, .json or .csv files, not '.txt'"),
        ("none.csv", "prompt,output\n", "none.csv has no rows"),
        ("latin.csv", b"prompt,output\ncaf\xe9,b\n", "latin.csv is not UTF-8 text"),
    ],
)
def test_malformed_import_names_the_problem_and_stores_nothing(db, tmp_path, name, content, message):
    fs.create_queue(db, "fix", "correction")
    fs.add_item(db, "fix", source="t", prompt="already here", output="x")
    before = _counts(db)
    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(fs.FeedbackError, match=re.escape(message)):
        import_file(db, path, "fix")
    assert _counts(db) == before


def test_too_many_rows_or_too_big_a_file_is_refused(db, tmp_path):
    fs.create_queue(db, "fix", "correction")
    rows = tmp_path / "rows.jsonl"
    rows.write_text(
        "".join(json.dumps({"prompt": f"q{n}", "output": "o"}) + "\n" for n in range(MAX_IMPORT_ROWS + 1)),
        encoding="utf-8",
    )
    with pytest.raises(fs.FeedbackError, match="more than 10,000 rows; the limit is 10,000"):
        import_file(db, rows, "fix")
    big = tmp_path / "big.jsonl"
    big.write_text(json.dumps({"prompt": "x" * (21 * 2**20), "output": "o"}), encoding="utf-8")
    with pytest.raises(fs.FeedbackError, match="21.0 MB; the import limit is 20 MB"):
        import_file(db, big, "fix")
    assert db["feedback_items"].count == 0
    with pytest.raises(fs.FeedbackError, match="no feedback queue 'nope'"):
        import_file(db, rows, "nope")
