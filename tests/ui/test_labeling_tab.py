"""The Labeling tab's handlers on a real SQLite file (direct calls, as the browser's events make them), its
queue settings, and its two API endpoints on the live app through gradio_client."""

from __future__ import annotations

import pytest

from llmplay.engine import Engine
from llmplay.feedback import store as fb
from llmplay.services import Services
from llmplay.store import connect
from llmplay.templates import TemplateLibrary
from llmplay.ui.tabs.labeling.queues import QueueSettings
from llmplay.ui.tabs.labeling.tab import MAX_BUTTONS, NOTHING_LEFT, LabelingTab
from llmplay.ui.tabs.labeling.view import fence, item_markdown, progress_text
from tests.conftest import ROOT


@pytest.fixture()
def tab(settings) -> LabelingTab:
    return LabelingTab(Engine(settings), TemplateLibrary.from_settings(settings, folder=ROOT / "prompts"))


def make_queue(tab: LabelingTab, name: str, task: str, n: int = 3, **settings) -> list[int]:
    with connect(tab.db_path) as db:
        fb.create_queue(db, name, task, user="admin", **settings)
        items = [
            {
                "source": "test",
                "prompt": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": f"Question {i}?"}],
                "output": f"answer {i}",
                "output_b": f"other {i}" if task == "preference" else None,
                "reference": f"gold {i}",
                "input": {"question": f"Question {i}?"},
            }
            for i in range(n)
        ]
        return [item.id for item, _ in fb.add_items(db, name, items)]


def responses(tab: LabelingTab, queue: str, labeler: str | None = None, status: str | None = None) -> list:
    with connect(tab.db_path) as db:
        return fb.list_responses(db, queue=queue, labeler=labeler, status=status)


# ---- answering ----------------------------------------------------------------------------------------------
def test_a_label_click_submits_and_the_next_item_shows(tab):
    ids = make_queue(tab, "labels", "label", labels=["good", "bad"], guidelines="Say **good** when it is right.")
    shown = tab.open("kim", "labels", {})
    assert shown.state["item_id"] == ids[0] and shown.choices == [("good", "good"), ("bad", "bad")]
    assert "Say **good**" in shown.guidelines and "Question 0?" in shown.item and "answer 0" in shown.item
    assert shown.progress.startswith("**0 of 3 done**")
    after = tab.choose(1, "kim", "labels", shown.state)
    assert after.message == f"✅ Submitted item {ids[0]}." and after.state["item_id"] == ids[1]
    assert after.progress.startswith("**1 of 3 done**")
    assert [row[:3] for row in after.history] == [[ids[0], "submitted", "bad"]]
    assert [(r.item_id, r.value) for r in responses(tab, "labels", "kim")] == [(ids[0], "bad")]


def test_a_double_submit_stores_once(tab):
    make_queue(tab, "twice", "correction")
    shown = tab.open("kim", "twice", {})
    first = tab.submit("kim", "twice", shown.state, "Fixed.", None, "", "")
    second = tab.submit("kim", "twice", shown.state, "Fixed.", None, "", "")  # same state: the same token
    assert first.message == second.message == f"✅ Submitted item {shown.state['item_id']}."
    assert len(responses(tab, "twice", "kim")) == 1
    with connect(tab.db_path) as db:
        actions = [row["action"] for row in fb.audit_log(db, entity=fb.RESPONSES)]
    assert actions == ["submit"]  # no edit: the second request returned the stored response


def test_an_empty_correction_is_refused_and_nothing_is_stored(tab):
    make_queue(tab, "fixes", "correction")
    shown = tab.open("kim", "fixes", {})
    assert shown.correction == "answer 0"  # the editor starts from the output
    refused = tab.submit("kim", "fixes", shown.state, "   ", None, "", "")
    assert refused.message.startswith("⚠️ Error: The correction is empty")
    assert refused.item is None and refused.state["item_id"] == shown.state["item_id"]  # the view stays
    assert responses(tab, "fixes", status=None) == []
    too_long = tab.submit("kim", "fixes", shown.state, "x" * (fb.MAX_TEXT + 1), None, "", "")
    assert "the limit is 20,000" in too_long.message and responses(tab, "fixes", status=None) == []


