"""Model lines as the loop sees them: each line's settings (what it learns from, when, and the gates its updates
must pass), creating lines, and promotion / rollback of the ``active`` alias.

The rows, the aliases and the audit events are stored by ``llmplay.models.lines`` (the catalog serves
``line:<name>`` from there); this module adds the loop's rules on top.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from sqlite_utils import Database

from llmplay.errors import InvalidRequestError, short
from llmplay.loop.online_checks import OnlineError, OnlineEval
from llmplay.loop.tasks import task_problems
from llmplay.models import lines as stored
from llmplay.models.line_serving import LineServing, adapter_name, load_adapter
from llmplay.models.lines import EVENTS, LINE_PREFIX, LINES, event, now
from llmplay.models.registry import versions_dir
from llmplay.store import immediate

UPDATES = "loop_updates"
START_FROM = ("active", "base", "stacked")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
# As llmplay.feedback.records.check_name: a queue name never reaches a path or a query unchecked.
_QUEUE_RE = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$")
MAX_QUEUES = 50


class LoopError(InvalidRequestError):
    """A loop request that cannot be done as asked; the message says why and what to do."""


@dataclass
class LineSettings:
    """Everything an admin sets per line; validated in ``from_dict`` (every problem named at once)."""

    queues: list[str] = field(default_factory=list)  # feedback queues it learns from; [] = items of its template
    # Preference queues (Arena / Compare pairs, labeling preferences) whose accepted pairs train a DPO step.
    preference_queues: list[str] = field(default_factory=list)
    dpo_beta: float = 0.1
    # Trigger: an update when at least this many new accepted rows arrived, and/or every N minutes (0 = off).
    min_new_rows: int = 50
    interval_minutes: int = 0
    # "active": continue training the active version's adapter; "base": a fresh adapter on the base every
    # update; "stacked": a fresh adapter on top of the frozen active version (only the new weights change,
    # so what earlier versions learned stays as it was: a way to forget less besides replay).
    start_from: str = "active"
    # O-LoRA with start_from "stacked": the weight of the penalty that keeps each new adapter's LoRA subspace
    # orthogonal to the stacked earlier ones' (training/orthogonal.py; 0 = off).
    orthogonal_weight: float = 0.0
    # Replay, as a share of the new rows: earlier accepted feedback, and general instructions answered by the
    # base itself (self-rehearsal, probe.py). bench/feedback_loop.py measures these defaults against no replay on
    # one task; bench/forgetting.py on a sequence of three (no replay forgot 8.3 points of an earlier task, these
    # defaults with one retry none; README "Continual learning").
    replay_ratio: float = 0.5
    general_ratio: float = 0.5
    # A candidate rejected only for forgetting (a task slice, the regression set, the general probe; not the
    # feedback gate, which says the new rows themselves made it worse) is retrained this many times in the same
    # update, each time with twice the replay, drawn first from the forgotten tasks' earlier rows (update.py).
    forgetting_retries: int = 1
    heldout_fraction: float = 0.2  # of accepted feedback, chosen by item id; never trained on (gate a)
    # Gates (paired bootstrap differences, candidate - active): (a) must be at least feedback_min_gain;
    # (b) and the probe's task score may drop at most their margin; the probe's perplexity at most ppl_margin.
    feedback_min_gain: float = 0.0
    regression_dataset: str | None = None
    regression_template: str | None = None  # default: the line's template
    regression_margin: float = 0.02
    # One held-out slice per task the line has learned: [{name, dataset, template, margin}] (loop/tasks.py);
    # every candidate is gated on each, and the Loop tab draws the task x version accuracy matrix from them.
    tasks: list = field(default_factory=list)
    probe_task_margin: float = 0.02
    probe_ppl_margin: float = 0.05
    max_new_tokens: int = 16  # decoding budget of the gate runs (greedy)
    # Training (one fine-tuning job per update). Batches of 8: an update has only tens of new rows, and batches
    # of 16 gave too few steps to learn the task (bench/feedback_loop.py: 61% after two updates at lr 5e-4).
    # With these defaults the bench's line reached 88% by its third update, the general probe within 1%.
    method: str = "lora"
    epochs: float = 2.0
    learning_rate: float = 3e-4
    batch_size: int = 8
    seed: int = 0
    # Share of the line's API requests stored as traces (llmplay/traces.py); None: the server's trace_sample.
    trace_sample: float | None = None
    # Online evaluation of the line's API traces (loop/online_checks.py): {sample, checks, parses, judge}.
    online: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, data: dict | None) -> LineSettings:
        data = dict(data or {})
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise LoopError(f"Unknown line setting(s): {', '.join(unknown)} (known: {', '.join(sorted(known))}).")
        settings = cls(**data)
        settings.validate()
        return settings

    def validate(self) -> None:
        p: list[str] = []

        def number(name: str, low: float, high: float, whole: bool = False) -> None:
            value = getattr(self, name)
            ok = isinstance(value, int) if whole else isinstance(value, int | float)
            if isinstance(value, bool) or not ok or not low <= value <= high:
                kind = "a whole number" if whole else "a number"
                p.append(f"{name} must be {kind} from {low:g} to {high:g}, not {short(value)}")

        for what in ("queues", "preference_queues"):
            names = getattr(self, what)
            if not isinstance(names, list) or len(names) > MAX_QUEUES:
                p.append(f"{what} must be a list of at most {MAX_QUEUES} feedback queue names")
            elif not all(isinstance(q, str) and _QUEUE_RE.match(q.strip()) for q in names):
                bad = next(q for q in names if not (isinstance(q, str) and _QUEUE_RE.match(q.strip())))
                p.append(f"{what}: {short(bad)} is not a queue name (1-64 letters, digits, '-', '_' or '.')")
        number("dpo_beta", 1e-4, 100)
        number("min_new_rows", 0, 100_000, whole=True)
        number("interval_minutes", 0, 60 * 24 * 365, whole=True)
        if self.min_new_rows == 0 and self.interval_minutes == 0:
            p.append("set a trigger: min_new_rows above 0 and/or interval_minutes above 0")
        if self.start_from not in START_FROM:
            p.append(f"start_from must be one of {', '.join(START_FROM)}, not {short(self.start_from)}")
        number("orthogonal_weight", 0, 1000)
        if isinstance(self.orthogonal_weight, int | float) and self.orthogonal_weight > 0:
            if self.start_from != "stacked":
                p.append("orthogonal_weight (O-LoRA) needs start_from stacked: it keeps new adapters off the old ones")
            if self.method not in ("lora", "dora"):
                p.append(f"orthogonal_weight (O-LoRA) trains LoRA or DoRA adapters, not {short(self.method)}")
        number("replay_ratio", 0, 10)
        number("forgetting_retries", 0, 3, whole=True)
        number("general_ratio", 0, 10)
        number("heldout_fraction", 0, 0.9)
        number("feedback_min_gain", -1, 1)
        number("regression_margin", 0, 1)
        number("probe_task_margin", 0, 1)
        number("probe_ppl_margin", 0, 10)
        number("max_new_tokens", 1, 512, whole=True)
        if self.method not in ("lora", "dora", "adalora"):
            p.append(f"method must be lora, dora or adalora, not {short(self.method)}")
        number("epochs", 0.1, 50)
        number("learning_rate", 1e-7, 1)
        number("batch_size", 1, 256, whole=True)
        number("seed", 0, 2**32 - 1, whole=True)
        p += task_problems(self.tasks)
        if self.regression_dataset is not None and not str(self.regression_dataset).strip():
            self.regression_dataset = None
        if self.trace_sample is not None:
            number("trace_sample", 0, 1)
        try:
            self.online = self.online_eval.to_dict()
        except OnlineError as exc:
            p.append(str(exc))
        if p:
            raise LoopError("Line settings are not valid: " + "; ".join(p) + ".")

    @property
    def online_eval(self) -> OnlineEval:
        if not isinstance(self.online, dict):
            raise OnlineError(f"online must be a mapping of sample, checks, parses and judge, not {short(self.online)}")
        return OnlineEval.from_dict(self.online)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Line:
    id: int
    name: str
    base_model: str
    template: str
    active_version_id: int | None
    candidate_version_id: int | None
    settings: LineSettings
    created_by: str | None
    created_at: str
    updated_at: str | None
    serving: LineServing | None = None  # an external engine serves it (models/line_serving.py); None: llmplay

    @property
    def picker_name(self) -> str:
        return LINE_PREFIX + self.name

    @classmethod
    def from_row(cls, row: dict) -> Line:
        values = {k: v for k, v in row.items() if k != "serve"}
        values["settings"] = LineSettings.from_dict(json.loads(row["settings"]))
        values["serving"] = LineServing.from_json(row.get("serve"))
        return cls(**values)


def create_line(
    db: Database,
    name: str,
    base_model: str,
    template: str,
    *,
    user: str = "admin",
    settings: LineSettings | dict | None = None,
    known_models: list[str] | None = None,
    known_templates: list[str] | None = None,
) -> Line:
    """A new line with the base model active. ``known_*``: the catalog's / library's names to check against."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise LoopError(f"Line name {short(name)} is not allowed: use 1-64 letters, digits, '.', '_' or '-'.")
    if known_models is not None and base_model not in known_models:
        raise LoopError(
            f"Base model {short(base_model)} is not in the catalog. Pick one of: {', '.join(known_models)}."
        )
    template_name = str(template).split("@", 1)[0]
    if known_templates is not None and template_name not in known_templates:
        raise LoopError(f"Template {short(template)} is not in the library. Pick one of: {', '.join(known_templates)}.")
    settings = settings if isinstance(settings, LineSettings) else LineSettings.from_dict(settings)
    with immediate(db):
        if list(db[LINES].rows_where("name = ?", [name], limit=1)):
            raise LoopError(f"A line named {name!r} exists already.")
        line_id = (
            db[LINES]
            .insert(
                {
                    "name": name,
                    "base_model": base_model,
                    "template": template,
                    "settings": json.dumps(settings.to_dict()),
                    "created_by": user,
                    "created_at": now(),
                }
            )
            .last_pk
        )
        event(db, user, line_id, "create", base_model=base_model, template=template)
    return get_line(db, line_id)


