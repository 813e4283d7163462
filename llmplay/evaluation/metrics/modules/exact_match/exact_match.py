"""llmplay exact match: 1 per row whose answer equals the reference after whitespace normalisation."""

import evaluate

from llmplay.evaluation.metrics import scoring


class ExactMatch(evaluate.Metric):
    def _info(self):
        return scoring.text_pair_info(__doc__, "predictions, references: strings; ignore_case: compare case-folded")

    def _compute(self, predictions, references, ignore_case=False):
        predictions = scoring.decode(predictions)
        rows = scoring.exact_match(predictions, references, ignore_case=ignore_case)
        return {"score": sum(rows) / len(rows), "per_row": rows, "row_mean": True}
