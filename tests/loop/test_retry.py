"""A candidate rejected only for forgetting is retrained within the same update with twice the replay, the
forgotten task's earlier rows first; a candidate whose own feedback gate failed is not. The code around the parts:
a real SQLite file and template library, training jobs that register a version without training, and gate
verdicts scripted per attempt (tests/loop/test_update_real.py and test_tasks_real.py run the real parts)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from llmplay.feedback import store
from llmplay.loop import gates as loop_gates
from llmplay.loop import lines
from llmplay.loop.gates import GateResult
from llmplay.loop.update import run_update
from llmplay.models import registry
from llmplay.store import connect
from llmplay.templates import TemplateLibrary
from tests.conftest import ROOT
from tests.loop.helpers import add_accepted

BASE = "smollm2-135m-instruct"
INTENTS = ["card_declined", "balance", "transfer"]


class Jobs:
    """Training jobs that register a version of the line at once; each job's row ids are kept."""

    def __init__(self, settings):
        self.settings, self.rows = settings, []

    def submit(self, config, user):
        self.rows.append([r["id"] for r in config["data"]["rows"]])
        return SimpleNamespace(id=len(self.rows))

    def wait(self, job_id, timeout):
        folder = self.settings.data_dir / "adapters" / str(job_id)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "adapter_config.json").write_text("{}")
        version = registry.register(self.settings.db_path, name="two", base_model=BASE, kind="adapter", path=folder)
        return SimpleNamespace(id=job_id, status="done", version_id=version.id, error=None)


def verdicts(monkeypatch, *attempts: str) -> list:
    """run_gates answers, one call after another: 'pass', 'forgot' (task slice sentiment dropped) or 'feedback'
    (the held-out feedback got worse). Returns the list each call's rows are appended to."""
    calls = []

    def fake(engine, runner, line, active, candidate, data, update_id):
        verdict = attempts[len(calls)]
        calls.append(data)
        worse, forgot = verdict == "feedback", verdict == "forgot"
        return [
            GateResult("feedback", "accuracy", 0.5, 0.4 if worse else 0.6, 0.0, passed=not worse,
                       reason="accuracy on held-out feedback changed by -0.100" if worse else ""),
            GateResult("task", "accuracy", 0.8, 0.7 if forgot else 0.8, 0.0, passed=not forgot,
                       reason="task 'sentiment' forgot" if forgot else "", task="sentiment"),
        ]  # fmt: skip

    monkeypatch.setattr(loop_gates, "run_gates", fake)
    return calls


@pytest.fixture()
def line(settings, monkeypatch):
    """Line "two" that learned sentiment (30 label rows, one promoted update) and now has 20 intent rows."""
    engine = SimpleNamespace(settings=settings)
    runner = SimpleNamespace(library=TemplateLibrary.from_settings(settings, folder=ROOT / "prompts"))
    jobs = Jobs(settings)
    with connect(settings.db_path) as db:
        lines.create_line(
            db, "two", BASE, "financial-sentiment",
            settings={"queues": ["fpb", "intents"], "min_new_rows": 10, "heldout_fraction": 0.0, "general_ratio": 0.0,
                      "replay_ratio": 0.25},
        )  # fmt: skip
        add_accepted(db, 30, queue="fpb")
        store.create_queue(db, "intents", "label", labels=INTENTS, user="admin")
    verdicts(monkeypatch, "pass")
    assert run_update(engine, "two", jobs=jobs, runner=runner).status == "promoted"
    with connect(settings.db_path) as db:
        for i in range(20):
            text = f"why was my card declined at the shop ({i})"
            item, _ = store.add_item(
                db, "intents", source="test", prompt=text, output="balance", input={"message": text},
                template="intent-detection", user="test",
            )  # fmt: skip
            store.respond(db, item.id, "ann", INTENTS[i % 3])
        lines.update_settings(db, "two", {"tasks": [{"name": "sentiment", "dataset": "fpb-slice"}]}, user="root")
    return SimpleNamespace(engine=engine, runner=runner, jobs=jobs)


def events(settings, action: str) -> list[dict]:
    with connect(settings.db_path) as db:
        return [e for e in lines.events(db, "two") if e["action"] == action]


