"""llmplay turn pass: per conversation, the share of its checked assistant turns whose reply met the turn's expect."""

import evaluate

from llmplay.evaluation import turn_checks
from llmplay.evaluation.metrics import scoring


class TurnPass(evaluate.Metric):
    def _info(self):
        return scoring.text_pair_info(
            __doc__, "predictions: JSON lists of replies; references: JSON lists of per-turn expectations"
        )

    def _compute(self, predictions, references):
        return turn_checks.turn_pass(scoring.decode(predictions), references)
