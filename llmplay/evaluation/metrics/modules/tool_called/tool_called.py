"""llmplay tool called: per row, 1 when the reply's first tool call names the reference's tool (no call expected:
1 when there is none)."""

import evaluate

from llmplay.evaluation import toolcalls
from llmplay.evaluation.metrics import scoring


class ToolCalled(evaluate.Metric):
    def _info(self):
        return scoring.text_pair_info(
            __doc__, "predictions: tool calls as JSON (or 'none'); references: the expected call as JSON, or 'none'"
        )

    def _compute(self, predictions, references):
        return toolcalls.tool_called(scoring.decode(predictions), references)
