"""llmplay context recall: per row, the share of the reference answer's sentences supported by the row's passages
(did retrieval find what the answer needs). An embedding proxy, not NLI (evaluation/rag.py)."""

import evaluate

from llmplay.evaluation import rag
from llmplay.evaluation.metrics import scoring


class ContextRecall(evaluate.Metric):
    def _info(self):
        return scoring.text_pair_info(
            __doc__, "predictions: unused; references: reference answers; contexts: each row's passages"
        )

    def _compute(self, predictions, references, contexts=None):
        if contexts is None:
            raise ValueError("context_recall needs each row's passages (contexts=...)")
        return rag.context_recall(references, contexts)
