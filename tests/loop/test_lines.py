"""Model lines, triggers and the one-update-per-line claim on a real SQLite file (no model needed)."""

from __future__ import annotations

import os
import threading

import pytest

from llmplay.loop import data as loop_data
from llmplay.loop import lines
from llmplay.loop.update import claim, due, get_update, mark_dead
from llmplay.store import connect
from tests.loop.helpers import add_accepted


@pytest.fixture
def db_path(tmp_path):
    return tmp_path / "llmplay.db"


def make_line(db, **settings):
    return lines.create_line(db, "fpb", "smollm2-135m-instruct", "financial-sentiment", settings=settings)


def test_settings_are_validated_with_every_problem_named(db_path):
    with connect(db_path) as db:
        with pytest.raises(lines.LoopError) as exc:
            make_line(db, min_new_rows=-1, replay_ratio="lots", start_from="scratch")
        message = str(exc.value)
        assert "min_new_rows" in message and "replay_ratio" in message and "start_from" in message
        with pytest.raises(lines.LoopError, match="Unknown line setting"):
            make_line(db, bogus=1)
        with pytest.raises(lines.LoopError, match="not in the catalog"):
            lines.create_line(db, "x", "no-such-model", "financial-sentiment", known_models=["smollm2-135m-instruct"])
        with pytest.raises(lines.LoopError, match="set a trigger"):
            make_line(db, min_new_rows=0, interval_minutes=0)
        assert lines.list_lines(db) == []  # nothing was stored by the refused calls


