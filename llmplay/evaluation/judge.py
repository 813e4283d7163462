"""LLM-as-judge: a rubric template (``prompts/judge-rubric.yaml`` by default) rendered for each reply and
graded by a judge model. The judge's raw verdict is stored as an output like any other, so it is cached and
can be read in the results grid; its 1-5 grade becomes a 0-1 score, and a verdict without a grade scores 0
(counted, never dropped), like an unparseable answer."""

from __future__ import annotations

from typing import Any

from llmplay.errors import LlmplayError
from llmplay.templates.model import Template

REQUIRED_VARIABLES = ("input", "answer")
LOW, HIGH = 1, 5


def check_template(template: Template) -> None:
    names = set(template.variable_names())
    missing = [v for v in REQUIRED_VARIABLES if v not in names]
    if missing:
        raise LlmplayError(
            f"Judge template {template.name!r} must declare the variables {', '.join(REQUIRED_VARIABLES)} "
            f"(and may declare reference); it lacks {', '.join(missing)}."
        )
    if not template.output.regex:
        raise LlmplayError(f"Judge template {template.name!r} needs output.regex that finds the grade (1-5).")


def judge_values(template: Template, messages: list[dict], reply: str, reference: Any = None) -> dict[str, Any]:
    """The rubric's variables for one reply: the task is the prompt's last user message."""
    task = next((m["content"] for m in reversed(messages) if m["role"] == "user"), "")
    values: dict[str, Any] = {"input": task, "answer": reply}
    if "reference" in template.variable_names():
        values["reference"] = "" if reference is None else str(reference)
    return values


def grade(template: Template, verdict: str) -> int | None:
    """The 1-5 grade in a verdict, or None when it has none (or one out of range)."""
    found = template.output.extract(verdict or "")
    try:
        value = int(float(found)) if found is not None else None
    except ValueError:
        return None
    return value if value is not None and LOW <= value <= HIGH else None


def score(grade_value: int | None) -> float:
    """A grade on the 0-1 scale the scoreboard uses; no grade scores 0."""
    return 0.0 if grade_value is None else (grade_value - LOW) / (HIGH - LOW)
