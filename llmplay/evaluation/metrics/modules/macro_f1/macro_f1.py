"""llmplay macro-F1: unweighted mean of per-label F1; unparseable answers (None) miss their true label."""

import evaluate

from llmplay.evaluation.metrics import scoring


class MacroF1(evaluate.Metric):
    def _info(self):
        return scoring.text_pair_info(
            __doc__, "predictions: parsed labels or None; references: labels; labels: the label set"
        )

    def _compute(self, predictions, references, labels=None):
        predictions = scoring.decode(predictions)
        result = scoring.macro_f1(predictions, references, labels=labels)
        rows = scoring.classification_rows(predictions, references)
        return {
            "score": result["macro_f1"],
            "per_row": rows,  # correctness per row, for display; the score itself is not their mean
            "row_mean": False,
            "per_class_f1": result["per_class_f1"],
            "unparseable": sum(p is None for p in predictions),
        }
