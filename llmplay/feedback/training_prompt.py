"""The prompt a feedback item is trained on: its chat turns, never text that already holds a chat template.

Most items store the prompt the model was sent as chat turns (or a base model's plain text), which is what
training wants. An evaluation row (source ``eval-run:<id>``) stores the exact prompt of the run's output:
for a local chat model that is the text after the model's chat template (``<|im_start|>user ...``), which a
trainer would wrap in a second chat template. Its training prompt is the template's own turns: the messages
stored with the item (``meta.messages``), else rebuilt from the item's template version and values; when
neither is possible the item has no training prompt, and exports and training leave it out with a reason.
One rule for the SFT / DPO / KTO exports and for training on the feedback store.
"""

from __future__ import annotations

from sqlite_utils import Database

from llmplay.errors import LlmplayError
from llmplay.feedback.records import Item, Prompt
from llmplay.templates.model import parse_template
from llmplay.templates.render import build_messages
from llmplay.templates.versions import version_by_id

EVAL_SOURCE = "eval-run:"  # eval_rows.py's item source prefix
NO_MESSAGES = "evaluation row without its template's messages (template version gone or refused the row)"


def _turns(value) -> list[dict] | None:
    if isinstance(value, list) and value and all(isinstance(m, dict) and "content" in m for m in value):
        return value
    return None


def _rebuilt(db: Database, item: Item) -> list[dict] | None:
    """The template's turns for the item's values, from the template version it was rendered with."""
    if item.template_version_id is None:
        return None
    try:
        version = version_by_id(db, item.template_version_id)
        return build_messages(parse_template(version.content, version.template), item.input or {})
    except LlmplayError:  # the version is gone, or no longer accepts the row's values
        return None


def training_prompt(db: Database, item: Item) -> tuple[Prompt | None, str | None]:
    """(the prompt to train on, None) or (None, the reason the item has none)."""
    stored = _turns((item.meta or {}).get("messages"))
    if stored is not None:
        return stored, None
    if not (item.source or "").startswith(EVAL_SOURCE):
        return item.prompt, None
    rebuilt = _rebuilt(db, item)
    return (rebuilt, None) if rebuilt is not None else (None, NO_MESSAGES)
