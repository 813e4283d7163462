"""Online evaluation: a sampled share of each line's API traces is scored in the background by the checks the line
names (loop/online_checks.py), and the scores are summed up per version and day, so a promotion's effect on live
traffic shows in the Traces tab, the Loop tab and ``llmplay traces scores``.

The scorer is a background worker of the app (``LLMPLAY_ONLINE_EVAL_S`` seconds between passes, default 30; 0 =
off). Each pass looks at up to ``batch`` unscored traces per line, oldest first: a trace outside the sample gets
a row saying so (it is never looked at again), a sampled one its scores. Judge verdicts are generated in one
batch per pass, off the request path; failed and cancelled traces are not scored (they have no whole reply).
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime

from llmplay.backend_names import REFERENCE
from llmplay.engine.types import GenerationParams
from llmplay.errors import LlmplayError
from llmplay.evaluation import judge as judging
from llmplay.loop.lines import Line, list_lines
from llmplay.loop.online_checks import JUDGE, OnlineEval
from llmplay.settings import Settings
from llmplay.store import connect, immediate
from llmplay.templates.library import TemplateLibrary
from llmplay.templates.refs import load_template
from llmplay.templates.render import build_request
from llmplay.traces import EVALS, TRACES
from llmplay.worker import Worker, interval_from_env

log = logging.getLogger(__name__)
ONLINE_EVAL_ENV = "LLMPLAY_ONLINE_EVAL_S"
JUDGE_TEMPLATE = "judge-rubric"


def online_interval() -> float:
    """Seconds between scoring passes: $LLMPLAY_ONLINE_EVAL_S, default 30; 0 = off."""
    return interval_from_env(ONLINE_EVAL_ENV, 30.0)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _reply_messages(trace_request) -> list[dict]:
    """The request as messages (a completion's prompt is one user message) for the judge's ``input``."""
    if isinstance(trace_request, list):
        return [m for m in trace_request if isinstance(m, dict)]
    return [{"role": "user", "content": str(trace_request)}]


class OnlineScorer:
    def __init__(self, engine, templates: TemplateLibrary, *, interval_s: float | None = None, batch: int = 16,
                 start: bool = True):  # fmt: skip
        self.engine, self.templates, self.batch = engine, templates, batch
        self.interval_s = online_interval() if interval_s is None else interval_s
        self.worker = Worker("online-eval", self.tick, self.interval_s or 3600.0)
        if start and self.interval_s > 0:
            self.worker.start()

    @property
    def settings(self) -> Settings:
        return self.engine.settings

    def close(self) -> None:
        self.worker.stop(timeout=5)

    def tick(self) -> int:
        """One pass over every line whose online evaluation is on; returns how many traces it scored."""
        with connect(self.settings.db_path) as db:
            lines = [line for line in list_lines(db) if line.settings.online_eval.on]
        return sum(self.score_line(line) for line in lines)

    def score_line(self, line: Line) -> int:
        online = line.settings.online_eval
        with connect(self.settings.db_path) as db:
            if not db[TRACES].exists():
                return 0
            rows = db.execute(
                f"select id, at, served, request, reply from {TRACES} t where line = ? "
                f"and finish_reason in ('stop', 'length') and not exists (select 1 from {EVALS} e "
                "where e.trace_id = t.id) order by at, rowid limit ?",
                [line.name, self.batch],
            ).fetchall()
        if not rows:
            return 0
        drawn = [r for r in rows if online.drawn(r[0])]
        template = self._template(line)
        scored: dict[str, tuple[dict, dict]] = {}
        for trace_id, _, _, _, reply in drawn:
            scored[trace_id] = online.score_reply(reply or "", template)
        if online.judge is not None and drawn:
            self._judge(online, line, drawn, scored)
        with connect(self.settings.db_path) as db, immediate(db):
            for trace_id, at, served, _, _ in rows:
                scores, details = scored.get(trace_id, ({}, {}))
                row = {"trace_id": trace_id, "line": line.name, "served": served, "at": at, "scored_at": _now()}
                row |= {"sampled": int(trace_id in scored), "scores": json.dumps(scores)}
                db[EVALS].insert(row | {"details": json.dumps(details)}, replace=True)
        return len(scored)

    def _template(self, line: Line):
        try:
            return load_template(self.templates, line.template)[0]
        except LlmplayError as exc:  # a deleted template: the checks still run, "answer found" does not
            log.info("Online evaluation of %s without its template: %s", line.name, exc)
            return None

    def _judge(self, online: OnlineEval, line: Line, drawn: list, scored: dict) -> None:
        judge = online.judge or {}
        model = judge.get("model") or line.base_model
        try:
            template = load_template(self.templates, judge.get("template") or JUDGE_TEMPLATE)[0]
            judging.check_template(template)
            spec = self.engine.catalog.get(model)
        except LlmplayError as exc:
            for trace_id, *_ in drawn:
                scored[trace_id][1][JUDGE] = f"no judge: {exc}"
            return
        params = GenerationParams(max_new_tokens=int(judge.get("max_new_tokens", 96)), temperature=0.0)
        requests = []
        for _, _, _, request, reply in drawn:
            values = judging.judge_values(template, _reply_messages(json.loads(request)), reply or "")
            requests.append(build_request(template, spec.kind, values, params)[0])
        results = self.engine.generate(spec, requests, batch_backend=REFERENCE)  # scores comparable over time
        for (trace_id, *_), result in zip(drawn, results, strict=True):
            scores, details = scored[trace_id]
            if result.error:
                details[JUDGE] = f"judge failed: {result.error}"
                continue
            scores[JUDGE] = judging.score(judging.grade(template, result.text))
            details[JUDGE] = result.text


@dataclass
class VersionDay:
    """Online scores of one version of a line on one day."""

    line: str
    served: str
    day: str
    traces: int  # traces looked at (sampled or not)
    scored: int
    means: dict[str, float]  # check -> mean score over the scored traces that have it
    counts: dict[str, int]

    def to_dict(self) -> dict:
        return {"line": self.line, "served": self.served, "day": self.day, "traces": self.traces,
                "scored": self.scored, "means": self.means, "counts": self.counts}  # fmt: skip


def summary(settings: Settings, line: str | None = None, *, since: str | None = None) -> list[VersionDay]:
    """Scores per line, version and day (oldest first), from the traces the scorer has looked at."""
    where, args = [], []
    if line:
        where.append("line = ?")
        args.append(line)
    if since:
        where.append("at >= ?")
        args.append(since)
    with connect(settings.db_path) as db:
        if not db[EVALS].exists():
            return []
        rows = db.execute(
            f"select line, served, substr(at, 1, 10), sampled, scores from {EVALS}"
            + (" where " + " and ".join(where) if where else "")
            + " order by at",
            args,
        ).fetchall()
    groups: dict[tuple, dict] = {}
    for name, served, day, sampled, scores in rows:
        group = groups.setdefault((name, served, day), {"traces": 0, "scored": 0, "sums": defaultdict(float),
                                                         "counts": defaultdict(int)})  # fmt: skip
        group["traces"] += 1
        if not sampled:
            continue
        group["scored"] += 1
        for check, value in json.loads(scores or "{}").items():
            if value is not None:
                group["sums"][check] += value
                group["counts"][check] += 1
    return [
        VersionDay(
            name,
            served,
            day,
            g["traces"],
            g["scored"],
            {c: g["sums"][c] / n for c, n in g["counts"].items()},
            dict(g["counts"]),
        )  # fmt: skip
        for (name, served, day), g in groups.items()
    ]


def scores_of(settings: Settings, trace_id: str) -> dict | None:
    """One trace's online scores and details, or None when it was not scored."""
    with connect(settings.db_path) as db:
        if not db[EVALS].exists():
            return None
        row = db.execute(f"select sampled, scores, details from {EVALS} where trace_id = ?", [trace_id]).fetchone()
    if row is None or not row[0]:
        return None
    return {"scores": json.loads(row[1] or "{}"), "details": json.loads(row[2] or "{}")}


def summary_rows(days: list[VersionDay]) -> tuple[list[str], list[list]]:
    """A table of ``summary``: headers and rows (line, version, day, traces, scored, one column per check)."""
    checks = sorted({c for d in days for c in d.means})
    headers = ["line", "version", "day", "traces", "scored", *checks]
    rows = [
        [d.line, d.served, d.day, d.traces, d.scored, *[round(d.means[c], 3) if c in d.means else None for c in checks]]
        for d in days
    ]
    return headers, rows
