"""One update of a line: claim it (exactly one per line), gather its rows, train one fine-tuning job, run
the gates, promote or keep the active version. The scheduler, ``llmplay loop run-once`` and the bench all run
``run_update``.

Exactly one: the claim inserts a ``running`` row under BEGIN IMMEDIATE, and a partial unique index on
``loop_updates(line_id) where status = 'running'`` refuses a second one from any process. An update whose
process is gone (``pid``) is marked failed at the next claim or status call; its rows were not marked
consumed (that happens only after its training job finished), and the active version never moved.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from llmplay.errors import LlmplayError
from llmplay.feedback.store import mark_consumed
from llmplay.loop import data as loop_data
from llmplay.loop import probe
from llmplay.loop.gates import MIN_HELDOUT
from llmplay.loop.lines import (
    UPDATES,
    Line,
    LoopError,
    active_label,
    event,
    get_line,
    load_for_serving,
    now,
    set_active,
)
from llmplay.processes import pid_alive
from llmplay.store import connect, immediate

log = logging.getLogger(__name__)
FINAL = ("promoted", "rejected", "failed")
TRAIN_TIMEOUT_S = 3 * 3600
DPO_MICRO_BATCH = 2


@dataclass(frozen=True)
class Update:
    id: int
    line_id: int
    status: str
    trigger: str | None
    stage: str | None
    started_at: str
    finished_at: str | None
    pid: int | None
    job_id: int | None
    parent_version_id: int | None
    active_version_id: int | None
    candidate_version_id: int | None
    feedback_ids: list
    replay_ids: list
    general_ids: list
    heldout_ids: list
    gates: list
    reasons: list
    promoted_by: str | None
    error: str | None
    timings: dict  # seconds per stage: data_s, rehearsal_s, train_s, gates_s, total_s (what the update cost)

    @classmethod
    def from_row(cls, row: dict) -> Update:
        lists = ("feedback_ids", "replay_ids", "general_ids", "heldout_ids", "gates", "reasons")
        timings = json.loads(row.get("timings") or "{}")  # none before migration m018
        return cls(**(row | {k: json.loads(row[k] or "[]") for k in lists} | {"timings": timings}))


def get_update(db, update_id: int) -> Update:
    rows = list(db[UPDATES].rows_where("id = ?", [update_id], limit=1))
    if not rows:
        raise LoopError(f"There is no update #{update_id}.")
    return Update.from_row(rows[0])


def list_updates(db, line: Line | str | int, limit: int = 100) -> list[Update]:
    line = get_line(db, line)
    return [
        Update.from_row(r) for r in db[UPDATES].rows_where("line_id = ?", [line.id], order_by="id desc", limit=limit)
    ]


def mark_dead(db) -> int:
    """Running updates whose process is gone become failed (the active version was never moved)."""
    dead = [
        r for r in db[UPDATES].rows_where("status = 'running'") if r["pid"] and not pid_alive(r["pid"])
    ] if db[UPDATES].exists() else []  # fmt: skip
    for r in dead:
        db[UPDATES].update(
            r["id"],
            {
                "status": "failed",
                "finished_at": now(),
                "error": f"The update's process (pid {r['pid']}) died during {r['stage']}.",
            },
        )
        event(db, "loop", r["line_id"], "update-failed", update_id=r["id"], stage=r["stage"])
    return len(dead)


def _last_finished(db, line: Line) -> str | None:
    row = db.execute(
        f"select max(finished_at) from {UPDATES} where line_id = ? and status in ('promoted', 'rejected')", [line.id]
    ).fetchone()
    return row[0] if row else None


def due(db, line: Line) -> tuple[bool, str, int]:
    """(is an update due, why / why not, new accepted rows waiting)."""
    s = line.settings
    gathered = loop_data.gather(db, line)
    new = len(gathered.new) + len(gathered.pairs)
    heldout = loop_data.usable_heldout(gathered)
    # Gate (a) could not judge an update yet: training now would only spend the rows.
    if new and s.heldout_fraction and heldout < MIN_HELDOUT:
        return False, f"{new} new accepted rows; waiting for {MIN_HELDOUT - heldout} more held-out rows", new
    if s.min_new_rows and new >= s.min_new_rows:
        return True, f"{new} new accepted rows (trigger: {s.min_new_rows})", new
    if s.interval_minutes and new:
        since = _last_finished(db, line) or line.created_at
        elapsed = (datetime.now(UTC) - datetime.fromisoformat(since)).total_seconds() / 60
        if elapsed >= s.interval_minutes:
            return (
                True,
                f"{elapsed:.0f} min since the last update (interval {s.interval_minutes} min), {new} new rows",
                new,
            )
    wants = []
    if s.min_new_rows:
        wants.append(f"{s.min_new_rows - new} more accepted rows")
    if s.interval_minutes:
        wants.append(f"the {s.interval_minutes}-minute interval (with at least one new row)")
    return False, f"{new} new accepted rows; waiting for " + " or ".join(wants), new


def claim(db, line: Line | str, trigger: str, *, force: bool = False) -> int | None:
    """Start an update row for ``line`` if one is due (or ``force``) and none is running; its id, or None."""
    try:
        with immediate(db):
            mark_dead(db)
            line = get_line(db, line)
            if db.execute(f"select 1 from {UPDATES} where line_id = ? and status = 'running'", [line.id]).fetchone():
                return None
            if not force and not due(db, line)[0]:
                return None
            return (
                db[UPDATES]
                .insert(
                    {
                        "line_id": line.id,
                        "status": "running",
                        "trigger": trigger,
                        "stage": "data",
                        "started_at": now(),
                        "pid": os.getpid(),
                        "active_version_id": line.active_version_id,
                    }
                )
                .last_pk
            )
    except sqlite3.IntegrityError:  # another process claimed it between our check and insert
        return None


def _set(db_path, update_id: int, **values) -> None:
    with connect(db_path) as db, immediate(db):
        db[UPDATES].update(
            update_id, {k: json.dumps(v) if isinstance(v, list | dict) else v for k, v in values.items()}
        )


def training_config(line: Line, records: list[dict], parent_label: str | None) -> dict:
    s = line.settings
    return {
        "name": line.name,
        "base_model": line.base_model,
        "task": "sft",
        "method": s.method,
        "parent_version": parent_label,
        "stack_on_parent": bool(parent_label) and s.start_from == "stacked",
        # O-LoRA needs adapters to keep away from: none below the first version
        "orthogonal_weight": s.orthogonal_weight if parent_label and s.start_from == "stacked" else 0.0,
        "data": {"source": "rows", "rows": records, "format": "messages", "validation_fraction": 0.0},
        "epochs": s.epochs,
        "learning_rate": s.learning_rate,
        "batch_size": s.batch_size,
        "seed": s.seed,
    }


def dpo_config(line: Line, pairs: list[dict], parent_label: str | None) -> dict:
    s = line.settings
    return {
        "name": line.name,
        "base_model": line.base_model,
        "task": "dpo",
        "method": "dora" if s.method == "dora" else "lora",  # DPO trains LoRA / DoRA adapters
        "parent_version": parent_label,
        "dpo_beta": s.dpo_beta,
        "data": {"source": "rows", "rows": pairs, "validation_fraction": 0.0},
        "epochs": s.epochs,
        "learning_rate": s.learning_rate,
        # Each pair is two sequences through the policy and the reference, and a template's prompt can be
        # hundreds of tokens: micro-batches of 2 pairs (6 pairs at once took 12 GB), accumulated to the batch.
        "batch_size": min(s.batch_size, DPO_MICRO_BATCH),
        "grad_accum": max(1, min(s.batch_size, 8) // DPO_MICRO_BATCH),
        "seed": s.seed,
    }


FORGETTING_GATES = ("regression", "task", "probe_task", "probe_perplexity", "probe_reply")


def _more_replay(line: Line, results: list, gathered, seed: int):
    """The rows of a retry when every failed gate says the candidate forgot something (not the feedback gate:
    then the new rows themselves made it worse): twice the replay, the forgotten tasks' rows first. None: no
    retry (another gate failed, or there is nothing more to replay)."""
    from llmplay.loop.tasks import task_sets

    failed = [r for r in results if not r.passed and not r.skipped]
    if not gathered.new or not failed or any(r.gate not in FORGETTING_GATES for r in failed):
        return None  # (replay goes with new rows: a DPO-only update has none to add it to)
    templates = {t.name: t.template or line.template for t in task_sets(line.settings.tasks)}
    forgotten = {templates[r.task] for r in failed if r.gate == "task" and r.task in templates}
    if any(r.gate == "regression" for r in failed):
        forgotten.add(line.settings.regression_template or line.template)
    more_general = any(r.gate.startswith("probe") for r in failed)
    return loop_data.with_more_replay(gathered, forgotten, more_general, seed)


def _train(engine, jobs, line: Line, update_id: int, gathered, template, parent_label, continued, user, timeout):
    """The update's training job(s) on ``gathered``: its rows recorded, then consumed once trained; the new
    version's id (the line's candidate)."""
    from llmplay.models import registry

    settings = engine.settings
    records = loop_data.training_records(gathered, template)
    _set(
        settings.db_path,
        update_id,
        stage="training",
        parent_version_id=line.active_version_id if continued else None,
        feedback_ids=gathered.feedback_ids + gathered.pair_ids,
        replay_ids=gathered.replay_ids,
        general_ids=[g["id"] for g in gathered.general],
        heldout_ids=[a.item.id for a in gathered.heldout],
    )
    configs = [training_config(line, records, parent_label)] if gathered.new else []
    if gathered.pairs:
        # After the SFT step its version is the DPO step's parent and reference; else the previous version.
        configs.append(dpo_config(line, loop_data.preference_records(gathered, template), parent_label))
    version_id = None
    for config in configs:
        if config["task"] == "dpo" and version_id is not None:
            config["parent_version"] = registry.get_version(settings.db_path, version_id).label
        job = jobs.submit(config, user=user)
        _set(settings.db_path, update_id, job_id=job.id)
        job = jobs.wait(job.id, timeout=timeout)
        if job.status != "done" or not job.version_id:
            what = job.error or "no version registered"
            raise LoopError(f"The update's {config['task']} job #{job.id} ended {job.status}: {what}")
        version_id = job.version_id
    with connect(settings.db_path) as db:
        # Trained on: recorded now, so a later update replays them (once this one is promoted).
        trained = gathered.feedback_ids + gathered.replay_ids + gathered.pair_ids
        mark_consumed(db, trained, loop_data.consumer_name(line, update_id), user=user)
        with immediate(db):
            db["loop_lines"].update(line.id, {"candidate_version_id": version_id, "updated_at": now()})
    return version_id


def run_update(
    engine,
    line: Line | str,
    *,
    jobs,
    runner,
    trigger: str = "cli",
    force: bool = False,
    user: str = "loop",
    train_timeout_s: float = TRAIN_TIMEOUT_S,
) -> Update | None:
    """Claim and run one update of ``line``; None when none is due (or one is already running).

    ``jobs``: the app's training JobRunner (the update's job waits in its queue like any other);
    ``runner``: an EvalRunner for the gates."""
    from llmplay.loop.gates import run_gates
    from llmplay.models import registry
    from llmplay.templates import load_template

    settings = engine.settings
    with connect(settings.db_path) as db:
        update_id = claim(db, line, trigger, force=force)
        if update_id is None:
            return None
        line = get_line(db, line)
    started = time.monotonic()
    timings: dict[str, float] = {}
    clock = [started]

    def lap(stage: str) -> None:  # the seconds since the last lap, under the stage's name
        at = time.monotonic()
        timings[stage] = round(timings.get(stage, 0.0) + at - clock[0], 1)
        clock[0] = at

    try:
        with connect(settings.db_path) as db:
            gathered = loop_data.gather(db, line, seed=line.settings.seed + update_id)
        if not gathered.new and not gathered.pairs:
            raise LoopError(f"Line {line.name!r} has no new accepted feedback to train on; nothing was started.")
        if line.settings.heldout_fraction and loop_data.usable_heldout(gathered) < MIN_HELDOUT:
            raise LoopError(
                f"Line {line.name!r} has {loop_data.usable_heldout(gathered)} held-out feedback rows with the "
                f"template's variables; the feedback gate needs {MIN_HELDOUT}. Collect more feedback or raise "
                "heldout_fraction; nothing was trained."
            )
        lap("data_s")
        template, _ = load_template(runner.library, line.template)
        with connect(settings.db_path) as db:
            active = active_label(db, line)
        continued = line.settings.start_from != "base" and line.active_version_id is not None
        parent_label = registry.get_version(settings.db_path, line.active_version_id).label if continued else None
        for attempt in range(1 + line.settings.forgetting_retries):
            if gathered.general:  # self-rehearsal: the general rows carry the base model's own replies
                prompts = [g["prompt"] for g in gathered.general]
                replies = probe.base_replies(engine, line.base_model, prompts, sampled=True)
                loop_data.with_base_replies(gathered, replies)
                lap("rehearsal_s")
            version_id = _train(
                engine, jobs, line, update_id, gathered, template, parent_label, continued, user, train_timeout_s
            )
            lap("train_s")
            candidate = registry.get_version(settings.db_path, version_id).label
            _set(settings.db_path, update_id, stage="gates", candidate_version_id=version_id)
            results = run_gates(engine, runner, line, active, candidate, gathered, update_id)
            lap("gates_s")
            reasons = [r.reason for r in results if not r.passed]
            retry = None
            if reasons and attempt < line.settings.forgetting_retries:
                retry = _more_replay(line, results, gathered, seed=line.settings.seed + update_id + attempt + 1)
            if retry is None:
                break
            with connect(settings.db_path) as db:  # the first candidate forgot: said, then retrained
                event(db, "gates", line.id, "retry", frm=line.active_version_id, to=version_id, update_id=update_id,
                      reasons=reasons, replay=f"{len(gathered.replay)} -> {len(retry.replay)} rows")  # fmt: skip
            gathered = retry
        timings["attempts"] = attempt + 1
        status = "promoted" if not reasons else "rejected"
        with connect(settings.db_path) as db:
            if status == "promoted":
                set_active(db, line, version_id, user="gates", action="promote", update_id=update_id)
            else:
                event(
                    db,
                    "gates",
                    line.id,
                    "reject",
                    frm=line.active_version_id,
                    to=version_id,
                    update_id=update_id,
                    reasons=reasons,
                )
        _set(
            settings.db_path,
            update_id,
            status=status,
            stage="done",
            finished_at=now(),
            gates=[r.to_dict() for r in results],
            reasons=reasons,
            promoted_by="gates" if status == "promoted" else None,
            timings=timings | {"total_s": round(time.monotonic() - started, 1)},
        )
    except Exception as exc:
        message = str(exc) if isinstance(exc, LlmplayError) else f"{type(exc).__name__}: {exc}"
        if not isinstance(exc, LlmplayError):
            log.exception("Loop update %s failed", update_id)
        lap("failed_s")
        _set(
            settings.db_path,
            update_id,
            status="failed",
            finished_at=now(),
            error=message,
            timings=timings | {"total_s": round(time.monotonic() - started, 1)},
        )
        with connect(settings.db_path) as db:
            event(db, user, line.id, "update-failed", update_id=update_id, error=message)
    log.info("Loop update %s of %s finished in %.0f s", update_id, line.name, time.monotonic() - started)
    with connect(settings.db_path) as db:
        return get_update(db, update_id)


def promote_candidate(db, update_id: int, *, user: str) -> Line:
    """An admin promotes a rejected update's candidate by hand (audited)."""
    update = get_update(db, update_id)
    if update.candidate_version_id is None:
        raise LoopError(f"Update #{update_id} has no candidate version (it {update.status}).")
    load_for_serving(db, update.line_id, update.candidate_version_id)  # outside the write lock: it waits on the engine
    with immediate(db):
        line = set_active(
            db,
            update.line_id,
            update.candidate_version_id,
            user=user,
            action="promote",
            update_id=update_id,
            by_hand=True,
        )
        db[UPDATES].update(update_id, {"status": "promoted", "promoted_by": user})
    return line
