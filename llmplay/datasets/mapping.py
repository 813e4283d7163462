"""Column mapping: which table column fills each template variable, and which holds the expected answer."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from llmplay.datasets.errors import DatasetError


@dataclass(frozen=True)
class ColumnMapping:
    variables: dict[str, str] = field(default_factory=dict)  # template variable -> column
    reference: str | None = None  # the expected-answer column, if any

    def to_json(self) -> str:
        return json.dumps({"variables": self.variables, "reference": self.reference}, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> ColumnMapping:
        data = json.loads(text or "{}")
        return cls(dict(data.get("variables") or {}), data.get("reference"))


def validate_mapping(mapping: ColumnMapping, columns: list[str]) -> None:
    """Every mapped column must exist; one message lists all missing ones and the columns there are."""
    wanted = [(f"variable {var!r}", col) for var, col in mapping.variables.items()]
    if mapping.reference is not None:
        wanted.append(("the reference", mapping.reference))
    missing = [f"{what} -> {col!r}" for what, col in wanted if col not in columns]
    if missing:
        raise DatasetError(
            f"Mapped column(s) not in the data: {'; '.join(missing)}. Available columns: {', '.join(columns)}."
        )


def suggest_mapping(variables: list[str], columns: list[str], reference: str | None = None) -> ColumnMapping:
    """Map each template variable to the column of the same name (ignoring case), where there is one."""
    by_lower = {c.lower(): c for c in columns}
    mapped = {v: by_lower[v.lower()] for v in variables if v.lower() in by_lower}
    if reference is None:
        reference = next((by_lower[c] for c in ("reference", "label", "answer", "expected") if c in by_lower), None)
    return ColumnMapping(mapped, reference)