def test_trigger_fires_at_the_nth_row_and_exactly_one_update_starts_under_a_race(db_path):
    with connect(db_path) as db:
        line = make_line(db, min_new_rows=6, heldout_fraction=0.0)
        add_accepted(db, 5)
        assert not due(db, line)[0]
        assert claim(db, line, "cli") is None  # N-1 rows start nothing
        add_accepted(db, 1, start=5)
        is_due, why, new = due(db, line)
        assert is_due and new == 6, why
    barrier, got = threading.Barrier(4), []

    def race():
        with connect(db_path) as db:
            barrier.wait()
            got.append(claim(db, "fpb", "scheduler"))

    threads = [threading.Thread(target=race) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    started = [g for g in got if g is not None]
    assert len(started) == 1, got
    with connect(db_path) as db:
        assert get_update(db, started[0]).status == "running"
        assert db.execute("select count(*) from loop_updates").fetchone()[0] == 1


def test_no_update_starts_before_the_feedback_gate_has_enough_held_out_rows(db_path):
    with connect(db_path) as db:
        line = make_line(db, min_new_rows=3, heldout_fraction=0.2)
        add_accepted(db, 10)
        gathered = loop_data.gather(db, line)
        assert loop_data.usable_heldout(gathered) < 5 and len(gathered.new) >= 3  # the split hashes the item ids
        is_due, why, _ = due(db, line)
        assert not is_due and "more held-out rows" in why
        assert claim(db, line, "cli") is None


def test_an_update_whose_process_died_is_marked_failed_and_the_active_version_stays(db_path):
    with connect(db_path) as db:
        line = make_line(db, min_new_rows=1, heldout_fraction=0.0)
        add_accepted(db, 2)
        update_id = claim(db, line, "cli")
        db["loop_updates"].update(update_id, {"pid": 2**22 + 12345})  # a pid that is not running
        assert mark_dead(db) == 1
        update = get_update(db, update_id)
        assert update.status == "failed" and "died" in update.error
        assert lines.get_line(db, "fpb").active_version_id is None
        # Nothing was consumed by the dead update: its rows are still new.
        assert len(loop_data.gather(db, line).new) == 2
        assert claim(db, line, "cli") is not None  # and the next update can start


def test_heldout_items_are_stable_and_replay_takes_the_configured_share(db_path):
    from llmplay.feedback.store import mark_consumed

    with connect(db_path) as db:
        line = make_line(db, heldout_fraction=0.25, replay_ratio=0.5, general_ratio=0.25)
        add_accepted(db, 40)
        first = loop_data.gather(db, line)
        assert first.heldout and len(first.heldout) + len(first.new) == 40
        heldout_ids = {a.item.id for a in first.heldout}
        # A promoted update consumed every new row; 10 more arrive.
        update_id = (
            db["loop_updates"].insert({"line_id": line.id, "status": "promoted", "started_at": lines.now()}).last_pk
        )
        mark_consumed(db, first.feedback_ids, loop_data.consumer_name(line, update_id))
        add_accepted(db, 12, start=40)
        second = loop_data.gather(db, line, seed=1)
        assert {a.item.id for a in second.heldout} >= heldout_ids  # held out once, held out always
        assert not {a.item.id for a in second.new} & set(first.feedback_ids)
        assert len(second.replay) == round(len(second.new) * 0.5)
        assert {a.item.id for a in second.replay} <= set(first.feedback_ids)
        assert len(second.general) == round(len(second.new) * 0.25)
        loop_data.with_base_replies(second, {g["prompt"]: "A reply." for g in second.general})
        records = loop_data.training_records(second, None)
        replay_share = sum(r["id"].startswith("replay") for r in records) / sum(
            r["id"].startswith("fb") for r in records
        )
        assert replay_share == pytest.approx(0.5, abs=0.1)


def test_rows_of_a_rejected_update_are_not_trained_again_nor_replayed(db_path):
    from llmplay.feedback.store import mark_consumed

    with connect(db_path) as db:
        line = make_line(db, heldout_fraction=0.0)
        ids = add_accepted(db, 6)
        update_id = (
            db["loop_updates"].insert({"line_id": line.id, "status": "rejected", "started_at": lines.now()}).last_pk
        )
        mark_consumed(db, ids, loop_data.consumer_name(line, update_id))
        gathered = loop_data.gather(db, line)
        assert gathered.new == [] and gathered.replay == []


def test_promote_and_rollback_move_the_active_alias_with_an_audit_row(db_path):
    from llmplay.models import registry

    folder = db_path.parent / "v"
    folder.mkdir()
    (folder / "adapter_config.json").write_text("{}")
    with connect(db_path) as db:
        line = make_line(db)
    v1 = registry.register(db_path, name="fpb", base_model="smollm2-135m-instruct", kind="adapter", path=folder)
    v2 = registry.register(db_path, name="fpb", base_model="smollm2-135m-instruct", kind="adapter", path=folder)
    other = registry.register(db_path, name="other", base_model="smollm2-135m-instruct", kind="adapter", path=folder)
    with connect(db_path) as db:
        lines.set_active(db, line, v1.id, user="gates", action="promote")
        lines.set_active(db, line, v2.id, user="gates", action="promote")
        assert lines.active_label(db, lines.get_line(db, "fpb")) == v2.label
        back = lines.rollback(db, "fpb", user="root")
        assert back.active_version_id == v1.id
        last = lines.events(db, "fpb")[0]
        assert (last["action"], last["user"], last["from_version_id"], last["to_version_id"]) == (
            "rollback", "root", v2.id, v1.id,
        )  # fmt: skip
        with pytest.raises(lines.LoopError, match="belongs to 'other'"):
            lines.set_active(db, "fpb", other.id, user="root", action="promote")


def test_a_line_is_offered_by_name_and_serves_its_active_version(db_path, tmp_path):
    from llmplay.models import registry
    from llmplay.models.catalog import Catalog
    from llmplay.settings import Settings

    settings = Settings(data_dir=tmp_path)
    catalog = Catalog(settings.models_file, settings=settings)
    with connect(settings.db_path) as db:
        make_line(db)
    spec = catalog.get("line:fpb")
    assert spec.adapter is None and spec.location == catalog.get("smollm2-135m-instruct").location
    assert "line:fpb" in [s.name for s in catalog.versions()]
    folder = tmp_path / "adapter"
    folder.mkdir()
    (folder / "adapter_config.json").write_text("{}")
    v1 = registry.register(
        settings.db_path, name="fpb", base_model="smollm2-135m-instruct", kind="adapter", path=folder
    )
    with connect(settings.db_path) as db:
        lines.set_active(db, "fpb", v1.id, user="gates", action="promote")
    assert catalog.get("line:fpb").adapter == str(folder)
    assert os.path.samefile(catalog.get("line:fpb").adapter, catalog.get(v1.label).adapter)


def test_preference_pairs_of_the_lines_queues_become_dpo_rows_and_count_for_the_trigger(db_path):
    from llmplay.feedback import store
    from llmplay.loop.update import dpo_config

    with connect(db_path) as db:
        line = make_line(db, preference_queues=["prefs"], heldout_fraction=0.0, min_new_rows=2)
        store.create_queue(db, "prefs", "preference", user="admin")
        for i, choice in enumerate(["a", "b", "tie"]):
            item, _ = store.add_item(
                db, "prefs", source="arena", prompt=f"Question {i}?", output=f"A{i}", output_b=f"B{i}", user="u"
            )
            store.respond(db, item.id, "ann", choice)
        gathered = loop_data.gather(db, line)
        assert len(gathered.pairs) == 2  # a tie has no preferred reply
        rows = loop_data.preference_records(gathered, None)
        assert [(r["chosen"], r["rejected"]) for r in rows] == [("A0", "B0"), ("B1", "A1")]
        assert rows[0]["prompt"] == [{"role": "user", "content": "Question 0?"}]
        assert due(db, line)[0]  # two new pairs fire a trigger of two rows
        config = dpo_config(lines.get_line(db, "fpb"), rows, "smollm2-135m-instruct + fpb v1")
    from llmplay.training.config import TrainConfig

    parsed = TrainConfig.from_dict(config)  # a valid DPO job on the previous version
    assert parsed.task == "dpo" and parsed.parent_version == "smollm2-135m-instruct + fpb v1"


def test_two_lines_on_one_queue_hold_out_the_same_items_and_a_trained_item_is_never_held_out(db_path):
    from llmplay.feedback.store import mark_consumed

    with connect(db_path) as db:
        line = make_line(db, heldout_fraction=0.2)
        other = lines.create_line(db, "fpb-2", "smollm2-135m-instruct", "financial-sentiment",
                                  settings={"queues": ["fpb-review"], "heldout_fraction": 0.2})  # fmt: skip
        add_accepted(db, 40)
        first, second = loop_data.gather(db, line), loop_data.gather(db, other)
        assert first.heldout and [a.item.id for a in first.heldout] == [a.item.id for a in second.heldout]
        # A smaller share is a subset of a larger one.
        wide = lines.update_settings(db, "fpb-2", {"heldout_fraction": 0.5})
        assert {a.item.id for a in first.heldout} < {a.item.id for a in loop_data.gather(db, wide).heldout}
        # The first line trained on its new rows; raising its share later must not hold out any of them.
        update_id = (
            db["loop_updates"].insert({"line_id": line.id, "status": "promoted", "started_at": lines.now()}).last_pk
        )
        mark_consumed(db, first.feedback_ids, loop_data.consumer_name(line, update_id))
        raised = loop_data.gather(db, lines.update_settings(db, "fpb", {"heldout_fraction": 0.5}))
        assert not {a.item.id for a in raised.heldout} & set(first.feedback_ids)
        assert {a.item.id for a in raised.heldout} == {a.item.id for a in first.heldout}
        assert {a.item.id for a in raised.replay} <= set(first.feedback_ids)


def test_a_stacked_line_trains_a_fresh_adapter_on_the_frozen_active_version():
    from llmplay.loop.update import training_config
    from llmplay.training.config import TrainConfig

    def line_with(start_from: str) -> lines.Line:
        return lines.Line(1, "fpb", "smollm2-135m-instruct", "financial-sentiment", 3, None,
                          lines.LineSettings.from_dict({"start_from": start_from}), "u", lines.now(), None)  # fmt: skip

    rows = [{"id": "fb1", "messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a"}]}]
    parent = "smollm2-135m-instruct + fpb v1"
    stacked = TrainConfig.from_dict(training_config(line_with("stacked"), rows, parent))
    assert stacked.stack_on_parent and stacked.parent_version == parent
    continued = TrainConfig.from_dict(training_config(line_with("active"), rows, parent))
    assert not continued.stack_on_parent and continued.parent_version == parent
    # The first update of a stacked line has no version to stack on: a fresh adapter on the base.
    first = TrainConfig.from_dict(training_config(line_with("stacked"), rows, None))
    assert not first.stack_on_parent and first.parent_version is None
