"""llmplay BLEU (sacrebleu, 0-100): corpus-level score; per-row sentence scores are for display only."""

import evaluate
import sacrebleu

from llmplay.evaluation.metrics import scoring


class Bleu(evaluate.Metric):
    def _info(self):
        return scoring.text_pair_info(
            __doc__,
            "predictions: system outputs; references: one reference per row",
            citation="Post, 2018: A Call for Clarity in Reporting BLEU Scores",
        )

    def _compute(self, predictions, references):
        predictions = scoring.decode(predictions)
        outputs = [p or "" for p in predictions]  # no answer scores like an empty answer
        rows = [sacrebleu.sentence_bleu(p, [r]).score for p, r in zip(outputs, references)]
        return {"score": sacrebleu.corpus_bleu(outputs, [list(references)]).score, "per_row": rows, "row_mean": False}
