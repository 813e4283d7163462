"""llmplay numeric accuracy: the last number in the reply equals the reference number within a tolerance."""

import datasets
import evaluate

from llmplay.evaluation.metrics import scoring


class NumericMatch(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=__doc__,
            citation="",
            inputs_description="predictions: replies; references: numbers or texts ending in one; rel_tol, abs_tol",
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def _compute(self, predictions, references, rel_tol=1e-6, abs_tol=1e-6):
        predictions = scoring.decode(predictions)
        rows = scoring.numeric_match(predictions, references, rel_tol=rel_tol, abs_tol=abs_tol)
        unparseable = sum(scoring.extract_number(p) is None for p in predictions)
        return {"score": sum(rows) / len(rows), "per_row": rows, "row_mean": True, "unparseable": unparseable}
