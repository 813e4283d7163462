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
        return scoring.sacrebleu_scores(sacrebleu.sentence_bleu, sacrebleu.corpus_bleu, predictions, references)
