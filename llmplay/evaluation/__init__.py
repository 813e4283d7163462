"""Evaluation: runs (templates x models x dataset rows), metrics (local Hugging Face ``evaluate`` modules) and
bootstrap statistics.

Used by training (metrics) and the loop (gates); must not know training, the loop or the UI.
"""
