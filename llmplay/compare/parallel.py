"""Running a comparison's columns side by side: one thread per lane, events merged in arrival order."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Sequence
from contextlib import closing

from llmplay.compare.columns import Column
from llmplay.engine import Engine, GenerationResult, StreamEvent
from llmplay.errors import LlmplayError
from llmplay.models.catalog import ModelSpec


def lanes(engine: Engine, columns: Sequence[Column]) -> list[list[int]]:
    """Column indexes grouped into lanes that run side by side; a lane runs its columns in order.

    A loaded local model generates one reply at a time (a lock per model), so columns on the same local
    model (and dtype and adapter) share a lane and take turns in column order, instead of racing for the
    lock in whatever order their threads wake up. Endpoints and failed columns get a lane each.
    """
    groups: dict[tuple, list[int]] = {}
    for i, column in enumerate(columns):
        cfg = column.config
        spec = _spec(engine, column)
        local = spec is not None and spec.provider == "local"
        key = (spec.name, cfg.dtype or engine.settings.dtype, cfg.adapter) if local else ("column", i)
        groups.setdefault(key, []).append(i)
    return list(groups.values())


def stream_columns(
    engine: Engine, columns: Sequence[Column], plan: list[list[int]] | None = None
) -> Iterator[tuple[int, StreamEvent]]:
    """Run the columns, one thread per lane (``plan``, default ``lanes()``); yield ``(column index, event)``
    in arrival order.

    Every column ends with exactly one ``done`` event (an error result when it failed), after which the
    iterator ends. Closing it early stops the workers at their next event (they close their own streams:
    a generator cannot be closed from another thread while it runs).
    """
    plan = lanes(engine, columns) if plan is None else plan
    _import_transformers(engine, columns)
    events: queue.Queue[tuple[int, StreamEvent]] = queue.Queue()
    stop = threading.Event()
    for lane in plan:
        name = "compare-column-" + "-".join(str(i + 1) for i in lane)
        threading.Thread(target=_run_lane, args=(engine, columns, lane, events, stop), daemon=True, name=name).start()
    pending = set(range(len(columns)))
    try:
        while pending:
            index, event = events.get()
            if event.done:
                pending.discard(index)
            yield index, event
    finally:
        stop.set()


def _spec(engine: Engine, column: Column) -> ModelSpec | None:
    """The column's model as prepared (or looked up, for a column built by hand); None when it cannot run."""
    if column.error is not None:
        return None
    if column.spec is not None:
        return column.spec
    try:
        return engine.catalog.get(column.config.model)
    except LlmplayError:
        return None  # the column reports its own error


def _import_transformers(engine: Engine, columns: Sequence[Column]) -> None:
    """Import transformers here, once, before the column threads start: its first import is not thread-safe
    (threads that import it at the same time see a half-built module and fail with ImportError)."""
    for column in columns:
        spec = _spec(engine, column)
        if spec is not None and spec.provider == "local":
            import transformers  # noqa: F401

            return


def _run_lane(engine: Engine, columns: Sequence[Column], lane: list[int], events: queue.Queue, stop) -> None:
    for index in lane:
        if stop.is_set():
            return
        _run_column(engine, columns[index], index, events, stop)


def _run_column(engine: Engine, column: Column, index: int, events: queue.Queue, stop: threading.Event) -> None:
    model = column.config.model
    try:
        if column.error is not None or column.request is None:
            raise LlmplayError(column.error or "This column has nothing to send.")
        cfg = column.config
        target = column.spec or model  # the spec prepare_column resolved: no second catalog lookup
        with closing(engine.stream(target, column.request, dtype=cfg.dtype, adapter=cfg.adapter)) as stream:
            for event in stream:
                if stop.is_set():
                    return  # nobody is listening any more; closing the stream stops the decoding
                events.put((index, event))
                if event.done:
                    return
        failed = GenerationResult.failure(f"{model} ended the reply without a result; try again.", model)
    except LlmplayError as exc:
        failed = GenerationResult.failure(str(exc), model)
    except Exception as exc:  # one column's crash must not take the others down
        failed = GenerationResult.failure(f"something unexpected went wrong ({type(exc).__name__}: {exc}).", model)
    events.put((index, StreamEvent(done=True, result=failed)))
