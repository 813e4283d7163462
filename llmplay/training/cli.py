"""`llmplay train CONFIG.yaml [--resume JOB]`, `llmplay train list` and `llmplay versions`.

``train`` runs a job in the foreground through the same entry point the app starts as a child process
(llmplay.training.entry), so a script, CI and the Train tab train the same way; progress goes to the terminal
and to SQLite (the Train tab shows a job started here too). For several processes or GPUs run the entry under
a launcher instead: ``torchrun --nproc_per_node N -m llmplay.training.entry CONFIG.yaml``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from llmplay import cliargs
from llmplay.errors import LlmplayError
from llmplay.models import registry
from llmplay.settings import Settings
from llmplay.training import records


def add_train_commands(subparsers) -> None:
    t = subparsers.add_parser(
        "train", help="run a fine-tuning job from a YAML config in the foreground (`llmplay train list`: the jobs)"
    )
    t.add_argument("config", type=cliargs.path, help="the job's YAML file (see llmplay/training/config.py), or `list`")
    t.add_argument(
        "--resume", metavar="JOB", type=cliargs.whole("record_id"), help="continue job JOB from its last checkpoint"
    )
    t.add_argument("--json", action="store_true", help="`train list`: print the jobs as JSON")
    v = subparsers.add_parser("versions", help="list trained versions (adapters and fine-tuned encoders)")
    v.add_argument("--json", action="store_true", help="print the versions as JSON")


def cmd_train(args, settings: Settings) -> int:
    if args.config == "list" and not Path("list").exists():
        return _list_jobs(settings, args.json)
    if not Path(args.config).is_file():
        raise LlmplayError(f"No training config at {args.config!r}: give the path of a YAML file.")
    # The entry reads its settings from the environment: pass on a --data-dir given to this command.
    os.environ["LLMPLAY_DATA_DIR"] = str(settings.data_dir)
    from llmplay.training import entry  # imports torch: only when a job really runs

    argv = [args.config] + (["--job", str(args.resume), "--resume"] if args.resume else [])
    return entry.main(argv)


def _list_jobs(settings: Settings, as_json: bool) -> int:
    jobs = records.list_jobs(settings.db_path, limit=200) if settings.db_path.exists() else []
    if as_json:
        keys = ("id", "name", "status", "step", "total_steps", "created_at", "finished_at", "error", "version_id")
        print(json.dumps([{k: getattr(j, k) for k in keys} for j in jobs], ensure_ascii=False))
        return 0
    if not jobs:
        print("No training jobs yet: `llmplay train CONFIG.yaml`, or the web app's Train tab.")
        return 0
    print(f"{'job':>5}  {'status':<10} {'step':>11}  {'base model':<24} name")
    for j in jobs:
        step = f"{j.step or 0}/{j.total_steps or '?'}"
        print(f"{j.id:>5}  {j.status:<10} {step:>11}  {j.config.get('base_model', ''):<24} {j.name}")
        if j.error:
            print(f"{'':>7}{j.error[:200]}")
    return 0


def cmd_versions(args, settings: Settings) -> int:
    versions = registry.list_versions(settings.db_path)
    if args.json:
        keys = ("id", "label", "base_model", "kind", "method", "task", "path", "metrics", "job_id", "created_at")
        print(json.dumps([{k: getattr(v, k) for k in keys} for v in versions], ensure_ascii=False))
        return 0
    if not versions:
        print("No trained versions yet: a finished training job registers one.")
        return 0
    for v in versions:
        metrics = ", ".join(f"{k} {val:.4g}" for k, val in v.metrics.items() if isinstance(val, int | float))
        print(f"{v.label}  ({v.kind}, {v.method or '-'}, job #{v.job_id}, {v.created_at[:16]})  {metrics}")
    return 0
