"""llmplay exact match: 1 per row whose answer equals the reference after whitespace normalisation."""

import datasets
import evaluate

from llmplay.evaluation.metrics import scoring


class ExactMatch(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=__doc__,
            citation="",
            inputs_description="predictions, references: strings; ignore_case: compare case-folded",
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def _compute(self, predictions, references, ignore_case=False):
        predictions = scoring.decode(predictions)
        rows = scoring.exact_match(predictions, references, ignore_case=ignore_case)
        return {"score": sum(rows) / len(rows), "per_row": rows, "row_mean": True}
