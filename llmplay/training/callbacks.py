"""Trainer callbacks shared by the causal and encoder trainers: progress rows, cancel, AdaLoRA's rank allocator.

- ``ProgressCallback`` writes one ``training_progress`` row per log event (train loss every ``logging_steps``,
  validation loss and metrics after each evaluation) and keeps the job row's status, pid and step current.
- ``CancelCallback`` stops training at the end of the current step when the process got SIGTERM (the app's
  Cancel; ``install_sigterm_handler``) or the job row's ``cancel_requested`` flag is set; it asks the Trainer
  for a checkpoint first, so Resume continues from that step.
- ``AdaLoraAllocator`` calls peft's ``update_and_allocate`` after every optimizer step (the Trainer does not).

Only the main process (rank 0) writes rows; under torchrun every rank agrees on stopping (an all-reduce), or
the ranks that kept going would wait forever for the one that stopped.
"""

from __future__ import annotations

import os
import resource
import signal
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from llmplay.eta import remaining
from llmplay.training import records

DB_POLL_S = 1.0  # how often the cancel flag in SQLite is read (a cheap indexed read)


def peak_rss_mb() -> float:
    """This process's peak resident memory so far. VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the
    parent at fork/exec, so a job started by a 3 GB app would report 3 GB before doing anything."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)  # kB
    except (OSError, ValueError, IndexError):
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # KiB on Linux


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    return int(os.environ.get("RANK", "0"))


class StopRequest:
    """Set from a signal handler, read by CancelCallback; a plain flag is all a handler may touch safely."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.reason = ""

    def set(self, reason: str = "cancelled") -> None:
        self.reason = self.reason or reason
        self._event.set()

    def is_set(self) -> bool:
        return self._event.is_set()


def install_sigterm_handler(stop: StopRequest) -> None:
    """The first SIGTERM asks for a clean stop (checkpoint, then exit); a second one ends the process at once."""

    def handle(signum, frame):  # noqa: ARG001 - signal handler signature
        if stop.is_set():
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        stop.set("SIGTERM")

    signal.signal(signal.SIGTERM, handle)


