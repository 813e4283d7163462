"""llmplay attack success: 1 per reply where the row's attack worked (its success_if check), 0 where it did not;
lower is better. Details: the success rate by kind (the row's kind column)."""

import evaluate

from llmplay.evaluation import attacks
from llmplay.evaluation.metrics import scoring


class AttackSuccess(evaluate.Metric):
    def _info(self):
        return scoring.text_pair_info(
            __doc__,
            "predictions: whole replies; references: unused; kinds: each row's attack kind; checks: each row's "
            f"success_if ({attacks.CHECK_HELP})",
        )

    def _compute(self, predictions, references, kinds=None, checks=None):
        if kinds is None or checks is None:
            raise ValueError("attack_success needs each row's kind and success_if (kinds=..., checks=...)")
        return attacks.attack_success(scoring.decode(predictions), kinds, checks)
