"""The one rule for names that reach file names, queries and URLs (feedback queues, users)."""

from __future__ import annotations

from llmplay.errors import InvalidRequestError, short


def check_name(name: str, what: str, error: type[InvalidRequestError] = InvalidRequestError) -> str:
    """Letters, digits, '-', '_', '.'; 1-64 characters, not starting with '.' (file-safe). Raises ``error``."""
    name = (name or "").strip()
    ok = 0 < len(name) <= 64 and name[0] != "." and all(c.isalnum() or c in "-_." for c in name)
    if not ok or not name.isascii():
        raise error(
            f"{what.capitalize()} name {short(name)} is not allowed: use 1-64 letters, digits, '-', '_' or '.' "
            "(not starting with '.')."
        )
    return name
