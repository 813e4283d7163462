"""llmplay entity F1 (seqeval): micro precision/recall/F1 over entities in BIO tag sequences."""

import datasets
import evaluate
from seqeval.metrics import classification_report, f1_score, precision_score, recall_score


class EntityF1(evaluate.Metric):
    def _info(self):
        tags = datasets.Sequence(datasets.Value("string"))
        return evaluate.MetricInfo(
            description=__doc__,
            citation="seqeval: https://github.com/chakki-works/seqeval",
            inputs_description="predictions, references: one list of BIO tags per row; mode='strict' optional",
            features=datasets.Features({"predictions": tags, "references": tags}),
        )

    def _compute(self, predictions, references, mode=None):
        kwargs = {"mode": mode} if mode else {}
        report = classification_report(references, predictions, output_dict=True, zero_division=0, **kwargs)
        per_type = {k: float(v["f1-score"]) for k, v in report.items() if not k.endswith(" avg")}
        return {
            "score": float(f1_score(references, predictions, zero_division=0, **kwargs)),
            "precision": float(precision_score(references, predictions, zero_division=0, **kwargs)),
            "recall": float(recall_score(references, predictions, zero_division=0, **kwargs)),
            "per_type_f1": per_type,
            "row_mean": False,
        }
