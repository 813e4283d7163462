"""llmplay's SQLite database (``Settings.db_path``): opening it and its migrations.

Every feature that keeps data adds its tables here as a new migration at the end of the list
(sqlite-utils' ``Migrations``: each runs once, in a transaction, recorded in ``_sqlite_migrations``).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

MIGRATIONS = Migrations("llmplay")


@MIGRATIONS()
def m001_template_versions(db: Database) -> None:
    db["template_versions"].create(
        {
            "id": int,
            "template": str,  # template name (= file name in prompts/ without .yaml)
            "number": int,  # 1, 2, ... per template
            "content": str,  # the whole YAML file
            "content_hash": str,  # sha256 of content
            "created_at": str,  # ISO 8601, UTC
            "author": str,
            "message": str,
        },
        pk="id",
        not_null={"template", "number", "content", "content_hash", "created_at"},
    )
    db["template_versions"].create_index(["template", "number"], unique=True)


@MIGRATIONS()
def m002_datasets(db: Database) -> None:
    db["datasets"].create(
        {
            "id": int,
            "name": str,  # unique, chosen by the user; also part of the file name
            "content_hash": str,  # sha256 of the normalised JSONL file
            "rows": int,
            "columns": str,  # JSON list, in file order
            "mapping": str,  # JSON: {"variables": {template variable: column}, "reference": column or null}
            "source": str,  # the uploaded file's name (or "builtin:<name>")
            "file": str,  # file name under <data_dir>/datasets/
            "created_at": str,  # ISO 8601, UTC
        },
        pk="id",
        not_null={"name", "content_hash", "rows", "columns", "mapping", "file", "created_at"},
    )
    db["datasets"].create_index(["name"], unique=True)


@MIGRATIONS()
def m003_eval_runs(db: Database) -> None:
    db["eval_runs"].create(
        {
            "id": int,
            "name": str,
            "status": str,  # queued | running | done | cancelled | failed | interrupted
            "config": str,  # JSON of RunConfig, with each column's resolved template version id
            "dataset": str,
            "dataset_hash": str,
            "rows": int,  # rows evaluated (after sampling)
            "total_cells": int,  # rows x columns
            "done_cells": int,
            "generated_cells": int,  # cells the models had to generate in this run
            "cached_cells": int,  # cells reused from earlier runs
            "failed_cells": int,
            "error": str,
            "summary": str,  # JSON scoreboard, written when the run ends
            "created_at": str,
            "started_at": str,
            "finished_at": str,
            "elapsed_s": float,
            "pid": int,  # the process running it: a run left "running" by a dead process is marked interrupted
        },
        pk="id",
        not_null={"name", "status", "config", "created_at"},
    )
    # The rows a run evaluated (after sampling), kept with the run so it can be reopened after the dataset changes.
    db["eval_rows"].create(
        {"run_id": int, "row_index": int, "source_index": int, "data": str},
        pk=("run_id", "row_index"),
        foreign_keys=[("run_id", "eval_runs", "id")],
    )
    # One stored model output, found again by its cache key (rendered prompt, model, adapter, params, mode).
    db["eval_outputs"].create(
        {
            "id": int,
            "cache_key": str,
            "mode": str,  # generate | likelihood | judge
            "model": str,
            "adapter": str,
            "template_version_id": int,
            "prompt": str,  # exactly what the model saw
            "params": str,  # JSON
            "text": str,
            "prompt_tokens": int,
            "completion_tokens": int,
            "latency_s": float,
            "finish_reason": str,
            "details": str,  # JSON, e.g. each option's log-probability in likelihood mode
            "created_at": str,
        },
        pk="id",
        not_null={"cache_key", "mode", "model", "prompt", "params", "created_at"},
    )
    db["eval_outputs"].create_index(["cache_key"], unique=True)
    # One (row, column) of a run: which output it used, the parsed answer and its per-row scores.
    db["eval_cells"].create(
        {
            "run_id": int,
            "row_index": int,
            "column_index": int,
            "output_id": int,
            "answer": str,  # the answer parsed from the reply; NULL when unparseable
            "scores": str,  # JSON {metric: per-row score}
            "judge_output_id": int,
            "judge_score": float,
            "cached": int,  # 1 when the output came from an earlier run
            "error": str,
        },
        pk=("run_id", "row_index", "column_index"),
        foreign_keys=[("run_id", "eval_runs", "id")],
    )


def _arena_sides() -> dict[str, type]:
    """The columns that say who sat in position a and b of a blind battle, and what each wrote.

    Part of m004: changing it would change an applied migration; add columns in a new migration instead.
    """
    columns: dict[str, type] = {}
    for side in ("a", "b"):
        columns |= {
            f"model_{side}": str,
            f"adapter_{side}": str,  # NULL: the base model
            f"template_version_{side}": int,  # the contestant's own template version (template-vs-template battles)
            f"model_version_{side}": str,  # weights fingerprint, when the caller knows it
            f"output_{side}": str,
        }
    return columns


@MIGRATIONS()
def m004_arena_votes(db: Database) -> None:
    # A blind battle, kept so that a vote can be matched to its hidden identities even after a restart.
    db["arena_battles"].create(
        {
            "id": str,  # random hex: the only handle the browser gets
            "created_at": str,
            "user": str,
            "template": str,  # template name the input was rendered from (NULL: free prompt)
            "template_version_id": int,  # the version shared by both sides
            "input": str,  # JSON: the prompt string or the chat messages
            "params": str,  # JSON decoding parameters
            **_arena_sides(),
            "revealed_at": str,  # set by the first vote or reveal; votes after it are not counted
        },
        pk="id",
        not_null={"created_at", "input", "model_a", "model_b"},
    )
    # One vote. It repeats the battle's content so the leaderboard and exports need this table only.
    db["arena_votes"].create(
        {
            "id": int,
            "battle_id": str,
            "created_at": str,
            "user": str,
            "template": str,
            "template_version_id": int,
            "input": str,
            "params": str,
            **_arena_sides(),
            "winner": str,  # a | b | tie | both_bad
            "counted": int,  # 1: cast blind; 0: cast after the identities were shown (kept, not rated)
        },
        pk="id",
        not_null={"battle_id", "created_at", "input", "model_a", "model_b", "winner", "counted"},
        foreign_keys=[("battle_id", "arena_battles", "id")],
    )
    db["arena_votes"].create_index(["created_at"])
    db["arena_votes"].create_index(["template"])


@MIGRATIONS()
def m005_feedback_inbox(db: Database) -> None:
    # Training signal waiting for the feedback store / continual-learning loop to pick it up.
    db["feedback_inbox"].create(
        {
            "id": int,
            "kind": str,  # preference | correction
            "prompt": str,  # JSON: the prompt string or the chat messages
            "chosen": str,  # preference: the better reply
            "rejected": str,  # preference: the worse reply; correction: the reply being corrected
            "correction": str,  # correction: the answer the user wrote
            "model": str,  # who wrote chosen (preference) or the corrected reply
            "adapter": str,
            "rejected_model": str,  # preference: who wrote rejected
            "rejected_adapter": str,
            "template_version_id": int,
            "source": str,  # arena-vote:<id> | compare | playground ...
            "user": str,
            "created_at": str,
            "consumed_at": str,  # set by whatever turns the item into training data
        },
        pk="id",
        not_null={"kind", "prompt", "source", "created_at"},
    )
    db["feedback_inbox"].create_index(["source"])


@MIGRATIONS()
def m006_training(db: Database) -> None:
    # A fine-tuning job: one run of `llmplay train`, started by the app as a child process or from a shell.
    db["training_jobs"].create(
        {
            "id": int,
            "name": str,  # the adapter / model line it trains (the version's name)
            "status": str,  # queued | running | done | failed | cancelled
            "config": str,  # JSON of TrainConfig
            "created_at": str,
            "started_at": str,
            "finished_at": str,
            "pid": int,  # the training process; a "running" job whose pid is gone is marked failed
            "log_path": str,  # the child's stdout/stderr (a file, never a pipe)
            "output_dir": str,  # checkpoints, TensorBoard events, the final adapter
            "step": int,
            "total_steps": int,
            "checkpoint": str,  # last checkpoint folder (Resume continues from it)
            "cancel_requested": int,  # 1: the app asked the job to stop
            "error": str,
            "version_id": int,  # the adapter version a finished job registered
            "user": str,
        },
        pk="id",
        not_null={"name", "status", "config", "created_at"},
    )
    db["training_jobs"].create_index(["status"])
    # One logged step of a job (train loss) or one evaluation (validation loss / metrics).
    db["training_progress"].create(
        {
            "id": int,
            "job_id": int,
            "created_at": str,
            "step": int,
            "total_steps": int,
            "epoch": float,
            "loss": float,
            "eval_loss": float,
            "learning_rate": float,
            "tokens_per_s": float,
            "elapsed_s": float,
            "eta_s": float,
            "metrics": str,  # JSON: other eval metrics (accuracy, macro_f1, entity_f1, ...)
        },
        pk="id",
        not_null={"job_id", "created_at", "step"},
        foreign_keys=[("job_id", "training_jobs", "id")],
    )
    db["training_progress"].create_index(["job_id", "step"])
    # A trained version: a LoRA-family / prompt-tuning adapter on a base model, or a fine-tuned encoder
    # (kind classifier / tagger). Offered by name in every model picker as soon as its row exists.
    db["model_versions"].create(
        {
            "id": int,
            "name": str,  # the line's name, e.g. "fpb-lora"
            "version": int,  # 1, 2, ... per name
            "base_model": str,  # catalog name of the base
            "kind": str,  # adapter | classifier | tagger
            "method": str,  # lora | adalora | dora | prompt_tuning | full | head ...
            "task": str,  # sft | cpt | classification | ner | mlm
            "path": str,  # folder under <data_dir>/models/versions/
            "config": str,  # JSON of the TrainConfig that made it (hyper-parameters)
            "data_hash": str,  # sha256 of the training rows
            "row_ids": str,  # JSON list of training row ids (source indices)
            "metrics": str,  # JSON: validation metrics at the end
            "parent_id": int,  # the version training started from (continued training)
            "files_hash": str,  # sha256 of the saved files
            "job_id": int,
            "created_at": str,
            "deleted_at": str,  # set on delete; the row stays for history
        },
        pk="id",
        not_null={"name", "version", "base_model", "kind", "path", "created_at"},
    )
    db["model_versions"].create_index(["name", "version"], unique=True)


@MIGRATIONS()
def m007_feedback(db: Database) -> None:
    # The feedback store (llmplay/feedback/): queues of items that labelers answer; the arena's inbox moves here.
    db["feedback_queues"].create(
        {
            "id": int,
            "name": str,  # safe name, unique
            "task": str,  # correction | rating | label | preference
            "guidelines": str,  # Markdown shown beside each item
            "labels": str,  # JSON list: the label set of a label task (default: the template's labels)
            "rating_min": int,
            "rating_max": int,
            "k": int,  # submitted responses an item needs before it leaves the queue
            "show_reference": int,  # 1: the labeler sees the item's reference answer
            "accept_rule": str,  # auto | adjudicated | agreement | single (see feedback/accepted.py)
            "template": str,  # the template the queue's items were rendered with, when one
            "created_by": str,
            "created_at": str,
            "updated_at": str,
            "archived_at": str,
        },
        pk="id",
        not_null={"name", "task", "k", "created_at"},
    )
    db["feedback_queues"].create_index(["name"], unique=True)
    db["feedback_items"].create(
        {
            "id": int,
            "queue_id": int,
            "source": str,  # playground | compare | arena-vote:<id> | eval-run:<id> | upload | cli | inbox
            "input": str,  # JSON: the template's input variables (or {} when there were none)
            "prompt": str,  # JSON: the exact rendered prompt string or the chat messages
            "template": str,
            "template_version_id": int,
            "model": str,  # who wrote output
            "adapter": str,  # the adapter / model version label, when one
            "output": str,  # the reply under review (preference: reply A)
            "model_b": str,  # preference: who wrote output_b
            "adapter_b": str,
            "output_b": str,  # preference: reply B
            "reference": str,  # the expected answer, when the source had one (shown per the queue setting)
            "meta": str,  # JSON: anything else the source knows (eval run row, scores, thumbs)
            "dedupe_key": str,  # sha256 of what makes two items the same; unique per queue
            "status": str,  # open | discarded
            "created_by": str,
            "created_at": str,
        },
        pk="id",
        not_null={"queue_id", "source", "prompt", "status", "created_at", "dedupe_key"},
        foreign_keys=[("queue_id", "feedback_queues", "id")],
    )
    db["feedback_items"].create_index(["queue_id", "dedupe_key"], unique=True)
    db["feedback_items"].create_index(["queue_id", "status"])
    db["feedback_responses"].create(
        {
            "id": int,
            "item_id": int,
            "queue_id": int,
            "labeler": str,
            "kind": str,  # correction | rating | label | preference
            "value": str,  # JSON: text | int | label | "a" / "b" / "tie"
            "comment": str,
            "tags": str,  # JSON list of strings
            "status": str,  # draft | submitted | discarded
            "client_token": str,  # the same token twice is one response (double submit)
            "created_at": str,
            "updated_at": str,
            "submitted_at": str,
        },
        pk="id",
        not_null={"item_id", "queue_id", "labeler", "kind", "status", "created_at"},
        foreign_keys=[("item_id", "feedback_items", "id"), ("queue_id", "feedback_queues", "id")],
    )
    db["feedback_responses"].create_index(["item_id", "labeler"], unique=True)
    db["feedback_responses"].create_index(["client_token"], unique=True)
    db["feedback_responses"].create_index(["queue_id", "labeler", "status"])
    # A labeler holding an item's slot while they answer it; expired claims free the slot again.
    db["feedback_claims"].create(
        {"item_id": int, "labeler": str, "claimed_at": str, "expires_at": str},
        pk=("item_id", "labeler"),
        not_null={"claimed_at", "expires_at"},
        foreign_keys=[("item_id", "feedback_items", "id")],
    )
    db["feedback_adjudications"].create(
        {"item_id": int, "value": str, "adjudicator": str, "comment": str, "created_at": str, "updated_at": str},
        pk="item_id",
        not_null={"value", "adjudicator", "created_at"},
        foreign_keys=[("item_id", "feedback_items", "id")],
    )
    # Which training job / loop update turned an accepted item into training data.
    db["feedback_consumption"].create(
        {"id": int, "item_id": int, "consumer": str, "consumed_at": str},
        pk="id",
        not_null={"item_id", "consumer", "consumed_at"},
        foreign_keys=[("item_id", "feedback_items", "id")],
    )
    db["feedback_consumption"].create_index(["item_id", "consumer"], unique=True)
    # Every change to the feedback store: who, what, the row before and after (JSON).
    db["feedback_audit"].create(
        {
            "id": int,
            "at": str,
            "user": str,
            "action": str,
            "entity": str,
            "entity_id": int,
            "before": str,
            "after": str,
        },
        pk="id",
        not_null={"at", "action", "entity"},
    )
    db["feedback_audit"].create_index(["entity", "entity_id"])
    from llmplay.feedback.legacy import move_inbox  # the m005 inbox's rows become items + responses

    move_inbox(db)


@MIGRATIONS()
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


@MIGRATIONS()
def m009_users(db: Database) -> None:
    # Teams (llmplay/auth/): who may log in, with which role; no rows = single-user mode.
    db["users"].create(
        {
            "name": str,  # login name (safe name)
            "role": str,  # viewer | labeler | admin (llmplay/auth/roles.py)
            "password_hash": str,  # argon2id, never the password
            "created_at": str,
            "updated_at": str,
        },
        pk="name",
        not_null={"role", "password_hash", "created_at", "updated_at"},
    )
    # Refused attempts and every admin action; no foreign key: a removed user's rows stay.
    db["audit_log"].create(
        {
            "id": int,
            "at": str,
            "user": str,
            "role": str,
            "action": str,
            "target": str,
            "allowed": int,  # 1 = done, 0 = refused
            "detail": str,
        },
        pk="id",
        not_null={"at", "action", "allowed"},
    )
    db["audit_log"].create_index(["at"])


@MIGRATIONS()
def m010_output_backend(db: Database) -> None:
    # Which backend and precision computed a stored output ("transformers float32"); older rows: NULL, and
    # they were all computed by transformers in their cache key's dtype.
    db["eval_outputs"].add_column("backend", str)


@MIGRATIONS()
def m011_feedback_provenance(db: Database) -> None:
    # Feedback refers to outputs the server produced and stored (llmplay/feedback/provenance.py): finished
    # Compare results are kept here with the name of the caller who ran them.
    db["compare_results"].create(
        {"id": int, "user": str, "input": str, "columns": str, "created_at": str},  # JSON: the input, the columns
        pk="id",
        not_null={"columns", "created_at"},
    )
    db["compare_results"].create_index(["user"])
    db["feedback_items"].add_column("origin", str)  # JSON: the stored outputs it refers to, e.g. {"comparison": 3}
    db["feedback_responses"].add_column("role", str)  # the sender's role when sent from a reply; NULL: labeling
    db["feedback_queues"].add_column("accept_from", str)  # lowest role whose lone answer needs no review


@MIGRATIONS()
def m012_chat_replies(db: Database) -> None:
    # Finished Playground replies with the caller they were made for (llmplay/chat_replies.py): ratings and
    # corrections name one of these, never a reply text the client sends.
    db["chat_replies"].create(
        {"id": int, "user": str, "model": str, "prompt": str, "output": str, "created_at": str},  # prompt: JSON
        pk="id",
        not_null={"model", "prompt", "output", "created_at"},
    )
    db["chat_replies"].create_index(["output"])


def open_db(path: Path | str) -> Database:
    """Open (creating if needed) the database at ``path`` and apply pending migrations."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A busy timeout instead of failing at once when another process (CLI vs app) holds the write lock.
    db = Database(sqlite3.connect(str(path), timeout=30))
    # WAL: readers never block the writer nor each other; NORMAL is crash-safe (kill -9) under WAL.
    if db.journal_mode != "wal":
        db.enable_wal()
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA foreign_keys=ON")
    _apply_migrations(db)
    return db


