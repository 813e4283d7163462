"""llmplay field F1: per row, F1 over (field, value) pairs of the answer and the reference JSON object."""

import evaluate

from llmplay.evaluation import structured
from llmplay.evaluation.metrics import scoring


class FieldF1(evaluate.Metric):
    def _info(self):
        return scoring.text_pair_info(
            __doc__, "predictions: JSON answers; references: JSON objects (text); values compared normalised"
        )

    def _compute(self, predictions, references):
        return structured.field_f1(scoring.decode(predictions), references)
