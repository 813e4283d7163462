"""Process facts shared by the evaluation runner and the training job queue, and a job's CPU priority."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def pid_alive(pid: int | None) -> bool:
    """Whether a process with this pid exists (signal 0 sends nothing; EPERM means it exists)."""
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def lower_priority(nice: str) -> None:
    """Run at ``nice`` (the app's job runner sets LLMPLAY_JOB_NICE, default 10) before torch starts its threads:
    Linux keeps a niceness per thread and new threads inherit it.

    The runner starts a job in its own session, and with autogroup scheduling (most desktop and server kernels)
    a session is its own scheduling group: a niceness then only ranks threads inside the job, and the group still
    gets half the CPU against the app. So a session leader also lowers its group's niceness."""
    try:
        step = min(int(nice or 0), 19)
    except ValueError:
        return
    if step <= 0:
        return
    os.nice(step)
    autogroup = Path("/proc/self/autogroup")
    if os.getsid(0) == os.getpid() and autogroup.exists():
        # A kernel without autogroup or a read-only /proc: the thread niceness still holds.
        with contextlib.suppress(OSError):
            autogroup.write_text(str(step))
