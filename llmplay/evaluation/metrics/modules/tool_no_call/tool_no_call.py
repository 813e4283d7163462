"""llmplay tool call decision: per row, 1 when the reply calls a tool exactly when the reference expects one (no
call where none is expected, a call where one is)."""

import evaluate

from llmplay.evaluation import toolcalls
from llmplay.evaluation.metrics import scoring


class ToolNoCall(evaluate.Metric):
    def _info(self):
        return scoring.text_pair_info(
            __doc__, "predictions: tool calls as JSON (or 'none'); references: the expected call as JSON, or 'none'"
        )

    def _compute(self, predictions, references):
        return toolcalls.tool_no_call(scoring.decode(predictions), references)
