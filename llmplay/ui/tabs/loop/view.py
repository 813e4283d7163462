"""What the Loop tab shows, as plain values (no gradio): the status line, the versions timeline, the
forgetting chart's rows, the events table, and the form <-> LineSettings conversion."""

from __future__ import annotations

import pandas as pd

from llmplay.loop.lines import LineSettings
from llmplay.loop.tasks import GATE as TASK_GATE
from llmplay.loop.tasks import line_matrix

# The settings form, in the order its fields are laid out and passed to the handlers (queues come apart).
FORM_FIELDS = (
    "min_new_rows",
    "interval_minutes",
    "start_from",
    "replay_ratio",
    "general_ratio",
    "heldout_fraction",
    "feedback_min_gain",
    "regression_dataset",
    "regression_template",
    "regression_margin",
    "probe_task_margin",
    "probe_ppl_margin",
    "method",
    "epochs",
    "learning_rate",
    "batch_size",
)
WHOLE = {"min_new_rows", "interval_minutes", "batch_size"}
OPTIONAL = {"regression_dataset", "regression_template"}  # blank = none / the line's template
GATES = ("feedback", "regression", "probe_task", "probe_perplexity", "probe_reply")
GATE_TITLES = {
    "feedback": "(a) held-out feedback",
    "regression": "(b) regression set",
    "probe_task": "(c) probe task",
    "probe_perplexity": "(c) probe text perplexity",
    "probe_reply": "(c) probe reply perplexity",
}
PERPLEXITY_GATES = {"probe_perplexity": "text", "probe_reply": "replies"}
TASKS_TITLE = "(b) task slices"
TIMELINE_HEADERS = [
    "update", "started", "status", "trigger", "trained", "replayed", "general", "held out",
    *(GATE_TITLES[g] for g in GATES), TASKS_TITLE, "reasons", "promoted by", "candidate",
]  # fmt: skip
TIMELINE_WIDTHS = ["60px", "100px", "90px", "70px", *["60px"] * 4, *["230px"] * 6, "200px", "90px", "150px"]
TASKS_EMPTY = (
    "No task slices yet. A line that learns several tasks keeps a held-out slice per task "
    "(`llmplay loop set NAME 'tasks=[{name: sentiment, dataset: fpb-heldout}, ...]'`): every update is gated on each, "
    "and this table shows what each task kept, version after version."
)
EVENT_HEADERS = ["at", "user", "action", "from", "to", "update", "detail"]
BASE = "base model"
# The three charts: (title, what fills it in). A chart with nothing to draw shows its title and this sentence.
CHARTS = {
    "probe_task": (
        "Forgetting: probe task accuracy",
        "gate (c) scores the candidate and the base on the general probe at every update; press **Run an update "
        "now** (or wait for the trigger) to draw the first point.",
    ),
    "probe_ppl": (
        "Forgetting: probe perplexity",
        "gate (c) measures the candidate's and the base's perplexity on general text at every update; press "
        "**Run an update now** to draw the first point.",
    ),
    "volume": (
        "Feedback volume",
        "items and responses in the line's feedback queues, per day: label items in the **Labeling** tab "
        "(or send feedback from Playground, Compare, Arena) to see it grow.",
    ),
}


def chart_heading(chart: str, line_name: str | None, empty: bool) -> str:
    """The chart's title, and when it has nothing to draw, a sentence of what to do."""
    title, fill = CHARTS[chart]
    if not empty:
        return f"**{title}**"
    if not line_name:
        return f"**{title}**  \nNo model line picked: pick one above, or create one under **Create a line**."
    return f"**{title}**  \nNothing to draw yet: {fill}"


def empty_note(line_name: str | None, has_updates: bool, failed: bool = False) -> str:
    """What to do when the timeline is empty: create or pick a line, then run its first update."""
    if failed or has_updates:
        return ""
    if not line_name:
        return (
            "No model line picked. A line is a base model, the template of its task and the feedback queues it "
            "learns from: pick one above, or open **Create a line** below, then press **Run an update now**. The "
            "versions timeline, the charts and the events fill in from its first update."
        )
    return (
        f"No updates of **{line_name}** yet: press **Run an update now**, or wait for the trigger (see the "
        "status line). Each update trains a candidate on the accepted feedback, checks it at the gates and "
        "promotes it when it passes; the timeline and the forgetting charts fill in from the first one."
    )


