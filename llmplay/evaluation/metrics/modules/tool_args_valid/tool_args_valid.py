"""llmplay tool arguments valid: per row, 1 when the reply's first tool call names one of the template's tools and
its arguments satisfy that tool's parameters schema (no call expected: 1 when there is none)."""

import evaluate

from llmplay.evaluation import toolcalls
from llmplay.evaluation.metrics import scoring


class ToolArgsValid(evaluate.Metric):
    def _info(self):
        return scoring.text_pair_info(
            __doc__,
            "predictions: tool calls as JSON (or 'none'); references: the expected call as JSON, or 'none'; "
            "tools: the template's tools (OpenAI function format)",
        )

    def _compute(self, predictions, references, tools=None):
        if not tools:
            raise ValueError("tool_args_valid needs the tools whose schemas it checks the arguments against (tools=)")
        return toolcalls.tool_args_valid(scoring.decode(predictions), references, tools)
