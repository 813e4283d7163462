"""A comparison exported: a self-describing JSON record, or Markdown to paste anywhere."""

from __future__ import annotations

from datetime import UTC, datetime

EXPORT_FORMAT = "llmplay-comparison"


def export_payload(snapshot: dict) -> dict:
    """A self-describing record of a comparison (input, per-column config, replies, stats) for a JSON file."""
    columns = [
        {k: col.get(k) for k in ("column", "model", "config", "text", "error", "ttft_s", "tok_s", "tokens")}
        | {"finish_reason": col.get("finish_reason"), "request": col.get("request"), "history": col.get("history")}
        for col in snapshot.get("columns", [])
    ]
    return {
        "format": EXPORT_FORMAT,
        "version": 1,
        "exported_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "input": snapshot.get("input", {}),
        "wall_s": snapshot.get("wall_s"),
        "columns": columns,
    }


def export_markdown(snapshot: dict) -> str:
    """The comparison as Markdown to paste anywhere: the input, a stats table, then each reply."""
    inputs = snapshot.get("input", {})
    lines = ["# Comparison", ""]
    if inputs.get("message"):
        lines += [f"**Message:** {inputs['message']}", ""]
    if inputs.get("values"):
        lines += [f"**Template values:** `{inputs['values']}`", ""]
    lines += [
        "| column | model | template | backend | TTFT (s) | tokens/s | tokens | finish |",
        "|---|---|---|---|---|---|---|---|",
    ]
    columns = snapshot.get("columns", [])
    for col in columns:
        cfg = col.get("config") or {}
        cells = [col.get("column"), col.get("model"), cfg.get("template") or "—", col.get("backend")]
        cells += [col.get("ttft_s"), col.get("tok_s")]
        cells += [col.get("tokens"), "error" if col.get("error") else col.get("finish_reason")]
        lines.append("| " + " | ".join("—" if c is None else str(c) for c in cells) + " |")
    for col in columns:
        lines += ["", f"## Column {col.get('column')}: {col.get('model')}", ""]
        lines.append(f"⚠️ Error: {col['error']}" if col.get("error") else (col.get("text") or ""))
    return "\n".join(lines) + "\n"
