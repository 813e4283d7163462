"""Keep the threads that run torch from slowing each other down.

On Linux torch computes with libgomp (the OpenMP runtime its wheel ships), which keeps a pool of worker threads
for every thread that ran a parallel torch op, for as long as that thread lives. Once the process holds more such
workers than it has cores, libgomp stops letting any worker spin between two ops: every op then wakes its workers
from sleep. In this app the main thread, request threads and job threads all run torch, so that state was the
normal one. Measured with bench/openmp_threads.py (2 cores, SmolLM2 float32, 8 prompts x 48 greedy tokens in the
main thread, best of 3): 4.76 s alone, 6.74 s (1.41x) once six other threads had each run one torch op and kept
their workers, 4.70 s when those threads gave them back (three threads: 6.96, 7.83 = 1.12x, 6.49 s). With workers that
never spin at all (OMP_WAIT_POLICY=PASSIVE) evals/structured-output.yaml took 186 s against 130-150 s.

So work that runs torch gives its thread's pool back when it ends (``omp_pause_resource_all``, OpenMP 5.0); the
next op builds a new pool (the two together: 0.25 ms, measured on 2 cores). ``released`` marks such work (as a
context manager or a decorator); nested uses give the pool back once, when the outermost ends. Where the runtime is
not libgomp (macOS, Windows) or torch is not loaded, it does nothing.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import sys
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

_OMP_PAUSE_SOFT = 1  # omp_pause_soft: the threads go; the runtime stays initialised
_depth = threading.local()
_pause: Callable[[int], int] | None | bool = False  # False: not looked up yet; None: nothing to call
_lookup = threading.Lock()

F = TypeVar("F", bound=Callable)


def _pause_function() -> Callable[[int], int] | None:
    """libgomp's ``omp_pause_resource_all`` in this process (the copy torch loaded), or None."""
    global _pause
    if _pause is False:
        with _lookup:
            if _pause is False:
                _pause = _find_libgomp()
    return _pause or None


def _find_libgomp() -> Callable[[int], int] | None:
    try:
        with open("/proc/self/maps", encoding="utf-8") as maps:
            paths = {line.split()[-1] for line in maps if "libgomp" in line and "/" in line}
    except OSError:  # not Linux
        return None
    for path in sorted(paths):
        try:
            function = ctypes.CDLL(path).omp_pause_resource_all  # the loaded library: dlopen returns its handle
        except (OSError, AttributeError):  # an OpenMP before 5.0
            continue
        function.argtypes, function.restype = [ctypes.c_int], ctypes.c_int
        return function
    return None


def give_back() -> bool:
    """Give the calling thread's OpenMP worker pool back now; True when one was given back (or there was none)."""
    if "torch" not in sys.modules:  # nothing computed with OpenMP yet (and libgomp may not even be loaded)
        return False
    pause = _pause_function()
    return pause is not None and pause(_OMP_PAUSE_SOFT) == 0


@contextlib.contextmanager
def _released() -> Iterator[None]:
    depth = getattr(_depth, "value", 0)
    _depth.value = depth + 1
    try:
        yield
    finally:
        _depth.value = depth
        if depth == 0:
            give_back()


def released(function: F | None = None):
    """``with released():`` or ``@released``: the block's (or the call's) thread gives its OpenMP pool back when
    the outermost such block ends. Not for generator functions: a generator may resume in another thread."""
    if function is None:
        return _released()

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with _released():
            return function(*args, **kwargs)

    return wrapper
