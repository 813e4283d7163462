"""Feedback: what people say about model outputs, kept so the model can learn from it.

No UI here: ``llmplay.ui.labeling_tab`` builds the Labeling tab on these modules.
- ``store``: queues, items, responses (draft / submitted / discarded), claims, adjudications, audit trail
- ``accepted``: the per-queue rule that turns responses into accepted answers (training data)
- ``legacy``: migration m007's move of the arena's old feedback inbox into the store
"""
