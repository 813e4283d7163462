"""llmplay tool arguments match: per row, 1 when the reply's first tool call names the reference's tool with
arguments equal to the reference's, compared normalised (no call expected: 1 when there is none)."""

import evaluate

from llmplay.evaluation import toolcalls
from llmplay.evaluation.metrics import scoring


class ToolArgsMatch(evaluate.Metric):
    def _info(self):
        return scoring.text_pair_info(
            __doc__, "predictions: tool calls as JSON (or 'none'); references: the expected call as JSON, or 'none'"
        )

    def _compute(self, predictions, references):
        return toolcalls.tool_args_match(scoring.decode(predictions), references)
