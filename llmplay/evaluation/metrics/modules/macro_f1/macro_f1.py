"""llmplay macro-F1: unweighted mean of per-label F1; unparseable answers (None) miss their true label."""

import datasets
import evaluate

from llmplay.evaluation.metrics import scoring


class MacroF1(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=__doc__,
            citation="",
            inputs_description="predictions: parsed labels or None; references: labels; labels: the label set",
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
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
