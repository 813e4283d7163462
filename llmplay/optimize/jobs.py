"""Prompt searches as background jobs of the app: started from the Optimize tab, run on a thread of this process
(as evaluation runs are), one at a time per model, cancellable, watched live.

A search is a row of ``optimize_searches``: written when it starts (after every check of the input, so bad input
starts nothing), when each rung of the halving ends and when it finishes; its live state (the candidates table,
the progress lines, the calls made and planned) is read from the running ``PromptSearch`` itself. A reloaded page
finds the running search again; a restarted app shows the finished ones, and a search whose process is gone as
interrupted. The winner's template and lineage message are stored with the row, so "Save as new version" works
from the record alone.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime

from llmplay import eta
from llmplay.errors import InvalidRequestError, LlmplayError
from llmplay.optimize.config import OptimizeConfig
from llmplay.optimize.lineage import lineage_message, save_version
from llmplay.optimize.search import PromptSearch, SearchEvent, SearchResult, prepare, standings_table
from llmplay.processes import pid_alive
from llmplay.store import connect
from llmplay.templates.library import SaveResult, TemplateLibrary
from llmplay.templates.model import parse_template

log = logging.getLogger(__name__)

TABLE = "optimize_searches"
ACTIVE = "running"
LOG_LINES = 200  # progress lines kept per search
_RUNNING: set[tuple[str, int]] = set()  # (database, search id) of every search this process runs, whichever app


@dataclass
class _Live:
    search: PromptSearch
    cancel: threading.Event
    began: float
    lines: deque = field(default_factory=lambda: deque(maxlen=LOG_LINES))
    thread: threading.Thread | None = None


@dataclass(frozen=True)
class SearchView:
    """One search as the Optimize tab shows it: live while it runs, from its record after."""

    id: int
    status: str
    model: str
    template: str
    dataset: str
    created_at: str
    finished_at: str | None
    user: str
    config: dict
    candidates: list[dict]
    log: list[str]
    calls_done: int
    calls_planned: int
    elapsed_s: float | None
    eta_s: float | None  # None: not known yet (or not running)
    result: dict | None
    start_yaml: str
    winner_yaml: str
    lineage: str
    saved_version: int | None
    error: str

    @property
    def running(self) -> bool:
        return self.status == ACTIVE

    @property
    def fraction(self) -> float:
        if not self.running:
            return 1.0 if self.status == "done" else (self.calls_done / self.calls_planned if self.calls_planned else 0)
        return self.calls_done / self.calls_planned if self.calls_planned else 0.0


class OptimizeJobs:
    """The app's prompt searches (one object per app, in ``Services``)."""

    def __init__(self, engine, library: TemplateLibrary):
        self.engine, self.library, self.settings = engine, library, engine.settings
        self._live: dict[int, _Live] = {}
        self._lock = threading.Lock()
        self._mark_interrupted()

    # ---- starting and stopping -------------------------------------------------------------------------------
    def start(self, config: OptimizeConfig, user: str = "") -> int:
        """Check everything (InvalidRequestError before anything runs), record the search, run it on a thread."""
        with self._lock:
            busy = [i for i, live in self._live.items() if live.search.config.model == config.model]
            if busy:
                raise InvalidRequestError(
                    f"A search on {config.model} is already running (#{busy[0]}): one at a time per model, so "
                    "their timings and budgets stay honest. Wait for it or cancel it."
                )
            cancel = threading.Event()
            search = PromptSearch(self.engine, config, self.library, cancel=cancel)
            prepared = prepare(self.engine, config, self.library)  # bad input raises here
            with connect(self.settings.db_path) as db:
                search_id = (
                    db[TABLE]
                    .insert(
                        {
                            "created_at": _now(),
                            "user": user or "",
                            "pid": os.getpid(),
                            "status": ACTIVE,
                            "model": config.model,
                            "template": config.template,
                            "dataset": config.dataset,
                            "config": json.dumps(config.to_dict()),
                            "start_yaml": prepared.start.to_yaml(),
                            "log": "[]",
                            "candidates": "[]",
                        }
                    )
                    .last_pk
                )
            live = _Live(search, cancel, time.monotonic())
            search.on_event = lambda event: self._on_event(search_id, live, event)
            live.thread = threading.Thread(
                target=self._run, args=(search_id, live, prepared), name=f"optimize-{search_id}", daemon=True
            )
            self._live[search_id] = live
            _RUNNING.add((str(self.settings.db_path), search_id))
        live.thread.start()
        return search_id

    def cancel(self, search_id: int) -> bool:
        """Ask a running search to stop (within one evaluation chunk); True if it was running."""
        live = self._live.get(int(search_id))
        if live is None:
            return False
        live.cancel.set()
        return True

    def wait(self, search_id: int, timeout: float | None = None) -> SearchView:
        live = self._live.get(int(search_id))
        if live is not None and live.thread is not None:
            live.thread.join(timeout)
        return self.view(search_id)

    def close(self) -> None:
        for live in list(self._live.values()):
            live.cancel.set()
        for live in list(self._live.values()):
            if live.thread is not None:
                live.thread.join(5)

    # ---- reading -----------------------------------------------------------------------------------------------
    def active(self) -> list[int]:
        return sorted(self._live)

    def searches(self, limit: int = 50) -> list[dict]:
        """The newest searches first: id, status, model, template, dataset, created_at, gain (when tested)."""
        with connect(self.settings.db_path) as db:
            if TABLE not in db.table_names():
                return []
            rows = list(db.query(f"select * from {TABLE} order by id desc limit ?", [limit]))
        return [
            {k: r[k] for k in ("id", "status", "model", "template", "dataset", "created_at", "user")}
            | {"gain": ((json.loads(r["result"] or "null") or {}).get("test") or {}).get("gain")}
            for r in rows
        ]

    def view(self, search_id) -> SearchView:
        row = self._row(search_id)
        live = self._live.get(row["id"])
        result = json.loads(row["result"] or "null")
        common = {
            "id": row["id"],
            "model": row["model"],
            "template": row["template"],
            "dataset": row["dataset"],
            "created_at": row["created_at"],
            "finished_at": row["finished_at"],
            "user": row["user"] or "",
            "config": json.loads(row["config"]),
            "result": result,
            "start_yaml": row["start_yaml"] or "",
            "winner_yaml": row["winner_yaml"] or "",
            "lineage": row["lineage"] or "",
            "saved_version": row["saved_version"],
            "error": row["error"] or "",
        }
        if live is not None and row["status"] == ACTIVE:
            done, planned = live.search.work()
            elapsed = time.monotonic() - live.began
            return SearchView(
                status=ACTIVE,
                candidates=standings_table(live.search.standings),
                log=list(live.lines),
                calls_done=done,
                calls_planned=planned,
                elapsed_s=elapsed,
                eta_s=self._eta(live, done, planned, elapsed),
                **common,
            )
        calls = (result or {}).get("model_calls", 0)
        return SearchView(
            status=row["status"],
            candidates=json.loads(row["candidates"] or "[]"),
            log=json.loads(row["log"] or "[]"),
            calls_done=calls,
            calls_planned=calls,
            elapsed_s=(result or {}).get("elapsed_s"),
            eta_s=None,
            **common,
        )

    def save(self, search_id, author: str = "") -> SaveResult:
        """The search's winner as the next version of its start template (the lineage in the message)."""
        row = self._row(search_id)
        if row["status"] == ACTIVE:
            raise InvalidRequestError(f"Search #{row['id']} is still running: save its winner when it ends.")
        if not row["winner_yaml"]:
            raise InvalidRequestError(
                f"Search #{row['id']} ({row['status']}) has no winner to save: the start template stood."
            )
        if row["saved_version"]:
            raise InvalidRequestError(f"Search #{row['id']}'s winner is already saved as v{row['saved_version']}.")
        start = parse_template(row["start_yaml"], "the search's start template")
        winner = parse_template(row["winner_yaml"], f"search #{row['id']}'s winner")
        saved = save_version(self.library, start.name, winner, row["lineage"], author)
        with connect(self.settings.db_path) as db:
            db[TABLE].update(row["id"], {"saved_version": saved.version.number})
        return saved

    # ---- the thread --------------------------------------------------------------------------------------------
    def _run(self, search_id: int, live: _Live, prepared) -> None:
        values: dict = {}
        try:
            result = live.search.run(prepared)
            values = self._finished(result)
        except LlmplayError as exc:
            values = {"status": "failed", "error": str(exc)}
        except Exception as exc:  # a bug must end as a failed search the user can read, not a silent thread
            log.exception("Prompt search #%s failed", search_id)
            values = {"status": "failed", "error": f"{type(exc).__name__}: {exc}"}
        finally:
            if "candidates" not in values:
                values["candidates"] = json.dumps(standings_table(live.search.standings), default=str)
            values |= {"finished_at": _now(), "log": json.dumps(list(live.lines))}
            try:
                with connect(self.settings.db_path) as db:
                    db[TABLE].update(search_id, values)
            finally:
                with self._lock:
                    self._live.pop(search_id, None)
                    _RUNNING.discard((str(self.settings.db_path), search_id))

    def _finished(self, result: SearchResult) -> dict:
        from llmplay.optimize.cli import to_json  # the CLI's --json is the record's result: one shape for both

        winner = result.winner.candidate
        status = "cancelled" if result.stopped == "cancelled" else "done"
        values = {
            "status": status,
            "result": json.dumps(to_json(result), default=str),
            "candidates": json.dumps(result.table(), default=str),
        }
        if winner.id != 0 and status == "done":
            values |= {"winner_yaml": winner.template.to_yaml(), "lineage": lineage_message(result)}
        if result.stopped.startswith("budget"):
            values["error"] = f"stopped by the {result.stopped.removeprefix('budget: ')} budget"
        return values

    def _on_event(self, search_id: int, live: _Live, event: SearchEvent) -> None:
        live.lines.append(f"{eta.duration(event.elapsed_s)} · {event.message}")
        if event.kind == "rung":  # a record a restarted app can show even if this process dies mid-search
            try:
                with connect(self.settings.db_path) as db:
                    db[TABLE].update(
                        search_id,
                        {
                            "candidates": json.dumps(standings_table(live.search.standings), default=str),
                            "log": json.dumps(list(live.lines)),
                        },
                    )
            except Exception:  # progress notes must never stop the search
                log.exception("Could not record search #%s's progress", search_id)

    def _eta(self, live: _Live, done: int, planned: int, elapsed: float) -> float | None:
        left = eta.remaining(done, planned, elapsed) if done else None
        minutes = live.search.config.budget_minutes
        if left is not None and minutes is not None:  # the budget ends the search; the test report comes after
            test_calls = 2 * len(live.search.prepared.splits.test) if hasattr(live.search, "prepared") else 0
            per_call = elapsed / done
            left = min(left, max(0.0, minutes * 60 - elapsed) + test_calls * per_call)
        return left

    # ---- storage -------------------------------------------------------------------------------------------------
    def _row(self, search_id) -> dict:
        try:
            key = int(search_id)
        except (TypeError, ValueError):
            raise InvalidRequestError(f"A search id is a whole number; got {str(search_id)[:40]!r}.") from None
        with connect(self.settings.db_path) as db:
            known = TABLE in db.table_names()
            row = next(db.query(f"select * from {TABLE} where id = ?", [key]), None) if known else None
        if row is None:
            raise InvalidRequestError(f"No prompt search #{key}.")
        return row

    def _mark_interrupted(self) -> None:
        """Searches left running by a process that is gone: interrupted (their candidates' runs stay cached)."""
        with connect(self.settings.db_path) as db:
            if TABLE not in db.table_names():
                return
            stale = [
                r["id"]
                for r in db.query(f"select id, pid from {TABLE} where status = ?", [ACTIVE])
                if (str(self.settings.db_path), r["id"]) not in _RUNNING and not _alive_elsewhere(r["pid"])
            ]
            for search_id in stale:
                db[TABLE].update(
                    search_id,
                    {
                        "status": "interrupted",
                        "finished_at": _now(),
                        "error": "The app stopped during this search; start it again (its scored cells are cached).",
                    },
                )


def _alive_elsewhere(pid) -> bool:
    """Another live process runs it (a second app on the same data dir); a row of this process that no thread
    runs was left by an earlier app object in it and is interrupted."""
    return bool(pid) and pid != os.getpid() and pid_alive(pid)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
