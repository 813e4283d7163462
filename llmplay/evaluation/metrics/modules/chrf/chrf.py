"""llmplay chrF (sacrebleu, 0-100): corpus-level score; per-row sentence scores are for display only."""

import evaluate
import sacrebleu

from llmplay.evaluation.metrics import scoring


class Chrf(evaluate.Metric):
    def _info(self):
        return scoring.text_pair_info(
            __doc__,
            "predictions: system outputs; references: one reference per row",
            citation="Popović, 2015: chrF: character n-gram F-score for automatic MT evaluation",
        )

    def _compute(self, predictions, references):
        return scoring.sacrebleu_scores(sacrebleu.sentence_chrf, sacrebleu.corpus_chrf, predictions, references)
