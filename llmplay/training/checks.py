"""The small checks a training config is validated with (config.py, the method and task modules).

Each helper appends a message naming the setting to ``problems``, so one pass reports every problem at once.
"""

from __future__ import annotations

from llmplay.errors import LlmplayError


class TrainDataError(LlmplayError):
    """The training data cannot be used; the message names the rows or columns to fix."""


class TrainConfigError(LlmplayError):
    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("Training config is not valid:\n- " + "\n- ".join(problems))


def choice(problems: list[str], name: str, value, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        problems.append(f"{name} must be one of {', '.join(allowed)}; got {str(value)[:40]!r}")


def integer(problems: list[str], name: str, value, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        problems.append(f"{name} must be an integer between {low} and {high}; got {str(value)[:40]!r}")


def number(problems: list[str], name: str, value, low: float, high: float) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        problems.append(f"{name} must be a number between {low:g} and {high:g}; got {str(value)[:40]!r}")


def str_list(value) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, str) and v for v in value)


def or_list(names) -> str:
    """``a, b or c``: the choices a message offers."""
    names = list(names)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"
