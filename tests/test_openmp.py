"""Threads that ran torch give their OpenMP worker pools back (llmplay/openmp.py), so that libgomp keeps its workers
spinning between ops (with more pool workers than cores it puts them to sleep after every op: 1.1-1.4x slower
in bench/openmp_threads.py).

Checked in a fresh Python process, where the only threads are the ones the script makes: a worker thread that runs
a parallel matmul leaves one OpenMP worker thread alive after it; inside ``released`` it leaves none, and nested
blocks give the pool back once, when the outermost ends."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

SCRIPT = r"""
import json, os, threading, time
import torch
from llmplay import openmp

torch.set_num_threads(2)
a = torch.ones(512, 512)

def threads():
    return len(os.listdir("/proc/self/task"))

def settled():
    # the fewest threads over half a second: a worker told to exit leaves on its own time
    fewest = threads()
    end = time.monotonic() + 0.5
    while time.monotonic() < end:
        time.sleep(0.01)
        fewest = min(fewest, threads())
    return fewest

def in_thread(work):
    # the worker thread reports the process's thread count after its work, before it ends
    box = {}
    def run():
        torch.set_num_threads(2)  # per thread: a team of two (one worker) whatever the machine's cores
        work()
        box["after"] = settled()
    t = threading.Thread(target=run)
    t.start(); t.join()
    return box["after"]

def settle(expected, timeout=30.0):
    # an ended thread's OpenMP workers exit after it, on their own time: count the next phase once they are gone
    end = time.monotonic() + timeout
    while threads() > expected and time.monotonic() < end:
        time.sleep(0.01)

base = threads()  # main thread (+ any the import made)
plain = in_thread(lambda: a @ a) - base - 1  # minus the worker thread itself
settle(base)

def nested():
    with openmp.released():
        with openmp.released():
            a @ a
        inner = settled()
        a @ a
    return inner

box = {}
def released_work():
    box["inner"] = nested()
released = in_thread(released_work) - base - 1
inner = box["inner"] - base - 1
print(json.dumps({"plain": plain, "released": released, "inner": inner}))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="libgomp's worker pools: Linux only")
@pytest.mark.skipif((os.cpu_count() or 1) < 2, reason="one core: torch runs no OpenMP workers")
def test_a_thread_gives_its_openmp_workers_back_when_the_outermost_block_ends():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=300, cwd=root, check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found["plain"] == 1, found  # without it: one OpenMP worker stays with the thread that ran the matmul
    assert found["inner"] == 1, found  # an inner block's end gives nothing back: the outer block still computes
    assert found["released"] == 0, found  # the outermost block's end gave the worker back
