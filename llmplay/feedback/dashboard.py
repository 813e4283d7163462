"""Dashboard figures: feedback volume over time, per-labeler throughput, and a line per queue.

Plain pandas DataFrames (a chart or a table in the UI, a table in the CLI). Only submitted responses count
as work done; times are the stored UTC ISO stamps.
"""

from __future__ import annotations

import pandas as pd
from sqlite_utils import Database

from llmplay.feedback.accepted import accepted_items
from llmplay.feedback.agreement import queue_agreement
from llmplay.feedback.store import ITEMS, RESPONSES, FeedbackError, Queue, get_queue, list_queues, progress

PERIODS = {"hour": "h", "day": "D", "week": "W"}
BREAK_SECONDS = 30 * 60  # a longer gap between two submits is a break, not time spent on the item


def _where(db: Database, queue: str | int | Queue | None, alias: str) -> tuple[str, list]:
    if queue is None:
        return "", []
    return f" and {alias}.queue_id = ?", [get_queue(db, queue).id]


def _periods(stamps: pd.Series, by: str) -> pd.Series:
    times = pd.to_datetime(stamps, utc=True, format="ISO8601")
    if by == "week":  # weeks start on Monday
        return (times.dt.floor("D") - pd.to_timedelta(times.dt.weekday, unit="D")).dt.strftime("%Y-%m-%d")
    fmt = "%Y-%m-%d %H:00" if by == "hour" else "%Y-%m-%d"
    return times.dt.floor(PERIODS[by]).dt.strftime(fmt)


def volume(db: Database, queue: str | int | Queue | None = None, by: str = "day") -> pd.DataFrame:
    """Items added and responses submitted per period (``by``: hour, day or week), oldest first; columns
    period, items, responses (periods with neither are left out)."""
    if by not in PERIODS:
        raise FeedbackError(f"Volume is counted by {', '.join(PERIODS)}, not {by!r}.")
    where, args = _where(db, queue, "i")
    items = [r[0] for r in db.execute(f"select i.created_at from {ITEMS} i where i.status = 'open'{where}", args)]
    where, args = _where(db, queue, "r")
    responses = [
        r[0]
        for r in db.execute(
            f"select r.submitted_at from {RESPONSES} r where r.status = 'submitted' and r.submitted_at is not null"
            f"{where}",
            args,
        )
    ]
    counts = {}
    for name, stamps in (("items", items), ("responses", responses)):
        counts[name] = _periods(pd.Series(stamps, dtype=object), by).value_counts() if stamps else pd.Series()
    frame = pd.DataFrame(counts).fillna(0).astype(int).sort_index()
    frame.index.name = "period"
    return frame.reset_index().reindex(columns=["period", "items", "responses"])


def volume_long(frame: pd.DataFrame) -> pd.DataFrame:
    """``volume``'s wide table as one row per (period, series), for a line plot with a colour per series."""
    if frame.empty:
        return pd.DataFrame({"period": pd.Series(dtype="datetime64[ns]"), "series": [], "count": []})
    long = frame.melt(id_vars="period", value_vars=["items", "responses"], var_name="series", value_name="count")
    long["period"] = pd.to_datetime(long["period"])
    return long


def throughput(db: Database, queue: str | int | Queue | None = None) -> pd.DataFrame:
    """Per labeler: submitted, drafts, discarded, median_seconds (the median gap between two of their
    consecutive submits, breaks over 30 minutes left out: about the time one item takes; NaN with fewer
    than two submits in a sitting), last_active; most submitted first."""
    where, args = _where(db, queue, "r")
    rows = db.execute(
        f"select r.labeler, r.status, r.submitted_at, coalesce(r.updated_at, r.created_at) from {RESPONSES} r "
        f"join {ITEMS} i on i.id = r.item_id where i.status = 'open'{where}",
        args,
    ).fetchall()
    columns = ["labeler", "submitted", "drafts", "discarded", "median_seconds", "last_active"]
    if not rows:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame(rows, columns=["labeler", "status", "submitted_at", "touched_at"])
    out = []
    for name, group in frame.groupby("labeler"):
        submits = pd.to_datetime(group.loc[group.status == "submitted", "submitted_at"].dropna(), format="ISO8601")
        gaps = submits.sort_values().diff().dt.total_seconds().dropna()
        gaps = gaps[gaps <= BREAK_SECONDS]
        out.append(
            {
                "labeler": name,
                "submitted": int((group.status == "submitted").sum()),
                "drafts": int((group.status == "draft").sum()),
                "discarded": int((group.status == "discarded").sum()),
                "median_seconds": round(float(gaps.median()), 1) if len(gaps) else None,
                "last_active": max(group.touched_at),
            }
        )
    return pd.DataFrame(out, columns=columns).sort_values(["submitted", "labeler"], ascending=[False, True])


def queue_summary(db: Database, *, include_archived: bool = False) -> pd.DataFrame:
    """One row per queue: task, k, items (open), complete (k submitted), accepted, labelers, agreement
    (percent of compared items where all agree; None before any overlap), kappa, and a one-line summary."""
    rows = []
    for q in list_queues(db, include_archived=include_archived):
        p = progress(db, q)
        a = queue_agreement(db, q)
        rows.append(
            {
                "queue": q.name,
                "task": q.task,
                "k": q.k,
                "items": p.total,
                "complete": p.complete,
                "accepted": len(accepted_items(db, q)),
                "labelers": a.labelers_count,
                "agreement": a.percent_agreement,
                "kappa": a.kappa,
                "summary": a.summary,
            }
        )
    columns = ["queue", "task", "k", "items", "complete", "accepted", "labelers", "agreement", "kappa", "summary"]
    return pd.DataFrame(rows, columns=columns)