class ProgressCallback(TrainerCallback):
    """Progress rows for the Train tab's bar, chart and ETA; tokens/s from ``state.num_input_tokens_seen``
    (the causal trainer counts the real tokens of its rows there; the encoder gets it from the Trainer).

    With a job ``folder`` it also keeps the job's live phase (records.write_phase): what runs now (loading
    model, tokenizing, training step k of n, evaluating batch i of m, saving), when it began, and the wall
    time of the finished steps, from which the tab counts the time left down (llmplay/eta.py)."""

    def __init__(self, db_path: Path, job_id: int | None, folder: Path | None = None):
        self.db_path = Path(db_path)
        self.job_id = job_id
        self.folder = Path(folder) if folder else None
        self.started = time.monotonic()
        self.start_step = 0
        self.start_tokens = 0
        self.last: dict[str, Any] = {}
        self.phase_record: dict[str, Any] = {}
        self._train_wall = 0.0  # time.time() when this session's first step began
        self._last_step_wall = 0.0  # time.time() when the last step ended
        self._eval_written = 0.0

    def _active(self, state=None) -> bool:
        return self.job_id is not None and (state is None or state.is_world_process_zero) and rank() == 0

    # ---- the live phase ----------------------------------------------------------------------------------
    def set_phase(self, phase: str, detail: str = "", **values: Any) -> None:
        """Say what the job does now (a trainer calls it before loading, tokenizing, saving)."""
        now = time.time()
        if self.phase_record.get("phase") != phase:
            values.setdefault("since", now)
        self.phase_record.update(phase=phase, detail=detail, updated=now, **values)
        if self._active() and self.folder is not None:
            records.write_phase(self.folder, **self.phase_record)

    def on_train_begin(self, args, state, control, **kwargs):
        self.started = time.monotonic()
        self.start_step = state.global_step  # a resumed job's speed counts only this session's steps
        self.start_tokens = state.num_input_tokens_seen or 0
        self._train_wall = self._last_step_wall = 0.0
        if self._active(state):
            records.update_job(
                self.db_path, self.job_id, status="running", pid=os.getpid(), total_steps=state.max_steps,
                step=state.global_step,
            )  # fmt: skip
        self.set_phase("training", step=state.global_step, total=state.max_steps, steps_done=0, busy_s=0.0)

    def on_step_begin(self, args, state, control, **kwargs):
        now = time.time()
        if not self._train_wall:
            self._train_wall = self._last_step_wall = now
        if self.phase_record.get("phase") != "training":  # back from an evaluation
            self.set_phase("training", step=state.global_step, total=state.max_steps)
        elif state.global_step == self.start_step:  # the first step: say when it began
            self.set_phase("training", step=state.global_step, total=state.max_steps, step_began=now)

    def on_step_end(self, args, state, control, **kwargs):
        now = time.time()
        self._last_step_wall = now
        done = state.global_step - self.start_step
        # busy_s: wall time from the first step's start to the last step's end (evaluations included: they
        # recur, so they belong in the pace); the tab counts down from it (eta.remaining).
        self.set_phase(
            "training", step=state.global_step, total=state.max_steps, steps_done=done,
            busy_s=round(now - self._train_wall, 3), last_step_at=now,
        )  # fmt: skip
        if self._active(state):
            records.update_job(self.db_path, self.job_id, step=state.global_step, total_steps=state.max_steps)

    def on_prediction_step(self, args, state, control, eval_dataloader=None, **kwargs):
        done = int(self.phase_record.get("eval_done", 0)) + 1 if self.phase_record.get("phase") == "evaluating" else 1
        try:
            total = len(eval_dataloader) if eval_dataloader is not None else None
        except TypeError:
            total = None
        if done == 1 or time.monotonic() - self._eval_written > 1.0 or done == total:
            self._eval_written = time.monotonic()
            self.set_phase("evaluating", "validation set", eval_done=done, eval_total=total)
        else:
            self.phase_record["eval_done"] = done

    def on_evaluate(self, args, state, control, **kwargs):
        self.set_phase("training", step=state.global_step, total=state.max_steps, eval_done=0)

    def on_train_end(self, args, state, control, **kwargs):
        self.set_phase("finishing", "final evaluation and saving")

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = dict(logs or {})
        elapsed = time.monotonic() - self.started
        steps = state.global_step - self.start_step
        busy = (self._last_step_wall - self._train_wall) if self._train_wall else elapsed
        eta = remaining(steps, state.max_steps - self.start_step, busy) if steps > 0 else None
        tokens = (state.num_input_tokens_seen or 0) - self.start_tokens
        row = {
            "total_steps": state.max_steps,
            "epoch": _number(logs.pop("epoch", state.epoch)),
            "loss": _number(logs.pop("loss", None)),
            "eval_loss": _number(logs.pop("eval_loss", None)),
            "learning_rate": _number(logs.pop("learning_rate", None)),
            "tokens_per_s": round(tokens / elapsed, 1) if tokens and elapsed > 0 else None,
            "elapsed_s": round(elapsed, 2),
            "eta_s": round(eta, 1) if eta is not None else None,
        }
        skip = ("runtime", "samples_per_second", "steps_per_second", "total_flos", "num_input_tokens_seen")
        metrics = {
            k.removeprefix("eval_"): _number(v)
            for k, v in logs.items()
            if isinstance(v, int | float) and not any(k.endswith(s) for s in skip)
        }
        metrics["peak_rss_mb"] = peak_rss_mb()
        self.last = {"step": state.global_step, **row, "metrics": metrics}
        if self._active(state):
            records.add_progress(self.db_path, self.job_id, state.global_step, **row, metrics=metrics)


