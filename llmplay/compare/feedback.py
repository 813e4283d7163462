"""A comparison's replies as training signal: two columns as a preference pair, one column's correction."""

from __future__ import annotations

import json

from sqlite_utils import Database

from llmplay.compare.results import load_comparison
from llmplay.errors import InvalidRequestError
from llmplay.feedback.provenance import Sender
from llmplay.feedback.sources import Sent, send_correction, send_preference
from llmplay.feedback.store import Prompt
from llmplay.templates.versions import parse_ref

FEEDBACK_SOURCE = "compare"


def feedback_column(comparison: dict | None, number: int | str | None) -> dict:
    """Column ``number`` (1-based) of a comparison dict, checked to have a finished reply to send."""
    columns = (comparison or {}).get("columns") or []
    if not columns:
        raise InvalidRequestError("Run a comparison first: feedback is about its replies.")
    try:
        index = int(number) - 1
    except (TypeError, ValueError):
        raise InvalidRequestError(f"Choose a column (1 to {len(columns)}); got {number!r}.") from None
    if not 0 <= index < len(columns):
        raise InvalidRequestError(f"This comparison has columns 1 to {len(columns)}; there is no column {number}.")
    col = columns[index]
    name = f"Column {index + 1} ({col.get('model') or 'no model'})"
    if col.get("error"):
        raise InvalidRequestError(f"{name} failed, so it has no reply to send: {col['error']}")
    if col.get("state") != "done" or not col.get("request"):
        raise InvalidRequestError(f"{name} has not finished its reply; wait for it, or run the comparison again.")
    return col


def column_prompt(col: dict) -> Prompt:
    """What the column's model was sent: chat messages, or the raw text a base model continued."""
    request = col["request"]
    return request["messages"] if "messages" in request else request["prompt"]


def same_input(a: dict, b: dict) -> bool:
    """Whether two columns answered the same input, so that their replies form a preference pair.

    Either they were sent the same conversation (a base model's raw text counts as one user turn), or both
    rendered the same template version on the first turn: the comparison's values are shared, only the
    model's format differs (chat messages or one text)."""

    def as_messages(col: dict) -> list[dict]:
        prompt = column_prompt(col)
        return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else prompt

    version = (a.get("config") or {}).get("template_version_id")
    same_template = version is not None and version == (b.get("config") or {}).get("template_version_id")
    return same_template or as_messages(a) == as_messages(b)


def _known(comparison: dict, col: dict, side: str = "") -> dict:
    """What an item records about a column: model, adapter, template (name), its version, the input values."""
    config = col.get("config") or {}
    template = config.get("template")
    known = {
        f"model{side}": config.get("model"),
        f"adapter{side}": config.get("adapter"),
    }
    if not side:
        inputs = comparison.get("input") if isinstance(comparison.get("input"), dict) else {}
        values = inputs.get("values")
        if isinstance(values, str):  # the tab sends the values box's JSON text
            try:
                values = json.loads(values) if values.strip() else None
            except ValueError:
                values = None
        known |= {
            "template": parse_ref(template)[0] if template else None,
            "template_version_id": config.get("template_version_id"),
            "input": values if isinstance(values, dict) and template else None,
            "meta": {"column": col.get("column"), "params": config.get("params")},
        }
    return known


def preference_from_comparison(db: Database, comparison_id: int, preferred: int, rejected: int, sender: Sender) -> Sent:
    """Send column ``preferred``'s reply as the chosen one and column ``rejected``'s as the rejected one of the
    stored comparison ``comparison_id`` (``sender``'s own, see results.py) to the feedback queue
    ``preferences`` (source ``compare``); the prompt kept is what the preferred column's model was sent, and the
    sender's response is 'a' (the chosen reply)."""
    comparison = load_comparison(db, comparison_id, sender).snapshot()
    if (comparison or {}).get("columns") and str(preferred) == str(rejected):
        raise InvalidRequestError("Choose two different columns: one preferred reply and one rejected reply.")
    chosen, lost = feedback_column(comparison, preferred), feedback_column(comparison, rejected)
    for number, col in ((preferred, chosen), (rejected, lost)):
        if not (col.get("text") or "").strip():
            raise InvalidRequestError(
                f"Column {number}'s reply is empty, so it cannot be half of a pair; send a correction for it instead."
            )
    if not same_input(chosen, lost):
        raise InvalidRequestError(
            f"Columns {preferred} and {rejected} were sent different prompts (another template, system message or "
            "conversation), so their replies are not a pair for one prompt; send a correction for one of them instead."
        )
    return send_preference(
        db,
        column_prompt(chosen),
        chosen["text"],
        lost["text"],
        source=FEEDBACK_SOURCE,
        user=sender.name,
        role=sender.role,
        origin={"comparison": comparison["id"], "columns": [chosen.get("column"), lost.get("column")]},
        **_known(comparison, chosen),
        **_known(comparison, lost, "_b"),
    )


def correction_from_comparison(db: Database, comparison_id: int, column: int, correction: str, sender: Sender) -> Sent:
    """Send 'column ``column`` of the stored comparison ``comparison_id`` (``sender``'s own) should have answered
    ``correction``' to the feedback queue ``inbox`` (source ``compare``), with the sender's correction (their
    own input) as their submitted response."""
    comparison = load_comparison(db, comparison_id, sender).snapshot()
    col = feedback_column(comparison, column)
    if not (correction or "").strip():
        raise InvalidRequestError("Write the correct answer first; it is empty.")
    return send_correction(
        db, column_prompt(col), col.get("text") or "", correction, source=FEEDBACK_SOURCE, user=sender.name,
        role=sender.role, origin={"comparison": comparison["id"], "columns": [col.get("column")]},
        **_known(comparison, col),
    )  # fmt: skip