def test_bad_requests_say_what_to_do(tab):
    make_queue(tab, "q", "label", labels=["good", "bad"])
    assert tab.open("", "q", {}).message == "⚠️ Error: Type your name first: every answer is recorded under it."
    assert tab.open("kim", "", {}).message.startswith("⚠️ Error: Pick a queue first")
    assert "There is no feedback queue 'nope'" in tab.open("kim", "nope", {}).message
    shown = tab.open("kim", "q", {})
    assert tab.submit("kim", "q", shown.state, "", None).message.startswith("⚠️ Error: Pick an answer first")
    assert "not in this queue's label set" in tab.submit("kim", "q", shown.state, "", "meh").message
    assert tab.choose(MAX_BUTTONS, "kim", "q", shown.state).message.startswith("⚠️ Error:")
    assert responses(tab, "q", status=None) == []


def test_a_draft_keeps_the_item_and_comes_back(tab):
    ids = make_queue(tab, "drafts", "correction")
    shown = tab.open("kim", "drafts", {})
    saved = tab.draft("kim", "drafts", shown.state, "Half done", None, "check later", "todo, names")
    assert saved.message == "💾 Draft saved." and saved.state["item_id"] == ids[0]
    [draft] = responses(tab, "drafts", "kim", "draft")
    assert (draft.value, draft.comment, draft.tags) == ("Half done", "check later", ["todo", "names"])
    again = tab.open("kim", "drafts", {})  # a new page: the draft is handed out first, pre-filled
    assert again.state["item_id"] == ids[0] and again.correction == "Half done" and again.tags == "todo, names"
    done = tab.submit("kim", "drafts", again.state, "Done now", None, "", "")
    assert done.message == f"✅ Submitted item {ids[0]}."
    assert [(r.status, r.value) for r in responses(tab, "drafts", "kim", None)] == [("submitted", "Done now")]


def test_discard_counts_as_done_for_this_labeler_only(tab):
    ids = make_queue(tab, "disc", "rating", n=2)
    shown = tab.open("kim", "disc", {})
    gone = tab.discard("kim", "disc", shown.state, "off topic", "")
    assert gone.message == f"✅ Discarded item {ids[0]}." and gone.state["item_id"] == ids[1]
    assert gone.progress.startswith("**1 of 2 done**")
    assert [(r.item_id, r.status) for r in responses(tab, "disc", "kim", None)] == [(ids[0], "discarded")]
    assert tab.open("lee", "disc", {}).state["item_id"] == ids[0]  # another labeler still gets it


def test_skip_frees_the_slot_and_the_item_comes_back_last(tab):
    ids = make_queue(tab, "skips", "label", n=2, labels=["good", "bad"], k=2)
    shown = tab.open("kim", "skips", {})
    skipped = tab.forward("kim", "skips", shown.state)  # → on a new item is Skip
    assert skipped.message == f"⏭️ Skipped item {ids[0]}." and skipped.state["item_id"] == ids[1]
    assert skipped.state["skipped"] == [ids[0]]
    with connect(tab.db_path) as db:  # kim's claim on the skipped item was given back
        assert [r["item_id"] for r in db[fb.CLAIMS].rows_where("labeler = ?", ["kim"])] == [ids[1]]
    assert tab.api_next("skips", "lee")["item_id"] == ids[0]
    last = tab.choose(0, "kim", "skips", skipped.state)
    assert last.state["item_id"] == ids[0]  # nothing else left: the skipped item is offered again
    end = tab.choose(0, "kim", "skips", last.state)
    assert end.item == NOTHING_LEFT and end.state["item_id"] is None and end.choices == []
    assert end.progress.startswith("**2 of 2 done**")


