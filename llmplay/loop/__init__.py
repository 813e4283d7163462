"""Continual learning: model lines that learn from accepted feedback in updates (gather data, train, gate,
promote), a scheduler that starts them, and the CLI.

The lines' storage and aliases are ``llmplay.models.lines``; ``lines`` here adds the loop's settings and
rules. It sits above feedback, training and evaluation, which must not know it; it must not know the UI.
"""
