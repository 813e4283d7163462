"""llmplay field match: per row, the share of the reference JSON object's top-level fields the answer got right."""

import evaluate

from llmplay.evaluation import structured
from llmplay.evaluation.metrics import scoring


class FieldMatch(evaluate.Metric):
    def _info(self):
        return scoring.text_pair_info(
            __doc__, "predictions: JSON answers; references: JSON objects (text); values compared normalised"
        )

    def _compute(self, predictions, references):
        return structured.field_match(scoring.decode(predictions), references)