def get_line(db: Database, line: str | int | Line) -> Line:
    if isinstance(line, Line):
        line = line.id
    row = stored.find_line(db, line)
    if row is None:
        name = line[len(LINE_PREFIX) :] if isinstance(line, str) and line.startswith(LINE_PREFIX) else line
        raise LoopError(f"There is no model line {short(name)}. Create it first (`llmplay loop create`).")
    return Line.from_row(row)


def list_lines(db: Database) -> list[Line]:
    return [Line.from_row(r) for r in stored.line_rows(db)]


def update_settings(db: Database, line: str | int | Line, changes: dict, *, user: str = "admin") -> Line:
    with immediate(db):
        old = get_line(db, line)
        merged = LineSettings.from_dict(old.settings.to_dict() | dict(changes))
        db[LINES].update(old.id, {"settings": json.dumps(merged.to_dict()), "updated_at": now()})
        event(db, user, old.id, "settings", before=old.settings.to_dict(), after=merged.to_dict())
    return get_line(db, old.id)


def _version_of_line(db: Database, line: Line, version_id: int | None) -> None:
    if version_id is None:
        return
    row = db.execute("select name, base_model, deleted_at from model_versions where id = ?", [version_id]).fetchone()
    if row is None or row[2] is not None:
        raise LoopError(f"Version #{version_id} does not exist (or was deleted).")
    if row[0] != line.name or row[1] != line.base_model:
        raise LoopError(f"Version #{version_id} belongs to {row[0]!r} on {row[1]!r}, not to line {line.name!r}.")