def test_history_steps_back_and_an_edit_is_audited(tab):
    ids = make_queue(tab, "hist", "rating", rating_min=1, rating_max=5)
    shown = tab.open("kim", "hist", {})
    assert [text for text, _ in shown.choices] == ["1", "2", "3", "4", "5"]
    s1 = tab.choose(3, "kim", "hist", shown.state)  # item 0: 4
    s2 = tab.choose(1, "kim", "hist", s1.state)  # item 1: 2
    back = tab.previous("kim", "hist", s2.state)
    assert back.state["at"] == ids[1] and back.answer == "2" and back.in_history
    assert "your answer: **2** (submitted)" in back.item
    older = tab.previous("kim", "hist", back.state)
    assert older.state["at"] == ids[0] and older.answer == "4"
    assert tab.previous("kim", "hist", older.state).message == "ℹ️ That is the first item of your history."
    newer = tab.forward("kim", "hist", older.state)
    assert newer.state["at"] == ids[1]
    fresh = tab.forward("kim", "hist", newer.state)  # past the newest: back to new items
    assert fresh.state["at"] is None and fresh.state["item_id"] == ids[2]
    opened = tab.open_history("kim", "hist", fresh.state, ids[0])
    edited = tab.submit("kim", "hist", opened.state, "", "5", "changed my mind", "")
    assert edited.message == f"✅ Edited item {ids[0]}."
    assert {r.item_id: r.value for r in responses(tab, "hist", "kim")} == {ids[0]: 5, ids[1]: 2}
    with connect(tab.db_path) as db:
        [edit] = [row for row in fb.audit_log(db, entity=fb.RESPONSES) if row["action"] == "edit"]
    assert edit["before"]["value"] == 4 and edit["user"] == "kim"
    assert "not in your history" in tab.open_history("lee", "hist", {}, ids[0]).message


def test_preference_items_show_both_outputs_and_a_b_tie(tab):
    make_queue(tab, "prefs", "preference")
    shown = tab.open("kim", "prefs", {})
    assert [v for _, v in shown.choices] == ["a", "b", "tie"] and shown.correction is None
    assert "Output A" in shown.item and "other 0" in shown.item
    assert tab.choose(2, "kim", "prefs", shown.state).message.startswith("✅ Submitted")
    assert [r.value for r in responses(tab, "prefs", "kim")] == ["tie"]


# ---- formatting --------------------------------------------------------------------------------------------
def test_the_reference_shows_only_when_the_queue_says_so(tab):
    make_queue(tab, "hidden", "correction", n=1)
    make_queue(tab, "shown", "correction", n=1, show_reference=True)
    assert "gold 0" not in tab.open("kim", "hidden", {}).item
    assert "##### Reference" in tab.open("kim", "shown", {}).item
    with connect(tab.db_path) as db:
        q = fb.get_queue(db, "shown")
        item = fb.list_items(db, q)[0]
        text = item_markdown(item, q)
        assert "Question 0?" in text and "*system*" not in text  # what is judged; the whole prompt is apart
        prompt = tab.open("kim", "shown", {}).prompt  # behind a toggle under the controls
        assert "*system*" in prompt and "*user*" in prompt and "Question 0?" in prompt  # chat turns, readable
        assert progress_text(fb.progress(db, q, "kim"), q).startswith("**0 of 1 done**")


def test_outputs_are_fenced_so_markdown_in_them_stays_text():
    assert fence("a ```b``` c") == "````text\na ```b``` c\n````"
    assert fence("<script>x</script>").startswith("```text\n<script>")


# ---- queue settings ----------------------------------------------------------------------------------------
def test_a_new_label_queue_defaults_to_the_template_labels(tab):
    settings = QueueSettings(tab)
    assert settings.labels_of("financial-sentiment") == "positive, negative, neutral"
    assert "assistant" not in settings.template_labels()  # templates without labels offer none
    message = settings.create(
        "sentiment",
        "label",
        "financial-sentiment",
        "positive, negative, neutral",
        2,
        1,
        5,
        "# Rules",
        True,
        "auto",
        "ann",
    )
    assert message.startswith("✅ Created the label queue **sentiment** (k = 2)")
    with connect(tab.db_path) as db:
        q = fb.get_queue(db, "sentiment")
    assert (q.labels, q.k, q.template, q.show_reference, q.created_by) == (
        ["positive", "negative", "neutral"],
        2,
        "financial-sentiment",
        True,
        "ann",
    )
    assert "sentiment" in tab.queue_names()


