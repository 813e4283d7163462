"""Feedback: what people say about model outputs, kept so the model can learn from it.

No UI here: ``llmplay.ui.tabs.labeling.tab`` builds the Labeling tab on these modules.
- ``store``: queues, items, responses (draft / submitted / discarded), claims, adjudications, audit trail
- ``accepted``: the per-queue rule that turns responses into accepted answers (training data)
- ``agreement``: percent agreement, Cohen's / Fleiss' kappa, per-labeler agreement, disagreements
- ``exports``: accepted feedback as TRL's SFT / DPO / KTO layouts, and a CSV review table
- ``imports``: items (and existing responses) from JSONL / CSV files, all or nothing
- ``dashboard``: volume over time, per-labeler throughput, one summary line per queue
- ``cli``: ``llmplay feedback ...``

Training and the loop read accepted feedback from here; it must not know them, evaluation or the UI.
"""
