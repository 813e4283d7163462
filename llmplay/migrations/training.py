"""Migrations of the fine-tuning jobs' tables (llmplay/training/) and of the trained versions they register
(``model_versions``, read by llmplay/models/registry.py)."""

from __future__ import annotations

from sqlite_utils import Database


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