def test_bad_queue_settings_are_refused_and_nothing_is_stored(tab):
    settings = QueueSettings(tab)
    args = ("new", "label", "(none)", "good, bad", 1, 1, 5, "", False, "auto", "ann")
    assert "whole number" in settings.create(*args[:4], 1.5, *args[5:])
    assert "at least two labels" in settings.create(*args[:3], "good", *args[4:])
    assert "Type your name above first" in settings.create(*args[:-1], "")
    assert "k) must be a whole number from 1 to 20" in settings.create(*args[:4], 0, *args[5:])
    assert tab.queue_names() == []


def test_queue_changes_are_saved_and_archiving_hides_the_queue(tab):
    make_queue(tab, "old", "correction", n=1)
    settings = QueueSettings(tab)
    assert settings.load("old")[:3] == ("", 1, False)
    assert settings.save("old", "New *rules*", 3, False, "ann") == "✅ Saved queue **old**: k = 3, open."
    assert settings.load("old")[:2] == ("New *rules*", 3)
    assert settings.save("old", "New *rules*", 3, True, "ann").endswith("archived (hidden from the queue picker).")
    assert "old" not in tab.queue_names() and "old" in settings.all_names()
    assert settings.save("", "", 1, False, "ann").startswith("⚠️ Error: Pick the queue")


# ---- API endpoints, on the live app --------------------------------------------------------------------------
def test_api_next_and_submit_through_gradio_client(client, engine):
    with connect(engine.settings.db_path) as db:
        fb.create_queue(db, "api-labels", "label", labels=["yes", "no"], user="admin")
        fb.add_items(db, "api-labels", [{"source": "api", "prompt": f"Is {i} even?", "output": "yes"} for i in (1, 2)])
    item = client.predict(queue="api-labels", labeler="bot", api_name="/labeling_next")
    assert (item["task"], item["labels"], item["prompt"], item["progress"]) == (
        "label",
        ["yes", "no"],
        "Is 1 even?",
        "0 of 2 done",
    )
    args = {"queue": "api-labels", "labeler": "bot", "item_id": item["item_id"], "client_token": item["client_token"]}
    first = client.predict(value="no", **args, api_name="/labeling_submit")
    again = client.predict(value="no", **args, api_name="/labeling_submit")
    assert first.startswith("✅ Stored response") and again == first
    bad = client.predict(**(args | {"client_token": "t-2"}), value="maybe", api_name="/labeling_submit")
    assert bad.startswith("⚠️ Error: Label 'maybe' is not in this queue's label set")
    wrong = client.predict(
        **(args | {"queue": "inbox", "client_token": "t-3"}), value="no", api_name="/labeling_submit"
    )
    assert wrong.startswith("⚠️ Error:")
    second = client.predict(queue="api-labels", labeler="bot", api_name="/labeling_next")
    args |= {"item_id": second["item_id"], "client_token": second["client_token"]}
    assert client.predict(value="yes", **args, api_name="/labeling_submit").startswith("✅")
    assert client.predict(queue="api-labels", labeler="bot", api_name="/labeling_next") == {}
    with connect(engine.settings.db_path) as db:
        assert sorted(r.value for r in fb.list_responses(db, queue="api-labels")) == ["no", "yes"]
    error = client.predict(queue="nope", labeler="bot", api_name="/labeling_next")
    assert error["error"].startswith("⚠️ Error: There is no feedback queue 'nope'")


def test_api_endpoints_do_not_wait_behind_generation(engine):
    """Their own concurrency group without a limit: a streaming reply (limit 1-2) never holds them up."""
    from llmplay.ui import build_app

    demo = build_app(Services.build(engine, ROOT / "prompts"))
    fns = {fn.api_name: fn for fn in demo.fns.values()}
    for name in ("labeling_next", "labeling_submit"):
        assert fns[name].concurrency_limit is None and fns[name].concurrency_id == "labeling-api"
    assert fns["labeling_next"].concurrency_id != fns["chat"].concurrency_id
