"""llmplay semantic similarity: cosine similarity of sentence embeddings of answer and reference (bundled MiniLM)."""

import evaluate

from llmplay.evaluation.metrics import scoring
from llmplay.models.embeddings import DEFAULT_ENCODER, get_embedder


class SemanticSimilarity(evaluate.Metric):
    def _info(self):
        return scoring.text_pair_info(
            __doc__, "predictions, references: strings; model: encoder name or folder (default MiniLM)"
        )

    def _compute(self, predictions, references, model=DEFAULT_ENCODER):
        # An unparseable answer (None) has no meaning to compare: it scores 0, it is not dropped.
        predictions = [p or "" for p in scoring.decode(predictions)]
        rows = [
            max(0.0, s) if p.strip() else 0.0
            for s, p in zip(get_embedder(model).similarity(predictions, references), predictions)
        ]
        return {"score": sum(rows) / len(rows), "per_row": rows, "row_mean": True}
