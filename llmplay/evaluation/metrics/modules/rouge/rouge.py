"""llmplay ROUGE: mean per-row F-measure of ROUGE-1, ROUGE-2 and ROUGE-L; the score is ROUGE-L."""

import evaluate
from rouge_score import rouge_scorer

from llmplay.evaluation.metrics import scoring

KINDS = ("rouge1", "rouge2", "rougeL")


class Rouge(evaluate.Metric):
    def _info(self):
        return scoring.text_pair_info(
            __doc__,
            "predictions: summaries; references: one reference per row; use_stemmer: bool",
            citation="Lin, 2004: ROUGE: A Package for Automatic Evaluation of Summaries",
        )

    def _compute(self, predictions, references, use_stemmer=False):
        predictions = scoring.decode(predictions)
        scorer = rouge_scorer.RougeScorer(list(KINDS), use_stemmer=use_stemmer)
        scores = [scorer.score(r, p or "") for p, r in zip(predictions, references)]
        per_kind = {k: [s[k].fmeasure for s in scores] for k in KINDS}
        means = {k: sum(v) / len(v) for k, v in per_kind.items()}
        return {
            "score": means["rougeL"],
            "per_row": per_kind["rougeL"],
            "row_mean": True,
            **means,
            "per_row_by_kind": per_kind,
        }
