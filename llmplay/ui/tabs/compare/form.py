"""The Compare form's small handlers: the column pickers follow the columns that exist, the message box empties
once a comparison answered, and "New comparison" starts clean."""

from __future__ import annotations

import gradio as gr

from llmplay.ui.access import declare
from llmplay.ui.tabs.compare.view import column_choices, column_count, kept_pick

NO_DIFF = "<p>Run a comparison, then pick two of its columns to see what one reply adds or drops.</p>"
FRESH = "New comparison: pick each column's model (and template), type a message and press **Compare**."
NO_VALUES_HINT = "Columns without a template send the message."
PICK_DEFAULTS = (1, 2, 1, 2, 1)  # diff from / to, preferred, rejected, the column to correct


@declare("view")
def fit_pickers(snapshot: dict, count, *values) -> list:
    """The column pickers (``PICK_DEFAULTS`` order) offer only the columns that exist: the comparison's, else
    the form's; a pick still offered is kept."""
    n, choices = column_count(snapshot, count), column_choices(snapshot, count)
    return [gr.Dropdown(choices=choices, value=kept_pick(v, n, d)) for v, d in zip(values, PICK_DEFAULTS)]


@declare("view")
def clear_sent_message(snapshot: dict):
    """Empty the message box once any column answered; keep it when all failed, so nothing is lost."""
    answered = any(not col.get("error") for col in (snapshot or {}).get("columns") or [])
    return "" if answered else gr.skip()
