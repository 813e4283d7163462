"""The Labeling tab's review panels on a real SQLite file: agreement figures and the disagreement table, the
adjudicator's view and final answer, the dashboard frames, export downloads and imports."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmplay.engine import Engine
from llmplay.feedback import store as fb
from llmplay.store import connect
from llmplay.tempfiles import exports_dir
from llmplay.ui.tabs.labeling.review import Review
from llmplay.ui.tabs.labeling.tab import LabelingTab


@pytest.fixture()
def review(settings) -> Review:
    return Review(LabelingTab(Engine(settings)))


def answered(review: Review, name: str, task: str, answers: dict[str, list], **settings) -> list[int]:
    """A queue with one item per answer position; answers: labeler -> their value for each item."""
    n = len(next(iter(answers.values())))
    with connect(review.tab.db_path) as db:
        fb.create_queue(db, name, task, user="admin", k=len(answers), **settings)
        items = [{"source": "t", "prompt": f"Question {i}?", "output": f"answer {i}"} for i in range(n)]
        ids = [item.id for item, _ in fb.add_items(db, name, items)]
        for labeler, values in answers.items():
            for item_id, value in zip(ids, values, strict=True):
                fb.respond(db, item_id, labeler, value)
    return ids


def test_agreement_figures_and_the_disagreement_table(review):
    ids = answered(review, "labels", "label", {"kim": ["good", "bad"], "lee": ["good", "good"]}, labels=["good", "bad"])
    text, labelers, disputes = review.agreement("labels")
    assert "Percent agreement (all answers equal): **50%**" in text and "Cohen's kappa" in text
    assert [row[:2] for row in labelers] == [["kim", 2], ["lee", 2]]
    assert disputes == [[ids[1], "kim: bad | lee: good", ""]]
    assert review.agreement("")[0] == "⚠️ Error: Pick a queue first."


def test_the_adjudicator_sees_each_answer_and_records_the_final_one(review):
    ids = answered(review, "rated", "label", {"kim": ["good"], "lee": ["bad"]}, labels=["good", "bad"])
    text, start, options, value, message = review.detail("rated", ids[0])
    assert "<b>kim</b>: <span style='white-space:pre-wrap'>good" in text and "<b>lee</b>" in text
    assert options == [("good", "good"), ("bad", "bad")] and value is None and message == ""
    assert review.adjudicate("rated", ids[0], "", None, "", "ana") == "⚠️ Error: Pick the final answer first."
    assert review.adjudicate("rated", ids[0], "", "bad", "", "").startswith("⚠️ Error: Type your name")
    assert review.adjudicate("rated", ids[0], "", "meh", "", "ana").startswith("⚠️ Error: Label 'meh'")
    with connect(review.tab.db_path) as db:
        assert fb.get_adjudication(db, ids[0]) is None  # nothing stored by the refused tries
    done = review.adjudicate("rated", ids[0], "", "bad", "lee read the rules", "ana")
    assert done == f"✅ Final answer for item {ids[0]}: bad (by ana)."
    with connect(review.tab.db_path) as db:
        final = fb.get_adjudication(db, ids[0])
        assert (final.value, final.adjudicator, final.comment) == ("bad", "ana", "lee read the rules")
        assert fb.audit_log(db, entity=fb.ADJUDICATIONS)[0]["action"] == "adjudicate"
    assert review.agreement("rated")[2] == [[ids[0], "kim: good | lee: bad", "bad"]]
    assert review.detail("rated", ids[0])[3] == "bad"  # reopened: the final answer is picked


def test_differing_corrections_show_a_word_diff(review):
    ids = answered(review, "fixes", "correction", {"kim": ["Paris is big."], "lee": ["Paris is large."]})
    text, start, options, _, _ = review.detail("fixes", ids[0])
    assert "<del" in text and ">big<" in text and "<ins" in text and ">large<" in text
    assert start == "Paris is big." and options == []  # the editor starts from the first answer
    assert review.adjudicate("fixes", ids[0], "Paris is huge.", None, "", "ana").startswith("✅")
    assert review.detail("fixes", 999)[4] == "⚠️ Error: There is no feedback item 999."


def test_the_dashboard_frames(review):
    answered(review, "dash", "rating", {"kim": [4, 5], "lee": [4, 1]})
    volume, speed, queues, note = review.dashboard("dash", "day")
    assert sorted(volume["series"].unique()) == ["items", "responses"]
    assert volume.loc[volume.series == "responses", "count"].sum() == 4
    assert volume.loc[volume.series == "items", "count"].sum() == 2
    assert str(volume["period"].dtype).startswith("datetime64")  # a time axis for the line plot
    assert speed.set_index("labeler")["submitted"].to_dict() == {"kim": 2, "lee": 2}
    assert queues.set_index("queue").loc["dash", "labelers"] == 2
    assert note == "Volume and throughput of queue 'dash'; agreement of every queue."
    assert review.dashboard("dash", "month")[3].startswith("⚠️ Error: Volume is counted by hour, day, week")


def test_export_is_a_download_under_the_exports_folder(review):
    answered(review, "out", "correction", {"kim": ["Fixed 0", "Fixed 1"]})
    path, message = review.export("out", "sft")
    assert message == "✅ Exported 2 row(s) of 'out' as sft."
    file = Path(path)
    assert exports_dir(review.settings) in file.parents and file.suffix == ".jsonl"
    rows = [json.loads(line) for line in file.read_text().splitlines()]
    assert [r["messages"][-1] for r in rows] == [{"role": "assistant", "content": f"Fixed {i}"} for i in (0, 1)]
    path, message = review.export("out", "nope")
    assert path is None and message.startswith("⚠️ Error: Export format 'nope'")


def test_import_adds_items_and_a_bad_file_stores_nothing(review, tmp_path):
    with connect(review.tab.db_path) as db:
        fb.create_queue(db, "in", "label", labels=["good", "bad"], user="admin")
    good = tmp_path / "rows.jsonl"
    good.write_text(
        json.dumps({"prompt": "Is it?", "output": "yes", "labeler": "kim", "value": "good"})
        + "\n"
        + json.dumps({"prompt": "Is it not?", "output": "no"})
        + "\n"
    )
    message = review.import_file("in", str(good), "ana")
    assert message.startswith("✅ Imported 2 row(s) into 'in': 2 new item(s)")
    assert good.exists()  # a path outside Gradio's upload folder is the caller's: never deleted
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"prompt": "Fine?", "output": "x"}) + "\n{not json\n")
    assert review.import_file("in", str(bad), "ana").startswith("⚠️ Error: bad.jsonl line 2")
    assert review.import_file("in", None, "ana") == "⚠️ Error: Choose a JSONL, JSON or CSV file to import first."
    with connect(review.tab.db_path) as db:
        assert len(fb.list_items(db, "in")) == 2  # the bad file added nothing
