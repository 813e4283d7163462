"""What the Train tab shows, as plain HTML and table rows (no gradio here): a job's progress bar, its loss
chart (train and validation, inline SVG like the Evaluate tab's chart), the data preview with the masked
prompt part marked, and the job and version tables."""

from __future__ import annotations

import html
import json
import math
import time
from datetime import UTC, datetime

from llmplay.eta import duration as eta_duration
from llmplay.eta import remaining
from llmplay.models.registry import ModelVersion
from llmplay.training.records import Job

STATUS_ICONS = {"queued": "⏳", "running": "🏃", "done": "✅", "failed": "❌", "cancelled": "⏹️"}
QUEUE_HEADERS = ["job", "name", "status", "step", "base model", "method", "created", "finished", "error"]
VERSION_HEADERS = ["version", "base model", "kind", "method", "task", "rows", "validation", "created"]


def _esc(value) -> str:
    return html.escape(str(value))


def duration(seconds: float | None) -> str:
    if seconds is None or seconds != seconds or seconds < 0:  # NaN
        return "–"
    return eta_duration(seconds)


def _elapsed(job: Job) -> float | None:
    if not job.started_at:
        return None
    try:
        start = datetime.fromisoformat(job.started_at)
        end = datetime.fromisoformat(job.finished_at) if job.finished_at else datetime.now(UTC)
    except ValueError:
        return None
    return (end - start).total_seconds()


def phase_text(job: Job, phase: dict, now: float | None = None) -> tuple[str, str, float | None]:
    """(phase name, one line saying what the running job does now and for how long, seconds left or None).

    ``phase`` is the job's live record (records.read_phase); the time left counts down from the measured pace
    of the finished steps (eta.remaining), so it moves at every poll and never jumps up."""
    now = time.time() if now is None else now
    name = str(phase.get("phase") or "starting")
    since = now - float(phase.get("since") or now)
    detail = str(phase.get("detail") or "")
    if name == "training":
        step, total = int(phase.get("step") or 0), int(phase.get("total") or 0)
        done = int(phase.get("steps_done") or 0)
        last = float(phase.get("last_step_at") or phase.get("step_began") or phase.get("since") or now)
        running = max(0.0, now - last)
        left = remaining(done, total - (step - done), float(phase.get("busy_s") or 0.0), running)
        current = min(step + 1, total) if total else step + 1
        line = f"training step {current} of {total or '?'} (this step: {duration(running)})"
        if done:
            line += f" · {float(phase.get('busy_s') or 0) / done:.1f} s a step"
        return name, line, left
    if name == "evaluating":
        count, of = phase.get("eval_done"), phase.get("eval_total")
        where = f" batch {count} of {of}" if count and of else ""
        return name, f"evaluating on the validation set{where} ({duration(since)})", None
    text = f"{name} {detail}".strip()
    return name, f"{text} ({duration(since)})", None


