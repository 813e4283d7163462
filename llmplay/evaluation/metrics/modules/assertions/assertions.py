"""llmplay assertions: pass rate of one check per row (contains, regex, valid JSON, JSON schema, length)."""

import datasets
import evaluate

from llmplay.evaluation.metrics import scoring


class Assertions(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=__doc__,
            citation="",
            inputs_description=(
                "predictions: outputs; references: the per-row value to check against (substring, regex, "
                "schema as JSON) unless value= is given; check: one of "
                + ", ".join(scoring.CHECKS)
                + "; min_length/max_length for check='length'"
            ),
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def _compute(self, predictions, references, check="contains", value=None, min_length=None, max_length=None):
        predictions = scoring.decode(predictions)
        rows, failures = [], {}
        for i, (output, reference) in enumerate(zip(predictions, references)):
            passed, reason = scoring.check(output, check, reference if value is None else value, min_length, max_length)
            rows.append(float(passed))
            if not passed:
                failures[i] = reason
        return {"score": sum(rows) / len(rows), "per_row": rows, "row_mean": True, "failures": failures}
