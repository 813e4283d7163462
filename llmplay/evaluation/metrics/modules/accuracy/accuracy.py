"""llmplay accuracy: share of rows whose parsed label equals the reference; unparseable (None) is wrong."""

import evaluate

from llmplay.evaluation.metrics import scoring


class Accuracy(evaluate.Metric):
    def _info(self):
        return scoring.text_pair_info(
            __doc__, "predictions: parsed labels, None where the reply had none; references: labels"
        )

    def _compute(self, predictions, references):
        predictions = scoring.decode(predictions)
        rows = scoring.classification_rows(predictions, references)
        unparseable = sum(p is None for p in predictions)
        return {"score": sum(rows) / len(rows), "per_row": rows, "row_mean": True, "unparseable": unparseable}