def _apply_migrations(db: Database, patience_s: float = 30.0) -> None:
    """Apply pending migrations, retrying while another process applies them: two processes opening a new
    database at once (the app and a training job) read the migration state, then one's write fails at once
    with "database is locked" (a deferred read cannot wait for the write lock). A retry finds them applied."""
    deadline = time.monotonic() + patience_s
    while True:
        try:
            MIGRATIONS.apply(db)
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            if db.conn.in_transaction:
                db.conn.rollback()
            time.sleep(0.1)


@contextmanager
def immediate(db: Database) -> Iterator[Database]:
    """A write transaction that takes the write lock up front (``BEGIN IMMEDIATE``), so the busy timeout
    applies: a deferred transaction that reads and then writes fails at once with "database is locked" when
    another writer got in between. sqlite-utils calls inside nest as savepoints. Inside one already: nests."""
    if db.conn.in_transaction:
        with db.atomic():
            yield db
        return
    # Writers of this process queue on a lock first: SQLite's busy handler retries with sleeps of up to 100 ms,
    # which made the slowest of 20 concurrent labelers' submits wait ~0.5 s (bench/load.py); other processes
    # still wait in the busy handler. Reentrant, so a second connection in the same thread behaves as before.
    with _writer_lock(db):
        db.conn.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.rollback()
            raise
        else:
            try:
                db.conn.execute("COMMIT")
            except BaseException:
                db.rollback()
                raise


_WRITER_LOCKS: dict[str, threading.RLock] = {}
_WRITER_GUARD = threading.Lock()


def _writer_lock(db: Database) -> threading.RLock:
    path = db.execute("pragma database_list").fetchone()[2] or ":memory:"
    with _WRITER_GUARD:
        return _WRITER_LOCKS.setdefault(path, threading.RLock())


@contextmanager
def connect(path: Path | str) -> Iterator[Database]:
    """A short-lived connection: UI handlers run on many threads, and sqlite3 connections belong to one."""
    db = open_db(path)
    try:
        yield db
    finally:
        db.close()
