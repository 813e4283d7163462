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
            inputs_description=(
                "predictions, references: one list of BIO tags per row; mode='strict' optional; "
                "report: which of f1 (default), precision, recall is the score"
            ),
            features=datasets.Features({"predictions": tags, "references": tags}),
        )

    def _compute(self, predictions, references, mode=None, report="f1"):
        if report not in ("f1", "precision", "recall"):
            raise ValueError(f"report must be f1, precision or recall; got {report!r}")
        kwargs = {"mode": mode} if mode else {}
        table = classification_report(references, predictions, output_dict=True, zero_division=0, **kwargs)
        per_type = {k: float(v["f1-score"]) for k, v in table.items() if not k.endswith(" avg")}
        scores = {
            "f1": float(f1_score(references, predictions, zero_division=0, **kwargs)),
            "precision": float(precision_score(references, predictions, zero_division=0, **kwargs)),
            "recall": float(recall_score(references, predictions, zero_division=0, **kwargs)),
        }
        # Per-sentence F1 for the results grid and paired comparisons; a sentence with no entities on
        # either side is a perfect 1.0. The corpus score above is micro-averaged, not their mean.
        rows = []
        for pred, ref in zip(predictions, references):
            if not any(t != "O" for t in pred + ref):
                rows.append(1.0)
            else:
                rows.append(float(f1_score([ref], [pred], zero_division=0, **kwargs)))
        return {"score": scores[report], **scores, "per_type_f1": per_type, "per_row": rows, "row_mean": False}
