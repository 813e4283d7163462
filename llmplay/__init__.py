"""llmplay: write prompts, compare models, measure them, fine-tune them, learn from feedback."""

__version__ = "0.1.0"
