"""The process a training job runs in: ``python -m llmplay.training.entry CONFIG.yaml [--job ID] [--resume]``.

``llmplay train CONFIG.yaml`` calls ``main`` in the foreground; the app (jobs.py) starts the same command as a
child process with its output in a log file. Steps:

1. read and validate the YAML (``TrainConfig.from_dict``; every problem at once);
2. the job row: ``--job ID`` names one the app created, otherwise a new row is added (so a run from a shell shows
   in the Train tab); status ``running`` with this pid;
3. train: ``get_task(config.task).train`` (tasks/: ``causal.train_causal`` for sft / cpt, ``dpo.train_dpo`` for
   dpo, ``encoder.train_encoder`` for the encoder tasks). All take
   ``(config, settings, job_dir, callbacks, *, output_dir, resume_from)`` and return a result with ``output_dir,
   kind, task, base_model, metrics, history, data_hash, row_ids, train_s, steps, completed, notes``; they run
   every check that needs data or the model before the first step and raise an LlmplayError subclass;
   ``callbacks`` are callbacks.job_callbacks (TensorBoard under ``job_dir/tb``, progress rows, cancel);
   checkpoints go to ``job_dir/checkpoints``; ``--resume`` continues from the last one there;
4. a finished job's files move from a temporary folder to ``<data_dir>/models/versions/<name>/job-<id>/`` in
   one rename, the version is registered (config, data hash, row ids, validation metrics, parent, job) and the
   job is ``done``; one JSON summary line is printed last. A job on feedback (``data.source: feedback``)
   records its rows' feedback items as consumed by ``training-job:<id>``, so later jobs leave them out.

Exit codes (llmplay/exitcodes.py): 0 done; 2 bad config or data (nothing trained; the job is failed with the
message); 3 the run failed (the job is failed with the error) or was cancelled (the job is cancelled with its
last checkpoint: Resume continues from it; the job row tells the two apart); 130 Ctrl-C.

Cancel: SIGTERM (the app signals the job's process group) or the job row's ``cancel_requested``; the step in
progress finishes, a checkpoint is saved, then the process exits.

Scale path: the same command under a launcher, each process a data-parallel rank; only rank 0 writes rows and
files, all ranks train:

    torchrun --standalone --nproc_per_node 2 -m llmplay.training.entry CONFIG.yaml   # CPU: gloo backend
    accelerate launch --num_processes 8 -m llmplay.training.entry CONFIG.yaml         # GPUs / nodes

(``accelerate launch --cpu --num_processes 2`` starts a single process; two CPU processes need torchrun or an
accelerate MULTI_CPU config.)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import traceback
from pathlib import Path

from llmplay import exitcodes
from llmplay.errors import LlmplayError
from llmplay.models import registry
from llmplay.processes import lower_priority
from llmplay.settings import Settings
from llmplay.training import records
from llmplay.training.callbacks import StopRequest, install_sigterm_handler, job_callbacks, peak_rss_mb, rank
from llmplay.training.config import TrainConfig, TrainConfigError
from llmplay.training.tasks import get_task

CANCELLED = exitcodes.RUN_FAILED  # the shared table's "a run failed or was cancelled"


def parse_args(argv: list[str] | None):
    parser = argparse.ArgumentParser(prog="llmplay train", description="Run one fine-tuning job.")
    parser.add_argument("config", help="the job's YAML file")
    parser.add_argument("--job", type=int, help="the job row to run (the app creates it); default: a new one")
    parser.add_argument("--resume", action="store_true", help="continue the job from its last checkpoint")
    return parser.parse_args(argv)


def read_config(path: str) -> TrainConfig:
    import yaml

    from llmplay import yamlsafe

    try:
        data = yamlsafe.load_file(path)
    except FileNotFoundError:
        raise LlmplayError(f"No training config at {path!r}: give the path of a YAML file.") from None
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise LlmplayError(f"Cannot read the training config {path}: {exc}") from None
    return TrainConfig.from_dict(data)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    lower_priority(os.environ.get("LLMPLAY_JOB_NICE", ""))
    settings = Settings.from_env()
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    stop = StopRequest()
    install_sigterm_handler(stop)
    main_rank = rank() == 0
    job_id = args.job
    try:
        config = read_config(args.config)
    except LlmplayError as exc:
        return _refused(settings, job_id, exc, main_rank)
    if job_id is None:
        job_id = _new_job(settings, config, main_rank)
    folder = job_folder(settings, job_id)
    if main_rank:
        folder.mkdir(parents=True, exist_ok=True)
        records.update_job(
            settings.db_path, job_id, status="running", pid=os.getpid(), output_dir=str(folder), error=None,
            started_at=records.get_job(settings.db_path, job_id).started_at or records.now(), finished_at=None,
        )  # fmt: skip
        if args.resume:  # resuming is the user's answer to an earlier cancel
            records.update_job(settings.db_path, job_id, cancel_requested=0)
    final = registry.versions_dir(settings.data_dir) / config.name / f"job-{job_id}"
    staging = final.parent / f".job-{job_id}.partial"
    try:
        result = _train(config, settings, folder, job_id, stop, staging, args.resume)
    except LlmplayError as exc:
        return _refused(settings, job_id, exc, main_rank)
    except KeyboardInterrupt:  # Ctrl-C in a terminal: no checkpoint was asked for (SIGTERM saves one)
        if main_rank:
            records.update_job(settings.db_path, job_id, status="failed", error="Interrupted (Ctrl-C).",
                               finished_at=records.now())  # fmt: skip
        return exitcodes.INTERRUPTED
    except Exception as exc:  # a bug or a crash inside training: the job says so, the app keeps serving
        traceback.print_exc()
        if main_rank:
            error = f"Training failed: {type(exc).__name__}: {str(exc)[:2000]}"
            records.update_job(settings.db_path, job_id, status="failed", error=error, finished_at=records.now())
        return exitcodes.RUN_FAILED
    if not main_rank:
        return exitcodes.OK
    if not result.completed:
        checkpoint = _last_checkpoint(folder)
        records.update_job(
            settings.db_path, job_id, status="cancelled", checkpoint=checkpoint, finished_at=records.now(),
            step=result.steps,
        )  # fmt: skip
        _summary({"job": job_id, "status": "cancelled", "checkpoint": checkpoint, "steps": result.steps})
        return CANCELLED
    version = _register(settings, config, job_id, result, staging, final)
    records.update_job(
        settings.db_path, job_id, status="done", version_id=version.id if version else None,
        finished_at=records.now(), step=result.steps, checkpoint=_last_checkpoint(folder),
    )  # fmt: skip
    _summary(
        {
            "job": job_id,
            "status": "done",
            "version": version.label if version else None,
            "path": str(final),
            "steps": result.steps,
            "train_s": result.train_s,
            "metrics": result.metrics,
            "peak_rss_mb": peak_rss_mb(),
            "notes": result.notes,
        }
    )
    return exitcodes.OK


def job_folder(settings: Settings, job_id: int) -> Path:
    from llmplay.training.jobs import job_dir

    return job_dir(settings.data_dir, job_id)


def _train(config: TrainConfig, settings: Settings, folder: Path, job_id: int, stop, staging: Path, resume: bool):
    if staging.exists():
        shutil.rmtree(staging)  # left by an earlier attempt of this job that died while saving
    callbacks = job_callbacks(settings.db_path, job_id, folder / "tb", stop)
    resume_from = _last_checkpoint(folder) if resume else None
    if resume and resume_from:
        print(f"Resuming job {job_id} from {resume_from}", flush=True)
    task = get_task(config.task)  # tasks/: each task knows its trainer
    return task.train(config, settings, folder, callbacks, output_dir=staging, resume_from=resume_from)


def _register(settings: Settings, config: TrainConfig, job_id: int, result, staging: Path, final: Path):
    """Move the files into place in one rename, then add the version (the files exist before the row does)."""
    if final.exists():
        shutil.rmtree(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staging, final)
    if result.kind not in registry.KINDS:  # e.g. a masked-LM encoder: kept on disk, not a picker model
        return None
    parent_id = getattr(result, "parent_id", None)
    if parent_id is None and config.parent_version:
        parent = registry.find(settings.db_path, config.parent_version)
        parent_id = parent.id if parent else None
    stored = config.to_dict()
    if stored["data"].get("rows"):
        stored["data"]["rows"] = f"{len(stored['data']['rows'])} inline rows"  # the data hash and row ids say which
    version = registry.register(
        settings.db_path,
        name=config.name,
        base_model=config.base_model,
        kind=result.kind,
        path=final,
        method=config.method,
        task=config.task,
        config=stored,
        data_hash=result.data_hash,
        row_ids=list(result.row_ids),
        metrics=result.metrics,
        parent_id=parent_id,
        job_id=job_id,
    )
    if config.data.source == "feedback":  # the next job (and the loop) leaves these items out
        _mark_feedback_consumed(settings, list(result.row_ids), job_id)
    return version


def _mark_feedback_consumed(settings: Settings, item_ids: list, job_id: int) -> None:
    from llmplay.feedback.store import mark_consumed
    from llmplay.store import connect
    from llmplay.training.data_sources import CONSUMER_PREFIX

    with connect(settings.db_path) as db:
        mark_consumed(db, [int(i) for i in item_ids], f"{CONSUMER_PREFIX}{job_id}", user="training")


def _new_job(settings: Settings, config: TrainConfig, main_rank: bool) -> int:
    """A row for a job started from a shell. Under a launcher rank 0 creates it and tells the others."""
    job_id = None
    if main_rank:
        job_id = records.create_job(settings.db_path, config.to_dict(), status="running").id
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:
        job_id = _broadcast(job_id)
    return job_id


def _broadcast(value):
    import torch
    import torch.distributed as dist

    if not dist.is_initialized():  # accelerate reuses a process group that is already set up
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def _last_checkpoint(folder: Path) -> str | None:
    from transformers.trainer_utils import get_last_checkpoint

    checkpoints = folder / "checkpoints"
    return get_last_checkpoint(str(checkpoints)) if checkpoints.is_dir() else None


def _refused(settings: Settings, job_id: int | None, exc: Exception, main_rank: bool) -> int:
    message = str(exc)
    print(f"error: {message}", file=sys.stderr, flush=True)
    if job_id is not None and main_rank:
        records.update_job(settings.db_path, job_id, status="failed", error=message, finished_at=records.now())
    code = exitcodes.for_error(exc)
    return exitcodes.BAD_INPUT if isinstance(exc, TrainConfigError) else code


def _summary(values: dict) -> None:
    print(json.dumps(values, ensure_ascii=False, default=str), flush=True)


if __name__ == "__main__":
    sys.exit(main())
