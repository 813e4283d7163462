"""The Loop tab's handlers on a real SQLite file (direct calls, as the browser's events make them).

No training: versions are registered over a dummy adapter folder and update rows are written as a finished
update leaves them (tests/loop covers the real update)."""

from __future__ import annotations

import json

import pytest

from llmplay.engine import Engine
from llmplay.evaluation.runner import EvalRunner
from llmplay.loop import lines
from llmplay.loop.gates import GateResult
from llmplay.loop.scheduler import Scheduler
from llmplay.loop.update import get_update, list_updates
from llmplay.models import registry
from llmplay.services import loop_check_interval as check_interval
from llmplay.store import connect
from llmplay.templates import TemplateLibrary
from llmplay.ui.tabs.loop import view
from llmplay.ui.tabs.loop.tab import BASE_CHOICE, LoopTab
from tests.conftest import ROOT
from tests.loop.helpers import add_accepted

BASE = "smollm2-135m-instruct"


def gates(feedback_gain: float, regression_drop: float = 0.0, probe_task: float = 0.70) -> list[dict]:
    """The gate results of a finished update, as run_gates stores them."""
    regression_ok = regression_drop <= 0.02
    return [
        GateResult("feedback", "accuracy", 0.55, 0.55 + feedback_gain, feedback_gain, feedback_gain - 0.05,
                   feedback_gain + 0.05, 40, feedback_gain >= 0, "", run_id=None).to_dict(),
        GateResult("regression", "accuracy", 0.80, 0.80 - regression_drop, -regression_drop, -regression_drop - 0.04,
                   -regression_drop + 0.03, 60, regression_ok,
                   "" if regression_ok else f"accuracy on regression set 'fpb-frozen' dropped by {regression_drop:.3f}",
                   run_id=None).to_dict(),
        GateResult("probe_task", "exact_match", 0.70, probe_task, probe_task - 0.70, -0.05, 0.04, 50,
                   True, "").to_dict(),
        GateResult("probe_perplexity", "perplexity", 12.0, 12.3, 0.025, passed=True).to_dict(),
        GateResult("probe_reply", "perplexity", 15.0, 15.3, 0.02, passed=True).to_dict(),
    ]  # fmt: skip


