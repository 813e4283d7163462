"""Prompt optimisation (issue 24): search a template's instruction, few-shot examples and answer mode on dev rows,
then measure the winner against the start template on held-out test rows.

config.py (what a search is), splits.py (pool / dev / test), candidates.py (the search space), search.py (scoring
through the evaluation runner, successive halving, the test report, saving the winner), cli.py (`llmplay
optimize`). Headless: nothing here imports gradio; the UI calls ``search.PromptSearch`` with a progress callback.
"""
