"""Migrations of the continual-learning loop's tables (llmplay/loop/; the lines and their aliases are stored by
llmplay/models/lines.py)."""

from __future__ import annotations

from sqlite_utils import Database


def m008_loop(db: Database) -> None:
    # Continual learning (llmplay/loop/): a model line is a name over trained versions with aliases.
    db["loop_lines"].create(
        {
            "id": int,
            "name": str,  # safe name, unique; also the training name of its versions
            "base_model": str,  # catalog name
            "template": str,  # the task: the template its feedback and gates render through
            "active_version_id": int,  # null: the base model is active
            "candidate_version_id": int,  # the last update's candidate (promoted or not)
            "settings": str,  # JSON of loop.lines.LineSettings (trigger, replay, gates, start point)
            "created_by": str,
            "created_at": str,
            "updated_at": str,
        },
        pk="id",
        not_null={"name", "base_model", "template", "settings", "created_at"},
        foreign_keys=[("active_version_id", "model_versions", "id"), ("candidate_version_id", "model_versions", "id")],
    )
    db["loop_lines"].create_index(["name"], unique=True)
    db["loop_updates"].create(
        {
            "id": int,
            "line_id": int,
            "status": str,  # running | promoted | rejected | failed
            "trigger": str,  # rows | interval | cli | manual | bench
            "stage": str,  # data | training | gates | done
            "started_at": str,
            "finished_at": str,
            "pid": int,  # the process running the update; a running update whose pid is gone is failed
            "job_id": int,  # the training job
            "parent_version_id": int,  # what it started from (null: the base)
            "active_version_id": int,  # what was active when it started (the gates' baseline)
            "candidate_version_id": int,
            "feedback_ids": str,  # JSON: accepted feedback items trained on (new)
            "replay_ids": str,  # JSON: earlier feedback items replayed
            "general_ids": str,  # JSON: general-data rows replayed (probe's replay split indices)
            "heldout_ids": str,  # JSON: the held-out feedback items gate (a) used
            "gates": str,  # JSON: per gate: metric, active, candidate, difference, interval, passed, reason
            "reasons": str,  # JSON list: why it was not promoted (empty when promoted)
            "promoted_by": str,  # 'gates' or the admin who promoted by hand
            "error": str,
        },
        pk="id",
        not_null={"line_id", "status", "started_at"},
        foreign_keys=[("line_id", "loop_lines", "id")],
    )
    # Exactly one running update per line, whoever starts it (scheduler, CLI, another app process).
    db.execute("create unique index loop_updates_one_running on loop_updates(line_id) where status = 'running'")
    db["loop_events"].create(
        {
            "id": int,
            "at": str,
            "user": str,
            "line_id": int,
            "action": str,  # create | settings | promote | reject | rollback | update-failed
            "from_version_id": int,
            "to_version_id": int,
            "update_id": int,
            "detail": str,  # JSON
        },
        pk="id",
        not_null={"at", "line_id", "action"},
        foreign_keys=[("line_id", "loop_lines", "id")],
    )


def m015_line_serving(db: Database) -> None:
    # A line served by an external OpenAI-compatible engine (llmplay/models/line_serving.py); null: llmplay serves it.
    db["loop_lines"].add_column("serve", str)


def m018_update_timings(db: Database) -> None:
    # Where an update's time went (JSON: data_s, rehearsal_s, train_s, gates_s, total_s): what protection costs.
    db["loop_updates"].add_column("timings", str)