def progress_html(job: Job | None, rows: list[dict], phase: dict | None = None, now: float | None = None) -> str:
    """Status, a bar of step / total, the live phase and the time left, epoch, tokens/s and the latest losses
    of ``job``; ``phase``: the job's live record (records.read_phase)."""
    if job is None:
        return (
            "<div id='train-progress-box'><p><em>No job selected. Start one, or pick one from the queue.</em></p></div>"
        )
    last_train = next((r for r in reversed(rows) if r.get("loss") is not None), {})
    last_eval = next((r for r in reversed(rows) if r.get("eval_loss") is not None), {})
    latest = rows[-1] if rows else {}
    step = int(job.step or latest.get("step") or 0)
    total = int(job.total_steps or latest.get("total_steps") or 0)
    if job.status == "done" and total:
        step = max(step, total)
    fraction = min(1.0, step / total) if total else 0.0
    facts = [f"step {step}/{total or '?'}"]
    phase_name, phase_line, left = "", "", None
    if job.status == "running" and (phase or {}).get("phase") == "starting" and step > 0:
        phase = {}  # a job whose process writes no phase (started from a shell by another tool): its rows say more
    if job.status == "running" and phase:
        phase_name, phase_line, left = phase_text(job, phase, now)
        if phase_name == "training" and (phase or {}).get("step") is not None:
            step = max(step, int(phase["step"]))
            total = total or int(phase.get("total") or 0)
            fraction = min(1.0, step / total) if total else 0.0
            facts[0] = f"step {step}/{total or '?'}"
    if latest.get("epoch") is not None:
        facts.append(f"epoch {latest['epoch']:.2f}")
    if left is not None:
        facts.append(f"ETA {duration(left)}")
    elif job.status == "running" and not phase and latest.get("eta_s") is not None:
        facts.append(f"ETA {duration(latest['eta_s'])}")  # as of the last logged step
    elif job.status == "running" and phase_name not in ("evaluating", "saving", "finishing"):
        facts.append("ETA after the first step")
    if last_train.get("tokens_per_s"):
        facts.append(f"{last_train['tokens_per_s']:.0f} tokens/s")
    facts.append(f"elapsed {duration(_elapsed(job))}")
    if last_train:
        facts.append(f"train loss {last_train['loss']:.4f}")
    if last_eval:
        facts.append(f"validation loss {last_eval['eval_loss']:.4f}")
    metrics = last_eval.get("metrics") or {}
    facts += [f"{k} {v:.3f}" for k, v in metrics.items() if isinstance(v, int | float)]
    icon = STATUS_ICONS.get(job.status, "")
    head = f"{icon} <b>Job #{job.id} · {_esc(job.name)}</b> · {_esc(job.status)}"
    if job.cancel_requested and job.status == "running":
        head += " · stopping (saving a checkpoint)…"
    extra = ""
    if phase_line:
        extra += f"<p class='train-phase' style='margin:2px 0'>⏱ <b>Now:</b> {_esc(phase_line)}</p>"
    if job.error:
        extra += f"<p style='color:#b91c1c;white-space:pre-wrap'><b>Error:</b> {_esc(job.error)}</p>"
    if job.status == "done" and job.version_id:
        extra += f"<p>Registered version #{job.version_id}: pick it by name in any model picker.</p>"
    if job.checkpoint and job.status in ("cancelled", "failed"):
        extra += f"<p>Last checkpoint: <code>{_esc(job.checkpoint)}</code>. Resume continues from it.</p>"
    bar = (
        f"<div style='background:#e5e7eb;border-radius:6px;height:14px;overflow:hidden;margin:6px 0'>"
        f"<div class='train-bar' style='background:#6366f1;height:100%;width:{fraction * 100:.1f}%'></div></div>"
    )
    return (
        f"<div id='train-progress-box' data-job='{job.id}' data-status='{_esc(job.status)}' data-step='{step}' "
        f"data-total='{total}' data-phase='{_esc(phase_name)}' data-eta='{'' if left is None else round(left)}'>"
        f"<p style='margin:0'>{head}</p>{bar}<p style='margin:0'>{' · '.join(facts)}</p>{extra}</div>"
    )


def loss_chart_svg(rows: list[dict]) -> str:
    """Train loss (solid) and validation loss (dashed, dots) over steps."""
    train = [(r["step"], r["loss"]) for r in rows if r.get("loss") is not None]
    valid = [(r["step"], r["eval_loss"]) for r in rows if r.get("eval_loss") is not None]
    if not train and not valid:
        empty = "<p><em>The loss chart fills in as the job logs steps.</em></p>"
        return f"<div id='train-chart-box' data-points='0'>{empty}</div>"
    width, height, left, bottom, top, right = 640, 260, 56, 34, 12, 16
    points = train + valid
    x_max = max(s for s, _ in points) or 1
    y_low, y_high = min(v for _, v in points), max(v for _, v in points)
    if y_high - y_low < 1e-9:
        y_low, y_high = y_low - 0.5, y_high + 0.5
    pad = (y_high - y_low) * 0.05
    y_low, y_high = y_low - pad, y_high + pad

    def xy(step: float, value: float) -> tuple[float, float]:
        x = left + step / x_max * (width - left - right)
        y = top + (y_high - value) / (y_high - y_low) * (height - top - bottom)
        return x, y

    parts = [
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" stroke="#9ca3af"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="#9ca3af"/>',
    ]
    decimals = min(6, max(0, 2 - math.floor(math.log10(y_high - y_low))))  # enough to tell the grid lines apart
    for i in range(5):  # y grid with values
        value = y_low + (y_high - y_low) * i / 4
        _, y = xy(0, value)
        parts.append(f'<line x1="{left}" x2="{width - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e5e7eb"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">{value:.{decimals}f}</text>')
    for step in sorted({round(x_max * i / 4) for i in range(5)}):  # whole steps, each once
        x, _ = xy(step, y_low)
        parts.append(f'<text x="{x:.1f}" y="{height - bottom + 16}" text-anchor="middle">{step}</text>')
    parts.append(f'<text x="{(left + width) / 2}" y="{height - 4}" text-anchor="middle">step</text>')
    for series, colour, dash in ((train, "#6366f1", ""), (valid, "#f59e0b", ' stroke-dasharray="6,4"')):
        if not series:
            continue
        path = " ".join(f"{x:.1f},{y:.1f}" for x, y in (xy(s, v) for s, v in series))
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"{dash}/>')
        for s, v in series[-200:] if series is valid else []:
            x, y = xy(s, v)
            parts.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}"><title>step {s}: {v:.4f}</title></circle>'
            )
    legend = (
        f'<g transform="translate({width - right - 210},{top + 4})"><rect width="205" height="22" fill="white" '
        'opacity="0.8"/><line x1="6" x2="26" y1="11" y2="11" stroke="#6366f1" stroke-width="2"/>'
        '<text x="30" y="15">train loss</text><line x1="110" x2="130" y1="11" y2="11" stroke="#f59e0b" '
        'stroke-width="2" stroke-dasharray="6,4"/><text x="134" y="15">validation</text></g>'
    )
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
        f'font-family="sans-serif" font-size="11" fill="currentColor" role="img" aria-label="training loss">'
        f"{''.join(parts)}{legend}</svg>"
    )
    return (
        f"<figure id='train-chart-box' data-points='{len(train)}' data-eval-points='{len(valid)}' "
        f"style='margin:0;overflow-x:auto'>{svg}</figure>"
    )