class CancelCallback(TrainerCallback):
    """Stop at the end of the step in progress, after a checkpoint, when a stop was asked for."""

    def __init__(self, db_path: Path, job_id: int | None, stop: StopRequest | None = None):
        self.db_path = Path(db_path)
        self.job_id = job_id
        self.stop = stop or StopRequest()
        self.cancelled = False
        self._next_poll = 0.0

    def _requested_here(self, state) -> bool:
        if self.stop.is_set():
            return True
        if self.job_id is None or not state.is_world_process_zero or time.monotonic() < self._next_poll:
            return False
        self._next_poll = time.monotonic() + DB_POLL_S
        try:
            if records.get_job(self.db_path, self.job_id).cancel_requested:
                self.stop.set("cancel requested")
        except Exception:  # a locked or busy database must not end the job; the next poll reads it again
            return False
        return self.stop.is_set()

    def on_step_end(self, args, state, control, **kwargs):
        wanted = self._requested_here(state)
        if world_size() > 1:
            wanted = _any_rank(wanted)
        if wanted and not self.cancelled:
            self.cancelled = True
            control.should_save = True  # the Trainer saves this step's checkpoint, then leaves the loop
            control.should_training_stop = True
        return control


class AdaLoraAllocator(TrainerCallback):
    """peft's AdaLoRA prunes ranks through ``update_and_allocate(step)``, which must run after each optimizer step
    and before the gradients are zeroed: ``on_optimizer_step`` is exactly there. The current rank budget and the
    ranks still in use go into the logs (progress rows, TensorBoard)."""

    def __init__(self) -> None:
        self.budgets: list[tuple[int, int]] = []  # (step, budget) as allocated
        self.active: int | None = None

    def on_optimizer_step(self, args, state, control, model=None, **kwargs):
        tuner = _unwrap(model).base_model
        tuner.update_and_allocate(state.global_step)
        allocator = getattr(tuner, "rankallocator", None)
        if allocator is not None:
            self.budgets.append((state.global_step, allocator.budget_schedule(state.global_step)[0]))

    def on_log(self, args, state, control, logs=None, model=None, **kwargs):
        if logs is None or model is None or "loss" not in logs:
            return
        self.active = active_ranks(_unwrap(model))
        logs["adalora_active_ranks"] = self.active
        if self.budgets:
            logs["adalora_budget"] = self.budgets[-1][1]


def active_ranks(model) -> int:
    """Ranks AdaLoRA still uses: non-zero singular values (lora_E) over every adapted module."""
    import torch

    with torch.no_grad():
        return int(sum((p != 0).sum().item() for n, p in model.named_parameters() if "lora_E" in n))


def tensorboard_callback(tb_dir: Path) -> TrainerCallback:
    """The Trainer's own TensorBoard writer, pointed at the job's ``tb/`` folder (tensorboardX is installed)."""
    from transformers.integrations import TensorBoardCallback

    callback = TensorBoardCallback()
    callback.logging_dir = str(tb_dir)
    return callback


def job_callbacks(db_path: Path, job_id: int | None, tb_dir: Path, stop: StopRequest | None = None) -> list:
    """What every job's Trainer gets: TensorBoard events, progress rows, cancel (in that order: the progress row
    of a step is written before a cancel at that step). The live phase goes to the job folder (tb_dir's parent)."""
    progress = ProgressCallback(db_path, job_id, Path(tb_dir).parent)
    return [tensorboard_callback(tb_dir), progress, CancelCallback(db_path, job_id, stop)]


def phase(callbacks: Sequence[Any], name: str, detail: str = "", **values: Any) -> None:
    """Tell the job's progress callback (if any) what the job does now: trainers call it before each stage."""
    progress = find(callbacks, ProgressCallback)
    if progress is not None:
        progress.set_phase(name, detail, **values)


def find(callbacks: Sequence[Any], kind: type) -> Any | None:
    return next((c for c in callbacks if isinstance(c, kind)), None)


def _unwrap(model):
    return getattr(model, "module", model)  # DistributedDataParallel keeps the model in .module


def _any_rank(flag: bool) -> bool:
    import torch
    import torch.distributed as dist

    if not dist.is_available() or not dist.is_initialized():
        return flag
    value = torch.tensor([1 if flag else 0], dtype=torch.int32)
    if dist.get_backend() == "nccl":
        value = value.cuda()
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item())


def _number(value) -> float | None:
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return round(float(value), 8)
