"""llmplay numeric accuracy: the last number in the reply equals the reference number within a tolerance."""

import evaluate

from llmplay.evaluation.metrics import scoring


class NumericMatch(evaluate.Metric):
    def _info(self):
        return scoring.text_pair_info(
            __doc__, "predictions: replies; references: numbers or texts ending in one; rel_tol, abs_tol"
        )

    def _compute(self, predictions, references, rel_tol=1e-6, abs_tol=1e-6):
        predictions = scoring.decode(predictions)
        rows = scoring.numeric_match(predictions, references, rel_tol=rel_tol, abs_tol=abs_tol)
        unparseable = sum(scoring.extract_number(p) is None for p in predictions)
        return {"score": sum(rows) / len(rows), "per_row": rows, "row_mean": True, "unparseable": unparseable}