def seed_line(db_path, folder, name: str = "fpb") -> dict:
    """Line ``name`` with versions v1, v2 (both promoted by their updates, v2 active) and a rejected v3."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "adapter_config.json").write_text("{}")
    with connect(db_path) as db:
        line = lines.create_line(db, name, BASE, "financial-sentiment", settings={"min_new_rows": 500})
    v = [registry.register(db_path, name=name, base_model=BASE, kind="adapter", path=folder) for _ in range(3)]
    updates = []
    with connect(db_path) as db:
        for i, (version, stored, status) in enumerate(
            [(v[0], gates(0.10), "promoted"), (v[1], gates(0.06, probe_task=0.68), "promoted"),
             (v[2], gates(0.04, regression_drop=0.09), "rejected")]
        ):  # fmt: skip
            update_id = (
                db["loop_updates"]
                .insert(
                    {
                        "line_id": line.id, "status": status, "trigger": "rows", "stage": "done",
                        "started_at": f"2025-01-0{i + 1}T10:00:00.000+00:00", "finished_at": lines.now(),
                        "candidate_version_id": version.id, "feedback_ids": json.dumps(list(range(40))),
                        "replay_ids": json.dumps(list(range(20))), "general_ids": json.dumps(list(range(10))),
                        "heldout_ids": json.dumps(list(range(8))), "gates": json.dumps(stored),
                        "reasons": json.dumps([g["reason"] for g in stored if not g["passed"]]),
                        "promoted_by": "gates" if status == "promoted" else None,
                        "timings": json.dumps({"data_s": 0.1, "rehearsal_s": 5.0, "train_s": 60.0 + 10 * i,
                                               "gates_s": 30.0, "total_s": 100.0 + 10 * i}),
                    }
                )
                .last_pk
            )  # fmt: skip
            updates.append(update_id)
            db["loop_lines"].update(line.id, {"candidate_version_id": version.id})  # as run_update does
            if status == "promoted":
                lines.set_active(db, name, version.id, user="gates", action="promote", update_id=update_id)
    return {"line": name, "versions": v, "updates": updates}


@pytest.fixture()
def tab(settings) -> LoopTab:
    return LoopTab(Engine(settings), TemplateLibrary.from_settings(settings, folder=ROOT / "prompts"))


def form(**changes) -> list:
    """The settings form's values (defaults, with ``changes``) in the tab's order."""
    values = dict(zip(view.FORM_FIELDS, view.settings_values(lines.LineSettings()), strict=True)) | changes
    return [values[name] for name in view.FORM_FIELDS]


def active_id(tab: LoopTab, name: str = "fpb") -> int | None:
    with connect(tab.db_path) as db:
        return lines.get_line(db, name).active_version_id


def test_creating_a_line_with_bad_settings_shows_the_message_and_stores_nothing(tab):
    message, created = tab.create("ana", "fpb", BASE, "financial-sentiment", [], *form(replay_ratio=-1.0))
    assert created is None and "replay_ratio must be a number from 0 to 10" in message
    message, created = tab.create("ana", "fpb", "no-such-model", "financial-sentiment", [], *form())
    assert created is None and "is not in the catalog" in message
    message, created = tab.create("", "fpb", BASE, "financial-sentiment", [], *form())
    assert created is None and "Enter your name" in message
    assert tab.line_names() == []
    # Gradio sends whole numbers as floats: 25.0 rows is 25.
    message, created = tab.create("ana", "fpb", BASE, "financial-sentiment", ["inbox"], *form(min_new_rows=25.0))
    assert created == "fpb" and message.startswith("✓"), message
    with connect(tab.db_path) as db:
        line = lines.get_line(db, "fpb")
        assert (line.settings.min_new_rows, line.settings.queues, line.created_by) == (25, ["inbox"], "ana")


def test_settings_change_is_saved_audited_and_a_bad_value_changes_nothing(tab):
    tab.create("ana", "fpb", BASE, "financial-sentiment", [], *form())
    message = tab.save_settings("bo", "fpb", [], *form(heldout_fraction=0.95))
    assert "heldout_fraction must be a number from 0 to 0.9" in message
    assert tab.show("fpb").settings == form()  # unchanged
    message = tab.save_settings("bo", "fpb", [], *form(interval_minutes=30.0, start_from="base", epochs=3.0))
    assert message.startswith("✓"), message
    shown = tab.show("fpb")
    values = dict(zip(view.FORM_FIELDS, shown.settings, strict=True))
    assert (values["interval_minutes"], values["start_from"], values["epochs"]) == (30, "base", 3.0)
    last = shown.events[0]
    assert last[1:3] == ["bo", "settings"] and "interval_minutes 0 → 30" in last[6]


def test_the_timeline_shows_each_stored_gate_with_its_interval(tab, settings):
    seeded = seed_line(tab.db_path, settings.data_dir / "adapter")
    shown = tab.show("fpb")
    rows = {row[0]: dict(zip(view.TIMELINE_HEADERS, row, strict=True)) for row in shown.timeline}
    rejected = rows[seeded["updates"][2]]
    assert rejected["status"] == "rejected" and (rejected["trained"], rejected["replayed"]) == (40, 20)
    assert rejected["held out"] == 8
    assert rejected["(b) regression set"] == "✗ fail · accuracy 0.800 → 0.710 (-0.090, 95% CI -0.130 to -0.060, n=60)"
    assert "dropped by 0.090" in rejected["reasons"]
    first = rows[seeded["updates"][0]]
    assert first["(a) held-out feedback"].startswith("✓ pass · accuracy 0.550 → 0.650 (+0.100, 95% CI +0.050")
    assert first["(c) probe text perplexity"] == "✓ pass · ppl 12.00 → 12.30 (+2.5%)"
    assert first["(c) probe reply perplexity"] == "✓ pass · ppl 15.00 → 15.30 (+2.0%)"
    assert first["promoted by"] == "gates" and first["candidate"] == seeded["versions"][0].label
    # The forgetting chart: base and candidate probe accuracy per update, oldest first.
    task = shown.probe_task
    cand = task[task.series == "candidate"]
    assert list(cand["update"]) == seeded["updates"] and list(cand["value"]) == pytest.approx([0.70, 0.68, 0.70])
    assert set(shown.probe_ppl.series) == {"base (text)", "candidate (text)", "base (replies)", "candidate (replies)"}


def test_the_settings_say_which_protection_is_on_and_what_it_cost(tab, settings):
    seed_line(tab.db_path, settings.data_dir / "adapter")
    protection = tab.show("fpb").protection
    assert protection.startswith("**Protection:** replay of earlier feedback 0.5× the new rows · general ")
    assert "each update continues the active version's adapter · no task slices · a candidate that forgot is " in (
        protection
    )
    assert "retrained once with twice the replay." in protection
    # Means over the three finished updates: 40 new + 20 replayed + 10 general rows, 110 s of which 70 training.
    assert "(mean of the last 3 updates): trained on 40 new + 20 replayed + 10 general rows (1.8× the new rows)" in (
        protection
    )
    assert "110 s an update: training 70 s, self-rehearsal 5 s, gates 30 s." in protection
    changed = {"replay_ratio": 0.0, "start_from": "stacked", "orthogonal_weight": 0.5, "forgetting_retries": 0}
    changed["tasks"] = [{"name": "sentiment", "dataset": "fpb-slice"}, {"name": "intents", "dataset": "clinc"}]
    with connect(tab.db_path) as db:
        lines.update_settings(db, "fpb", changed, user="root")
    protection = tab.show("fpb").protection
    assert "no feedback replay" in protection and "stacks a fresh adapter on the frozen active version" in protection
    assert "O-LoRA weight 0.5 · gated on 2 task slices · no retry after forgetting." in protection
    # A line with no finished update says when the cost shows.
    tab.create("ana", "fresh", BASE, "financial-sentiment", [], *form())
    assert tab.show("fresh").protection.endswith("What it costs shows here after the first finished update.")


def test_status_line_names_the_active_version_the_candidate_and_the_trigger(tab, settings):
    seeded = seed_line(tab.db_path, settings.data_dir / "adapter")
    text = tab.status_line("fpb")
    v2, v3 = seeded["versions"][1], seeded["versions"][2]
    assert f"**Active:** {v2.label}" in text and f"**Candidate:** {v3.label}" in text
    assert "waiting for 500 more accepted rows" in text and "**Running:** no update" in text
    with connect(tab.db_path) as db:
        db["loop_updates"].insert(
            {"line_id": 1, "status": "running", "stage": "training", "job_id": 7, "started_at": lines.now()}
        )
    assert "**Running:** update #4, stage training, training job #7" in tab.status_line("fpb")
    assert tab.status_line(None) == "Pick a line, or create one below."


def test_promote_by_hand_and_rollback_move_the_active_version_with_events(tab, settings):
    seeded = seed_line(tab.db_path, settings.data_dir / "adapter")
    v1, v2, v3 = seeded["versions"]
    rejected_update = seeded["updates"][2]
    shown = tab.show("fpb")
    assert [value for _, value in shown.rejected] == [rejected_update]
    assert [value for _, value in shown.versions] == [v3.id, v2.id, v1.id, BASE_CHOICE]
    # Without the tick nothing moves.
    assert "Tick 'I am sure'" in tab.promote("root", "fpb", rejected_update, False)
    assert active_id(tab) == v2.id
    message = tab.promote("root", "fpb", rejected_update, True)
    assert message.startswith("✓") and v3.label in message, message
    assert active_id(tab) == v3.id
    with connect(tab.db_path) as db:
        assert get_update(db, rejected_update).promoted_by == "root"
    assert "Tick 'I am sure'" in tab.rollback("root", "fpb", v1.id, False)
    message = tab.rollback("root", "fpb", v1.id, True)
    assert message.startswith("✓") and v1.label in message
    assert active_id(tab) == v1.id
    assert tab.rollback("root", "fpb", BASE_CHOICE, True).endswith(f"serves {BASE} now.")
    assert active_id(tab) is None
    events = tab.show("fpb").events
    assert [e[1:5] for e in events[:3]] == [
        ["root", "rollback", v1.label, view.BASE],
        ["root", "rollback", v3.label, v1.label],
        ["root", "promote", v2.label, v3.label],
    ]
    assert "Enter your name" in tab.rollback(" ", "fpb", v2.id, True) and active_id(tab) is None


def test_run_now_returns_at_once_and_the_update_reports_no_feedback(tab, settings):
    tab.create("ana", "fpb", BASE, "financial-sentiment", [], *form())
    assert "no loop scheduler" in tab.run_now("ana", "fpb")
    engine = tab.engine
    tab.scheduler = Scheduler(engine, jobs=None, runner=EvalRunner(engine, tab.library), check_s=60, start=False)
    message = tab.run_now("ana", "fpb")
    assert message.startswith("▶️ Started an update"), message
    tab.threads["fpb"].join(timeout=60)
    with connect(tab.db_path) as db:
        [update] = list_updates(db, "fpb")
    # Zero accepted rows: the update fails with the reason and nothing was trained.
    assert update.status == "failed" and "no new accepted feedback" in update.error
    assert update.trigger == "manual" and update.job_id is None
    assert set(update.timings) == {"failed_s", "total_s"}  # it failed gathering its rows: the time is still kept
    assert "Running:** no update" in tab.status_line("fpb")


def test_volume_counts_the_lines_queue_and_bad_check_interval_is_refused(tab, monkeypatch):
    with connect(tab.db_path) as db:
        add_accepted(db, 3, queue="fpb-review")
    tab.create("ana", "fpb", BASE, "financial-sentiment", ["fpb-review"], *form())
    volume = tab.show("fpb").volume
    assert volume[volume.series == "responses"]["count"].sum() == 3
    monkeypatch.setenv("LLMPLAY_LOOP_CHECK_S", "soon")
    with pytest.raises(Exception, match="LLMPLAY_LOOP_CHECK_S must be a number"):
        check_interval()
    monkeypatch.setenv("LLMPLAY_LOOP_CHECK_S", "0")
    assert check_interval() == 0


def test_comparing_a_run_that_does_not_exist_says_so(tab):
    text, rows = tab.compare_run(999)
    assert text.startswith("⚠️ Error:") and "999" in text and rows == []
    assert tab.compare_run(None) == ("", [])


def test_a_gate_run_shows_the_paired_comparison_and_the_rows_that_got_worse(engine):
    """A real two-column run of SmolLM2 (baseline / candidate, as the gates make it): the tab shows the same
    paired comparison the Evaluate tab computes, and one row per row where the candidate scored lower."""
    import pandas as pd

    from llmplay.datasets import ColumnMapping, save_dataset
    from llmplay.engine import GenerationParams
    from llmplay.evaluation.config import ColumnConfig, MetricConfig, RunConfig
    from llmplay.evaluation.results import compare_columns, load_results

    library = TemplateLibrary.from_settings(engine.settings, folder=ROOT / "prompts")
    rows = [
        ("Operating profit doubled to a record.", "positive"),
        ("The company cut 300 jobs after a loss.", "negative"),
        ("The meeting is held in Espoo.", "neutral"),
    ]
    frame = pd.DataFrame(rows, columns=["text", "label"], dtype=object)
    save_dataset(engine.settings, "loop-tab-gate", frame, ColumnMapping({"text": "text"}, "label"), source="test")
    # The "candidate" translates the sentence instead of labelling it: it scores lower wherever the baseline
    # was right.
    columns = tuple(
        ColumnConfig(template, BASE, params=GenerationParams(max_new_tokens=6), label=label)
        for label, template in (("baseline", "financial-sentiment"), ("candidate", "translate-en-de"))
    )
    config = RunConfig(dataset="loop-tab-gate", columns=columns, metrics=(MetricConfig("accuracy"),))
    run_id = EvalRunner(engine, library).run(config)
    text, regressed = LoopTab(engine, library).compare_run(run_id)
    expected = compare_columns(load_results(engine.settings, run_id), 0, 1, "accuracy")
    assert text.startswith(expected.describe()) and f"Open run **#{run_id}**" in text
    assert regressed and [r[0] for r in regressed] == expected.difference.worse
    assert all(r[5] > r[6] for r in regressed)  # baseline score above the candidate's on each
    assert {r[2] for r in regressed} <= {"positive", "negative", "neutral"}
