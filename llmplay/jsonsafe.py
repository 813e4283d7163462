"""The JSON loader for files and cells users send (feedback imports, backup manifests): nesting is bounded.

Python's parser recurses once per level: ``[[[[...`` 100,000 deep raises RecursionError (not a ValueError),
and a few hundred levels parse but then overflow whatever walks the value next (storing it, showing it).
``loads`` refuses both as ``JsonDepthError``, a ``ValueError`` like a syntax error, with the same limit as
YAML (``yamlsafe.MAX_DEPTH``).
"""

from __future__ import annotations

import json
from typing import Any

from llmplay.yamlsafe import MAX_DEPTH


class JsonDepthError(ValueError):
    """Valid JSON, perhaps, but nested deeper than llmplay reads."""

    def __init__(self, max_depth: int):
        super().__init__(f"nested more than {max_depth} levels deep")


def loads(text: str | bytes, *, max_depth: int = MAX_DEPTH, **kwargs) -> Any:
    """``json.loads`` that raises JsonDepthError for values nested more than ``max_depth`` levels."""
    try:
        value = json.loads(text, **kwargs)
    except RecursionError:
        raise JsonDepthError(max_depth) from None
    check_depth(value, max_depth)
    return value


def check_depth(value: Any, max_depth: int = MAX_DEPTH) -> None:
    """JsonDepthError when lists / dicts in ``value`` nest more than ``max_depth`` levels (walked without
    recursion, so the check itself cannot overflow)."""
    stack = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        if depth > max_depth:
            raise JsonDepthError(max_depth)
        stack.extend((child, depth + 1) for child in children)
