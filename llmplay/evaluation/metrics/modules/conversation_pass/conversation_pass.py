"""llmplay conversation pass: per conversation, 1 when every checked assistant turn met its expect, else 0."""

import evaluate

from llmplay.evaluation import turn_checks
from llmplay.evaluation.metrics import scoring


class ConversationPass(evaluate.Metric):
    def _info(self):
        return scoring.text_pair_info(
            __doc__, "predictions: JSON lists of replies; references: JSON lists of per-turn expectations"
        )

    def _compute(self, predictions, references):
        return turn_checks.conversation_pass(scoring.decode(predictions), references)
