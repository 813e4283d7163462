"""Side-by-side comparison: one input goes to several columns (model + template + decoding), whose replies
stream in parallel, one thread per column; the results, timings and conversations come back as plain data.

A column that cannot run (unknown model, bad template, unreachable endpoint) ends with an error result
while the others go on: errors are data here, as everywhere in the engine. Local models serialise per
loaded model, so two columns on the *same* model take turns; different models run side by side.

Conversations are lists of ``{"role", "content"}`` dicts holding exactly what each column's model was sent
(system message and few-shot examples included) plus its replies, so a follow-up turn or a re-roll sends
the same context again. No gradio here: the Compare tab and ``bench/compare.py`` both use this package.

A reply can become training signal: ``preference_from_comparison`` sends two columns' replies of a stored
comparison (``llmplay.compare.results``: the server keeps every finished one with its caller's name) to the
feedback queue ``preferences`` as a preferred/rejected pair, ``correction_from_comparison`` sends the answer a
column should have given to ``inbox`` (see ``llmplay.feedback.sources`` and ``llmplay.feedback.provenance``).

Modules: ``columns`` (what each column runs, its request), ``parallel`` (lanes and threads), ``state`` (events
folded into per-column state), ``feedback``, ``export``, ``results`` (stored comparisons). Templates are
named and loaded by ``llmplay.templates.refs``. Must not know evaluation, training, the loop or the UI.
"""

from llmplay.compare.columns import (
    MAX_COLUMNS,
    ROLES,
    Column,
    ColumnConfig,
    checked_history,
    prepare_column,
    prepare_reroll,
    sampled_seed,
)
from llmplay.compare.export import EXPORT_FORMAT, export_markdown, export_payload
from llmplay.compare.feedback import (
    FEEDBACK_SOURCE,
    column_prompt,
    correction_from_comparison,
    feedback_column,
    preference_from_comparison,
    same_input,
)
from llmplay.compare.parallel import lanes, stream_columns
from llmplay.compare.state import ColumnRun, Comparison, run_columns

__all__ = [
    "EXPORT_FORMAT",
    "FEEDBACK_SOURCE",
    "MAX_COLUMNS",
    "ROLES",
    "Column",
    "ColumnConfig",
    "ColumnRun",
    "Comparison",
    "checked_history",
    "column_prompt",
    "correction_from_comparison",
    "export_markdown",
    "export_payload",
    "feedback_column",
    "lanes",
    "preference_from_comparison",
    "prepare_column",
    "prepare_reroll",
    "run_columns",
    "same_input",
    "sampled_seed",
    "stream_columns",
]
