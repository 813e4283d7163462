"""Evaluation: datasets, runs, metrics (local Hugging Face ``evaluate`` modules) and bootstrap statistics."""