def load_for_serving(db: Database, line: str | int | Line, version_id: int | None) -> None:
    """For a line whose engine loads adapters (models/line_serving.py), load the version's adapter there now;
    a no-op otherwise. Call it outside a write transaction: it waits on the engine."""
    current = get_line(db, line)
    _version_of_line(db, current, version_id)
    _load(db, current.serving, version_id)


def _load(db: Database, serving: LineServing | None, version_id: int | None) -> None:
    if serving is None or not serving.lora or version_id is None:
        return
    query = "select name, version, path from model_versions where id = ?"
    name, version, path = db.execute(query, [version_id]).fetchone()
    versions = versions_dir(Path(db.conn.execute("pragma database_list").fetchone()[2]).parent)
    load_adapter(serving, adapter_name(name, version), serving.adapter_path(path, versions))


def set_active(
    db: Database, line: str | int | Line, version_id: int | None, *, user: str, action: str, update_id=None, **why
) -> Line:
    """Move the ``active`` alias (promote, rollback; None = the base model). One audited row change; for a line
    whose engine loads adapters, only once the engine has loaded the version's (``ServingError`` otherwise)."""
    load_for_serving(db, line, version_id)  # before the write lock: a network call
    with immediate(db):
        current = get_line(db, line)
        _version_of_line(db, current, version_id)
        stored.move_active(db, current.id, version_id)
        event(db, user, current.id, action, frm=current.active_version_id, to=version_id, update_id=update_id, **why)
    return get_line(db, current.id)


def rollback(db: Database, line: str | int | Line, version_id: int | None = None, *, user: str) -> Line:
    """Make an earlier version active again: ``version_id``, or else the one active before the current one."""
    current = get_line(db, line)
    if version_id is None:
        previous = db.execute(
            f"select from_version_id from {EVENTS} where line_id = ? and action in ('promote', 'rollback') "
            "and to_version_id is ? order by id desc limit 1",
            [current.id, current.active_version_id],
        ).fetchone()
        if previous is None:
            raise LoopError(f"Line {current.name!r} has no earlier active version to roll back to.")
        version_id = previous[0]
    return set_active(db, current, version_id, user=user, action="rollback")


def set_serving(db: Database, line: str | int | Line, serving: LineServing | None, *, user: str) -> Line:
    """Serve the line from an external engine (None: from llmplay again). Audited; the next request follows. An
    engine that loads adapters gets the active version's first, so the line never points at a missing one."""
    _load(db, serving, get_line(db, line).active_version_id)
    with immediate(db):
        current = get_line(db, line)
        db[LINES].update(current.id, {"serve": serving.to_json() if serving else None, "updated_at": now()})
        before = json.loads(current.serving.to_json()) if current.serving else None
        event(db, user, current.id, "serving", before=before, after=json.loads(serving.to_json()) if serving else None)
    return get_line(db, current.id)


def events(db: Database, line: str | int | Line, limit: int = 200) -> list[dict]:
    current = get_line(db, line)
    rows = db[EVENTS].rows_where("line_id = ?", [current.id], order_by="id desc", limit=limit)
    return [r | {"detail": json.loads(r["detail"] or "null")} for r in rows]


def active_label(db: Database, line: Line) -> str:
    """The catalog name the line serves now: its active version's label, or the base model."""
    return stored.active_label(db, line.base_model, line.active_version_id)
