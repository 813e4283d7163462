"""llmplay schema validity: 1 per answer that is JSON and valid against the template's JSON Schema (output.schema)."""

import evaluate

from llmplay.evaluation import structured
from llmplay.evaluation.metrics import scoring


class SchemaValid(evaluate.Metric):
    def _info(self):
        return scoring.text_pair_info(
            __doc__, "predictions: JSON answers; references: unused; schema: the JSON Schema (a mapping)"
        )

    def _compute(self, predictions, references, schema=None):
        if schema is None:
            raise ValueError("schema_valid needs the JSON Schema to check against (schema=...)")
        return structured.schema_valid(scoring.decode(predictions), schema)
