"""llmplay answer relevance: per row, the MiniLM cosine of the question and the answer, clipped to [0, 1] (an
embedding proxy: does the answer talk about what was asked; evaluation/rag.py)."""

import evaluate

from llmplay.evaluation import rag
from llmplay.evaluation.metrics import scoring


class AnswerRelevance(evaluate.Metric):
    def _info(self):
        return scoring.text_pair_info(
            __doc__, "predictions: answers; references: unused; questions: each row's question"
        )

    def _compute(self, predictions, references, questions=None):
        if questions is None:
            raise ValueError("answer_relevance needs each row's question (questions=...)")
        return rag.answer_relevance(scoring.decode(predictions), questions)
