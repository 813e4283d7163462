"""llmplay faithfulness: per row, the share of the answer's sentences supported by the row's passages. An embedding
proxy, not NLI (content-word coverage, the numbers stated, MiniLM cosine: evaluation/rag.py); grade it with a judge
model instead through judge: {template: judge-faithfulness}."""

import evaluate

from llmplay.evaluation import rag
from llmplay.evaluation.metrics import scoring


class Faithfulness(evaluate.Metric):
    def _info(self):
        return scoring.text_pair_info(
            __doc__, "predictions: answers; references: unused; contexts: each row's passages (lists or JSON text)"
        )

    def _compute(self, predictions, references, contexts=None):
        if contexts is None:
            raise ValueError("faithfulness needs each row's passages (contexts=...)")
        return rag.faithfulness(scoring.decode(predictions), contexts)
