"""What a prompt search is: a start template, a dataset, a model, the splits, the budget and which parts of the
search space are on, as one frozen dataclass. ``OptimizeConfig.from_dict`` reads the CLI's YAML and every check
of the values alone runs in ``__post_init__``, naming every problem at once; checks that need the data (rows,
labels, the model) run in ``search.prepare`` before anything is scored.

The YAML (every key but template, dataset and model is optional)::

    template: financial-sentiment          # name (its file now) or name@vN
    dataset: fpb                           # a saved dataset, a built-in, or {file, name, variables, reference}
    model: smollm2-135m-instruct
    seed: 0                                # the splits and the few-shot draws
    metric: accuracy                       # default: the template's first per-row metric
    splits: {pool: 100, dev: 100, test: 300}   # test: null = every row left over
    budget: {calls: 3000, minutes: 20}     # either or both; the final test scoring is not counted
    params: {max_new_tokens: 8}
    search:
      few_shot: true                       # fixed example sets bootstrapped from the pool
      retrieved: true                      # per-row examples: the pool rows nearest each row (default: pool > 0)
      max_examples: 4
      example_sets: 2                      # draws per number of examples
      instruction_edits: true              # label list, output-format line, input before the instruction
      answer_modes: [generate, likelihood]
      max_candidates: 48
      eta: 3                               # dev subsets grow eta-fold; at most eta candidates reach all dev rows
      min_rung: 10                         # rows of the smallest dev subset
      proposer: null                       # a catalog model (or endpoint) proposing instructions, OPRO-style
      proposals: 3                         # instructions asked of the proposer
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

from llmplay.errors import InvalidRequestError, short, short_list
from llmplay.limits import MAX_ROWS

ANSWER_MODES = ("generate", "likelihood")
MIN_TEST_ROWS = 30  # below this a bootstrap interval of the gain is too wide to show anything
MIN_DEV_ROWS = 10
MAX_CALLS = 10_000_000
MAX_MINUTES = 24 * 60
GROUPS = {
    "splits": ("pool", "dev", "test"),
    "budget": ("calls", "minutes"),
    "params": ("max_new_tokens",),
    "search": (
        "few_shot",
        "retrieved",
        "max_examples",
        "example_sets",
        "instruction_edits",
        "answer_modes",
        "max_candidates",
        "eta",
        "min_rung",
        "proposer",
        "proposals",
    ),
}
TOP = ("template", "dataset", "model", "seed", "metric", *GROUPS)
FIELD_OF = {("budget", "calls"): "budget_calls", ("budget", "minutes"): "budget_minutes"}


@dataclass(frozen=True)
class OptimizeConfig:
    template: str  # the start template: ``name`` or ``name@vN``
    dataset: str  # a saved dataset with a reference column
    model: str  # a catalog model (chat or base)
    seed: int = 0  # the splits and the few-shot draws
    metric: str | None = None  # what dev and test scores are; None = the template's first per-row metric
    pool: int = 100  # rows the few-shot examples come from (never scored as dev or test)
    dev: int = 100  # rows candidates are scored on
    test: int | None = None  # rows of the final report; None = every row left over
    budget_calls: int | None = None  # uncached model calls of the search (pool + dev); None = no limit
    budget_minutes: float | None = 20.0  # wall time of the search; None = no limit
    max_new_tokens: int = 8
    few_shot: bool = True
    retrieved: bool | None = None  # None: on when there is a pool
    max_examples: int = 4
    example_sets: int = 2
    instruction_edits: bool = True
    answer_modes: tuple[str, ...] = ANSWER_MODES
    max_candidates: int = 48
    eta: int = 3
    min_rung: int = MIN_DEV_ROWS
    proposer: str | None = None
    proposals: int = 3

    def __post_init__(self) -> None:
        problems = [f"'{k}' is required" for k in ("template", "dataset", "model") if not getattr(self, k)]
        if self.retrieved is None:
            object.__setattr__(self, "retrieved", _is_whole(self.pool) and self.pool > 0)
        problems += _whole(self, "seed", 0, 2**32 - 1)
        problems += _whole(self, "pool", 0, MAX_ROWS)
        problems += _whole(self, "dev", MIN_DEV_ROWS, MAX_ROWS)
        if self.test is not None:
            if not _is_whole(self.test) or not MIN_TEST_ROWS <= self.test <= MAX_ROWS:
                problems.append(
                    f"splits.test must be at least {MIN_TEST_ROWS} rows for a test interval; got {short(self.test)}"
                )
            else:
                object.__setattr__(self, "test", int(self.test))
        for key, high in (("budget_calls", MAX_CALLS), ("budget_minutes", MAX_MINUTES)):
            value = getattr(self, key)
            if value is None:
                continue
            number = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
            if number and value == 0:
                problems.append(f"{_label(key)} is 0: a search with no budget cannot score anything")
            elif not number or value < 0 or value > high or (key == "budget_calls" and not _is_whole(value)):
                problems.append(f"{_label(key)} must be a positive number up to {high}; got {short(value)}")
        problems += _whole(self, "max_new_tokens", 1, 2048)
        problems += _whole(self, "max_examples", 0, 32)
        problems += _whole(self, "example_sets", 1, 10)
        problems += _whole(self, "max_candidates", 1, 500)
        problems += _whole(self, "eta", 2, 10)
        problems += _whole(self, "min_rung", 1, MAX_ROWS)
        problems += _whole(self, "proposals", 1, 10)
        for key in ("few_shot", "retrieved", "instruction_edits"):
            if not isinstance(getattr(self, key), bool):
                problems.append(f"search.{key} must be true or false; got {short(getattr(self, key))}")
        modes = self.answer_modes
        if not isinstance(modes, tuple) or not modes or any(m not in ANSWER_MODES for m in modes):
            problems.append(f"search.answer_modes must list some of {', '.join(ANSWER_MODES)}; got {short(modes)}")
        for key in ("few_shot", "retrieved"):
            if getattr(self, key) is True and self.pool == 0:
                problems.append(f"search.{key} needs a pool of rows to draw examples from (splits.pool is 0)")
        if problems:
            raise InvalidRequestError("Invalid optimisation config: " + "; ".join(problems) + ".")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["answer_modes"] = list(self.answer_modes)
        return d

    def settings_text(self) -> str:
        """The search settings in one line, for the saved version's message."""
        parts = [f"seed {self.seed}", f"pool {self.pool} / dev {self.dev} / test {self.test or 'rest'}"]
        parts.append(f"few-shot {'on (up to ' + str(self.max_examples) + ')' if self.few_shot else 'off'}")
        parts.append(f"retrieved examples {'on' if self.retrieved else 'off'}")
        if self.proposer:
            parts.append(f"proposer {self.proposer} ({self.proposals} asked)")
        parts.append(f"instruction edits {'on' if self.instruction_edits else 'off'}")
        parts.append(f"modes {'+'.join(self.answer_modes)}")
        budget = [
            f"{self.budget_calls} calls" if self.budget_calls else "",
            f"{self.budget_minutes:g} min" if self.budget_minutes else "",
        ]
        parts.append("budget " + (", ".join(b for b in budget if b) or "none"))
        return "; ".join(parts)

    @classmethod
    def from_dict(cls, data: Any) -> OptimizeConfig:
        if not isinstance(data, dict):
            raise InvalidRequestError("An optimisation config is a mapping (template, dataset, model, splits, ...).")
        unknown = sorted(set(map(str, data)) - set(TOP))
        if unknown:
            raise InvalidRequestError(
                f"Unknown key(s) in the optimisation config: {short_list(unknown)} (known: {', '.join(TOP)})."
            )
        values: dict[str, Any] = {k: str(data.get(k) or "") for k in ("template", "dataset", "model")}
        if data.get("metric") is not None:
            values["metric"] = str(data["metric"])
        if data.get("seed") is not None:
            values["seed"] = _number(data["seed"])
        for group, keys in GROUPS.items():
            given = data.get(group)
            if given is None:
                continue
            if not isinstance(given, dict):
                raise InvalidRequestError(f"'{group}' must be a mapping of {', '.join(keys)}; got {short(given)}.")
            extra = sorted(set(map(str, given)) - set(keys))
            if extra:
                raise InvalidRequestError(
                    f"Unknown key(s) under '{group}': {short_list(extra)} (known: {', '.join(keys)})."
                )
            for key, value in given.items():
                field = FIELD_OF.get((group, key), key)
                if key == "answer_modes":
                    value = (
                        (value,) if isinstance(value, str) else tuple(value or ()) if isinstance(value, list) else value
                    )
                elif key == "proposer":
                    value = None if value in (None, "") else str(value)
                elif key in ("few_shot", "retrieved", "instruction_edits"):
                    pass  # booleans as written; __post_init__ refuses anything else
                elif value is not None or key in ("test", "calls", "minutes"):
                    value = None if value is None else _number(value)
                values[field] = value
        return cls(**values)


def _number(value: Any) -> Any:
    """Numeric text from YAML ("30") as a number; anything else is kept as written for ``__post_init__`` to
    report beside the other problems."""
    if isinstance(value, str):
        for kind in (int, float):
            try:
                return kind(value.strip())
            except ValueError:
                pass
    return value


def _is_whole(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and float(value).is_integer()


def _whole(config: OptimizeConfig, key: str, low: int, high: int) -> list[str]:
    value = getattr(config, key)
    if not _is_whole(value) or not low <= value <= high:
        return [f"{_label(key)} must be a whole number between {low} and {high}; got {short(value)}"]
    object.__setattr__(config, key, int(value))  # 30.0 from a number box is 30
    return []


def _label(key: str) -> str:
    """The key as the YAML writes it (``budget.calls`` for budget_calls)."""
    for (group, name), field in FIELD_OF.items():
        if field == key:
            return f"{group}.{name}"
    for group, keys in GROUPS.items():
        if key in keys:
            return f"{group}.{key}"
    return key