def form_settings(values: dict) -> dict:
    """The form's values as LineSettings fields: a whole number typed as 50.0 becomes 50, blanks of the
    optional fields become None; anything else goes to LineSettings as it is (it names what is wrong)."""
    out = {}
    for name, value in values.items():
        if name in OPTIONAL and (value is None or not str(value).strip()):
            value = None
        elif name in WHOLE and isinstance(value, float) and value.is_integer():
            value = int(value)
        out[name] = value
    return out


def settings_values(settings: LineSettings) -> list:
    """The form's values for ``settings``, in FORM_FIELDS order (a blank for an optional field left unset)."""
    data = settings.to_dict()
    return [data[name] if data[name] is not None else "" for name in FORM_FIELDS]


def _num(value, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def gate_cell(gate: dict | None) -> str:
    """One gate's figures: baseline → candidate, the difference with its 95% interval, pass / fail."""
    if not gate:
        return ""
    if gate.get("skipped"):
        return f"skipped: {gate.get('reason') or 'not set'}"
    mark = "✓ pass" if gate.get("passed") else "✗ fail"
    if gate.get("difference") is None:
        return f"{mark}: {gate.get('reason') or 'no figures'}"
    if gate["gate"] in PERPLEXITY_GATES:
        return f"{mark} · ppl {_num(gate['baseline'], 2)} → {_num(gate['candidate'], 2)} ({gate['difference']:+.1%})"
    gate = {k: v + 0.0 if isinstance(v, float) else v for k, v in gate.items()}  # -0.0 reads as +0.000
    interval = ""
    if gate.get("low") is not None and gate.get("high") is not None:
        interval = f", 95% CI {gate['low']:+.3f} to {gate['high']:+.3f}"
    run = f" · run #{gate['run_id']}" if gate.get("run_id") else ""
    return (
        f"{mark} · {gate['metric']} {_num(gate['baseline'])} → {_num(gate['candidate'])} "
        f"({gate['difference']:+.3f}{interval}, n={gate.get('n', 0)}){run}"
    )


def timeline_rows(updates: list, version_labels: dict[int, str]) -> list[list]:
    """One row per update (newest first), each gate's figures in its own column."""
    rows = []
    for u in updates:
        by_gate = {g.get("gate"): g for g in u.gates}
        reasons = "; ".join(u.reasons) or (u.error or "")
        rows.append(
            [
                u.id,
                (u.started_at or "")[:19].replace("T", " "),
                u.status if u.status != "running" else f"running ({u.stage})",
                u.trigger or "",
                len(u.feedback_ids),
                len(u.replay_ids),
                len(u.general_ids),
                len(u.heldout_ids),
                *(gate_cell(by_gate.get(g)) for g in GATES),
                "\n".join(f"{g['task']}: {gate_cell(g)}" for g in u.gates if g.get("gate") == TASK_GATE),
                reasons,
                u.promoted_by or "",
                version_labels.get(u.candidate_version_id, "") if u.candidate_version_id else "",
            ]
        )
    return rows


def task_matrix(updates: list) -> tuple[pd.DataFrame, str]:
    """The line's task x update accuracy table (each candidate's score on every task slice) and a note with each
    earlier task's backward transfer over the promoted versions (loop/tasks.py)."""
    m = line_matrix(updates)
    if not m.tasks:
        return pd.DataFrame(columns=["task"]), TASKS_EMPTY
    frame = pd.DataFrame(
        [[t, *(_num(v) for v in row)] for t, row in zip(m.tasks, m.scores)], columns=["task", *m.columns]
    )
    if m.mean_backward is None:
        note = "Backward transfer needs two promoted versions and a second task slice: not yet."
    else:
        each = ", ".join(f"{t} {d:+.3f}" for t, d in m.backward.items())
        note = (
            f"**Backward transfer** over the promoted versions (a task's score in the last version minus its score "
            f"when the line had just learned it; negative = forgotten): {each}; mean **{m.mean_backward:+.3f}**."
        )
    return frame, note


START_FROM = {
    "active": "continues the active version's adapter",
    "base": "trains a fresh adapter on the base model",
    "stacked": "stacks a fresh adapter on the frozen active version",
}
COST_UPDATES = 5  # the protection's cost is averaged over the line's last few finished updates


def protection_markdown(settings: LineSettings, updates: list) -> str:
    """Which protection against forgetting the line has on, and what it cost in its last updates: rows replayed
    beside the new ones, and where the update's time went (training, self-rehearsal, gates)."""
    s = settings
    on = [
        f"replay of earlier feedback {s.replay_ratio:g}× the new rows" if s.replay_ratio else "no feedback replay",
        f"general self-rehearsal {s.general_ratio:g}×" if s.general_ratio else "no general rehearsal",
        f"each update {START_FROM.get(s.start_from, s.start_from)}",
    ]
    if s.start_from == "stacked":
        on.append(f"O-LoRA weight {s.orthogonal_weight:g}" if s.orthogonal_weight else "O-LoRA off")
    slices = len(s.tasks)
    on.append(f"gated on {slices} task slice{'s' * (slices != 1)}" if slices else "no task slices")
    retries = s.forgetting_retries
    on.append(
        f"a candidate that forgot is retrained {'once' if retries == 1 else f'up to {retries} times'} with twice the "
        "replay"
        if retries
        else "no retry after forgetting"
    )
    text = "**Protection:** " + " · ".join(on) + "."
    done = [u for u in updates if u.status in ("promoted", "rejected") and u.timings][:COST_UPDATES]
    if not done:
        return text + " What it costs shows here after the first finished update."
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    new = mean([len(u.feedback_ids) for u in done])
    replayed = mean([len(u.replay_ids) for u in done])
    general = mean([len(u.general_ids) for u in done])
    seconds = {k: mean([u.timings.get(k, 0.0) for u in done]) for k in ("train_s", "rehearsal_s", "gates_s")}
    total = mean([u.timings.get("total_s", 0.0) for u in done])
    extra = f" ({(new + replayed + general) / new:.1f}× the new rows)" if new else ""
    return text + (
        f" **Its cost** (mean of the last {len(done)} update{'s' * (len(done) != 1)}): trained on {new:.0f} new + "
        f"{replayed:.0f} replayed + {general:.0f} general rows{extra}; {total:.0f} s an update: training "
        f"{seconds['train_s']:.0f} s, self-rehearsal {seconds['rehearsal_s']:.0f} s, gates {seconds['gates_s']:.0f} s."
    )


def forgetting_frames(updates: list) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The general probe per update, oldest first: (task accuracy rows, perplexity rows), each with the
    columns update, series (candidate / base; the perplexity series also say text / replies), value;
    updates without probe figures are left out."""
    frames = {"probe_task": [], "probe_perplexity": []}
    for u in sorted(updates, key=lambda u: u.id):
        for g in u.gates:
            gate = g.get("gate")
            if gate not in frames and gate not in PERPLEXITY_GATES:
                continue
            if g.get("candidate") is None or g.get("baseline") is None:
                continue
            what = f" ({PERPLEXITY_GATES[gate]})" if gate in PERPLEXITY_GATES else ""
            frames["probe_task" if gate == "probe_task" else "probe_perplexity"] += [
                {"update": u.id, "series": f"base{what}", "value": float(g["baseline"])},
                {"update": u.id, "series": f"candidate{what}", "value": float(g["candidate"])},
            ]
    empty = {"update": pd.Series(dtype=int), "series": pd.Series(dtype=str), "value": pd.Series(dtype=float)}
    return tuple(pd.DataFrame(rows) if rows else pd.DataFrame(empty) for rows in frames.values())


def rejected_choices(updates: list) -> list[tuple[str, int]]:
    """Updates whose candidate an admin can promote by hand: the rejected ones with a trained version."""
    return [
        (f"#{u.id} · {'; '.join(u.reasons)[:100] or u.status}", u.id)
        for u in updates
        if u.status == "rejected" and u.candidate_version_id
    ]


def run_choices(updates: list) -> list[tuple[str, int]]:
    """The gates' evaluation runs (baseline vs candidate columns), newest update first."""
    return [
        (f"update #{u.id} · {GATE_TITLES.get(g['gate'], g['gate'])} · run #{g['run_id']}", g["run_id"])
        for u in updates
        for g in u.gates
        if g.get("run_id")
    ]


def rollback_choices(line, versions: list, base_value: int) -> list[tuple[str, int]]:
    """Every version of the line, newest first, then the base model; the active one says so."""
    out = []
    for v in sorted(versions, key=lambda v: -v.version):
        out.append((f"{v.label}{' (active)' if v.id == line.active_version_id else ''}", v.id))
    tag = " (active)" if line.active_version_id is None else ""
    return [*out, (f"{BASE}: {line.base_model}{tag}", base_value)]


def version_label(labels: dict[int, str], version_id: int | None) -> str:
    return BASE if version_id is None else labels.get(version_id, f"version #{version_id}")


def status_markdown(line, labels: dict[int, str], why: str, running, scheduler_note: str = "") -> str:
    """The status line: active version, candidate, what the trigger waits for, the running update's stage."""
    parts = [
        f"**Active:** {version_label(labels, line.active_version_id)}",
        f"**Candidate:** {version_label(labels, line.candidate_version_id) if line.candidate_version_id else '–'}",
        f"**Trigger:** {why}",
    ]
    if running is not None:
        job = f", training job #{running.job_id}" if running.job_id else ""
        parts.append(f"**Running:** update #{running.id}, stage {running.stage}{job}")
    else:
        parts.append("**Running:** no update")
    if scheduler_note:
        parts.append(f"**Scheduler:** {scheduler_note}")
    serving = getattr(line, "serving", None)
    if serving is not None:  # `llmplay loop serve`: an external engine answers line:NAME
        parts.append(f"**Served by:** {serving.base_url}{' (loads adapters)' if serving.lora else ''}")
    return " · ".join(parts)


def event_rows(events: list[dict], labels: dict[int, str]) -> list[list]:
    rows = []
    for e in events:
        moved = e["action"] in ("promote", "rollback", "reject", "retry")
        rows.append(
            [
                (e["at"] or "")[:19].replace("T", " "),
                e["user"],
                e["action"],
                version_label(labels, e["from_version_id"]) if moved else "",
                version_label(labels, e["to_version_id"]) if moved else "",
                e["update_id"] or "",
                _detail(e["detail"]),
            ]
        )
    return rows


def _detail(detail) -> str:
    if not detail:
        return ""
    if isinstance(detail, dict) and {"before", "after"} <= set(detail):
        changed = [k for k in detail["after"] if detail["before"].get(k) != detail["after"][k]]
        return "changed: " + ", ".join(f"{k} {detail['before'].get(k)!r} → {detail['after'][k]!r}" for k in changed)
    if isinstance(detail, dict):
        return "; ".join(f"{k}: {v}" for k, v in detail.items())
    return str(detail)


REGRESSED_HEADERS = ["row", "input", "reference", "baseline", "candidate", "baseline score", "candidate score"]


def regressed_rows(results, rows: list[int], metric: str, limit: int = 50) -> list[list]:
    """The rows of a two-column gate run where the candidate scored below the baseline (first ``limit``)."""
    out = []
    inputs = results.input_columns()
    for r in rows[:limit]:
        base, cand = results.cells.get((r, 0)), results.cells.get((r, 1))
        text = " | ".join(str(results.rows[r].get(c, "")) for c in inputs)
        out.append(
            [
                r,
                text[:300],
                str(results.reference(r) or ""),
                (base.answer or base.text or "") if base else "",
                (cand.answer or cand.text or "") if cand else "",
                base.scores.get(metric) if base else None,
                cand.scores.get(metric) if cand else None,
            ]
        )
    return out