def preview_html(preview) -> str:
    """A causal-LM data preview (training/data.py DataPreview): examples with the masked prompt part marked."""
    stats = preview.token_stats
    lines = [
        f"<p><b>{preview.rows}</b> rows from {_esc(preview.source)} ({_esc(preview.format)}): "
        f"<b>{preview.train_rows}</b> train, <b>{preview.validation_rows}</b> validation. "
        f"Tokens per example: min {stats['min']:.0f}, median {stats['median']:.0f}, p95 {stats['p95']:.0f}, "
        f"max {stats['max']:.0f}. <b>{preview.truncated}</b> would be truncated at max_length={preview.max_length}.</p>"
    ]
    lines += [f"<p style='color:#b45309'>⚠️ {_esc(w)}</p>" for w in preview.warnings]
    lines.append(
        "<p><small>Grey, struck through: the prompt (masked, no loss). Green: what the model learns to write."
        "</small></p>"
    )
    for example in preview.examples:
        spans = []
        for segment in example.segments:
            style = (
                "background:#dcfce7;color:#14532d"
                if segment["trained"]
                else "color:#6b7280;text-decoration:line-through;text-decoration-color:#d1d5db"
            )
            cls = "trained" if segment["trained"] else "masked"
            spans.append(f"<span class='{cls}' style='{style}'>{_esc(segment['text'])}</span>")
        cut = " · truncated" if example.truncated else ""
        lines.append(
            f"<div class='train-example' style='border:1px solid #e5e7eb;border-radius:6px;padding:6px;margin:6px 0'>"
            f"<small>row {_esc(example.row_id)} · {example.tokens} tokens{cut}</small>"
            f"<pre style='white-space:pre-wrap;margin:4px 0'>{''.join(spans)}</pre></div>"
        )
    return "<div id='train-preview-box'>" + "".join(lines) + "</div>"


def encoder_preview_html(data, max_length: int) -> str:
    """An encoder data preview (training/encoder_data.py EncoderData): split sizes, labels and a few rows."""
    labels = ", ".join(_esc(label) for label in data.labels[:40]) or "(none: masked LM)"
    lines = [
        f"<p><b>{len(data.train)}</b> train and <b>{len(data.validation)}</b> validation rows from "
        f"{_esc(data.source)}; task {_esc(data.task)}; labels: {labels}. Rows longer than max_length={max_length} "
        "tokens are truncated.</p>"
    ]
    for row in data.train[:3]:
        shown = {k: v for k, v in row.items() if k != "id"}
        lines.append(f"<pre style='white-space:pre-wrap'>{_esc(json.dumps(shown, ensure_ascii=False)[:600])}</pre>")
    return "<div id='train-preview-box'>" + "".join(lines) + "</div>"


def error_html(message: str) -> str:
    items = [line[2:] if line.startswith("- ") else line for line in str(message).splitlines() if line.strip()]
    if len(items) > 1:
        body = _esc(items[0]) + "<ul>" + "".join(f"<li>{_esc(i)}</li>" for i in items[1:]) + "</ul>"
    else:
        body = _esc(items[0] if items else message)
    return f"<div class='train-error' style='color:#b91c1c'>⚠️ {body}</div>"


def queue_rows(jobs: list[Job]) -> list[list]:
    rows = []
    for job in jobs:
        step = f"{job.step or 0}/{job.total_steps or '?'}"
        rows.append(
            [
                job.id,
                job.name,
                f"{STATUS_ICONS.get(job.status, '')} {job.status}",
                step,
                job.config.get("base_model", ""),
                job.config.get("method", ""),
                (job.created_at or "")[:19].replace("T", " "),
                (job.finished_at or "")[:19].replace("T", " "),
                (job.error or "")[:120],
            ]
        )
    return rows


def version_rows(versions: list[ModelVersion]) -> list[list]:
    rows = []
    for v in versions:
        metrics = ", ".join(f"{k} {val:.3f}" for k, val in v.metrics.items() if isinstance(val, int | float))
        rows.append(
            [
                v.label,
                v.base_model,
                v.kind,
                v.method or "",
                v.task or "",
                len(v.row_ids),
                metrics,
                (v.created_at or "")[:19].replace("T", " "),
            ]
        )
    return rows
