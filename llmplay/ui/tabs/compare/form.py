"""The Compare form's small handlers: the column pickers follow the columns that exist, the message box empties
once a comparison answered, "New comparison" starts clean, the variables box follows the chosen templates."""

from __future__ import annotations

import json

import gradio as gr

from llmplay.errors import LlmplayError
from llmplay.templates import load_template
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


def variables_hint(library, values: str, *templates: str) -> tuple[str, str]:
    """(values box, hint): the chosen templates' variables; an empty box gets a JSON skeleton to fill in."""
    variables: dict[str, object] = {}
    for name in dict.fromkeys(t for t in templates if t):
        try:
            for v in load_template(library, name)[0].variables:
                variables.setdefault(v.name, "" if v.default is None else v.default)
        except LlmplayError:
            continue
    if not variables:
        return gr.skip(), NO_VALUES_HINT
    hint = "Template variables: " + ", ".join(f"`{n}`" for n in variables)
    if (values or "").strip() in ("", "{}"):
        return json.dumps(variables, ensure_ascii=False, indent=1), hint
    return gr.skip(), hint