def test_a_candidate_that_forgot_is_retrained_with_twice_the_replay_from_the_forgotten_task(
    line, settings, monkeypatch
):
    calls = verdicts(monkeypatch, "forgot", "pass")
    update = run_update(line.engine, "two", jobs=line.jobs, runner=line.runner)
    assert update.status == "promoted" and update.reasons == [] and update.timings["attempts"] == 2
    first, second = calls
    # 20 new intent rows; replay 0.25 x 20 = 5 sentiment rows, then twice that (at least the new rows): 20.
    assert (len(first.new), len(first.replay), len(second.replay)) == (20, 5, 20)
    assert {a.item.id for a in first.replay} < {a.item.id for a in second.replay}
    assert all(a.item.template == "financial-sentiment" for a in second.replay)
    assert second.new == first.new  # the same new rows: none spent by the first try
    # The second job trained on what the update records; the first candidate's rejection is an event.
    assert len(line.jobs.rows) == 3 and sum(r.startswith("replay") for r in line.jobs.rows[-1]) == 20
    assert sorted(update.replay_ids) == sorted(a.item.id for a in second.replay)
    [retry] = events(settings, "retry")
    assert retry["update_id"] == update.id and retry["detail"]["replay"] == "5 -> 20 rows"
    assert retry["from_version_id"] == update.active_version_id and retry["to_version_id"] is not None
    assert retry["detail"]["reasons"] == ["task 'sentiment' forgot"]


def test_a_retry_that_still_forgets_is_rejected_and_the_feedback_gate_is_never_retried(line, settings, monkeypatch):
    calls = verdicts(monkeypatch, "forgot", "forgot")
    update = run_update(line.engine, "two", jobs=line.jobs, runner=line.runner)
    assert update.status == "rejected" and len(calls) == 2 and update.timings["attempts"] == 2
    assert update.reasons == ["task 'sentiment' forgot"]
    # New intent rows for a second update whose own feedback got worse: its rows are to blame, no retry.
    with connect(settings.db_path) as db:
        lines.update_settings(db, "two", {"min_new_rows": 1}, user="root")
        add_accepted(db, 4, queue="fpb", start=100)
    calls = verdicts(monkeypatch, "feedback", "pass")
    update = run_update(line.engine, "two", jobs=line.jobs, runner=line.runner)
    assert update.status == "rejected" and len(calls) == 1 and update.timings["attempts"] == 1


def test_no_retry_when_turned_off(line, settings, monkeypatch):
    with connect(settings.db_path) as db:
        lines.update_settings(db, "two", {"forgetting_retries": 0}, user="root")
    calls = verdicts(monkeypatch, "forgot", "pass")
    update = run_update(line.engine, "two", jobs=line.jobs, runner=line.runner)
    assert update.status == "rejected" and len(calls) == 1 and not events(settings, "retry")
    with connect(settings.db_path) as db, pytest.raises(lines.LoopError, match="forgetting_retries must be"):
        lines.update_settings(db, "two", {"forgetting_retries": 5}, user="root")


def test_the_added_replay_comes_from_the_forgotten_tasks_first_and_none_when_nothing_is_left():
    from llmplay.loop.data import UpdateData, with_more_replay

    def rows(template: str, ids: range) -> list:
        return [SimpleNamespace(item=SimpleNamespace(id=i, template=template)) for i in ids]

    earlier = rows("intent-detection", range(10)) + rows("financial-sentiment@v2", range(10, 20))
    data = UpdateData(new=rows("ner-extraction", range(100, 108)), replay=earlier[:4], general=[], heldout=[],
                      earlier=earlier)  # fmt: skip
    more = with_more_replay(data, {"financial-sentiment"}, more_general=False, seed=1)
    added = more.replay[4:]
    assert more.replay[:4] == data.replay and len(more.replay) == 8  # twice 4 (the new rows are 8, no more)
    assert {a.item.template for a in added} == {"financial-sentiment@v2"}  # any version of the forgotten template
    assert with_more_replay(UpdateData(data.new, earlier, [], [], earlier=earlier), {"x"}, False, seed=1) is None
