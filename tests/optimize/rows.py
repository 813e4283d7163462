"""Invented financial-news sentences with their sentiment, for prompt searches in tests that must not depend on
../shared (a newcomer's clone has no shared datasets). Built from small parts so a test can ask for 60 rows."""

from __future__ import annotations

import itertools

COMPANIES = (
    "Northwind",
    "Brightline",
    "Halden",
    "Orion",
    "Vesta",
    "Meridian",
    "Kestrel",
    "Pinecrest",
    "Solano",
    "Lumen",
)
PHRASES = {
    "positive": (
        "{c} raised its profit forecast after record sales.",
        "Operating profit at {c} doubled from a year earlier.",
        "{c} won a contract worth EUR {n} million.",
    ),
    "negative": (
        "{c} swung to a net loss and cut {n} jobs.",
        "Sales at {c} fell {n} % as customers left.",
        "{c} warned that its profit will drop this year.",
    ),
    "neutral": (
        "{c} will publish its annual report on {n} March.",
        "The board of {c} meets on Thursday to review the budget.",
        "{c} employs about {n} people in five countries.",
    ),
}


def sentiment_rows(n: int) -> list[dict]:
    """``n`` distinct rows ``{"text", "label"}``, the labels taking turns."""
    out = []
    numbers = itertools.count(12, 7)
    cycle = itertools.cycle(itertools.product(range(3), COMPANIES))
    while len(out) < n:
        k, company = next(cycle)
        for label, phrases in PHRASES.items():
            if len(out) < n:
                out.append({"text": phrases[k].format(c=company, n=next(numbers)), "label": label})
    return out
