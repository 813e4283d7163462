"""A stand-in for ``python -m llmplay.training.entry`` that trains nothing, for the runner's own tests.

It follows the entry's contract: ``CONFIG.yaml --job ID [--resume]``; marks the job running with its pid,
writes a progress row per step, on SIGTERM saves a "checkpoint" and ends cancelled, with ``--resume``
continues from the last checkpoint, and ends done. ``max_steps`` sets the steps (0.2 s each); the name
picks a misbehaviour: ``crash-*`` raises after the first step, ``stubborn-*`` ignores SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

import yaml

from llmplay.settings import Settings
from llmplay.training import records

STEP_S = 0.2


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("config")
    parser.add_argument("--job", type=int, required=True)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)
    config = yaml.safe_load(Path(args.config).read_text())
    db = Settings.from_env().db_path
    folder = Path(args.config).parent
    stop = {"requested": False}
    if config["name"].startswith("stubborn"):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        signal.signal(signal.SIGTERM, lambda *_: stop.update(requested=True))
    records.update_job(db, args.job, status="running", pid=os.getpid())
    total = config["max_steps"]
    step = 0
    checkpoints = sorted(folder.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    if args.resume and checkpoints:
        step = json.loads((checkpoints[-1] / "state.json").read_text())["step"]
    print(f"fake entry: job {args.job} from step {step} of {total} (resume={args.resume})", flush=True)
    print(f"fake entry: LLMPLAY_JOB_NICE={os.environ.get('LLMPLAY_JOB_NICE')}", flush=True)
    while step < total:
        if stop["requested"]:
            target = folder / f"checkpoint-{step}"
            target.mkdir(exist_ok=True)
            (target / "state.json").write_text(json.dumps({"step": step}))
            records.update_job(db, args.job, status="cancelled", checkpoint=str(target), finished_at=records.now())
            print(f"fake entry: cancelled at step {step}", flush=True)
            return 0
        time.sleep(STEP_S)
        step += 1
        records.add_progress(db, args.job, step, total_steps=total, loss=1.0 / step, epoch=step / total)
        if config["name"].startswith("crash"):
            raise RuntimeError("boom inside the job")
    records.update_job(db, args.job, status="done", finished_at=records.now())
    print("fake entry: done", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
