"""What a line's online evaluation checks (its ``online`` setting) and the scoring that needs no model.

``llmplay loop set NAME 'online={sample: 0.2, checks: [{check: regex, value: "^(yes|no)$"}], judge: {}}'``

- ``sample``: the share of the line's API traces scored, 0 (off) to 1. Drawn from the trace id, so a trace is in
  or out once and for all, whichever process scores it.
- ``checks``: assertions on the reply, as evaluation's ``assertions`` metric runs them (contains, icontains,
  regex, json, json_schema, length); each scores 1 (passed) or 0, under ``name`` (default ``check`` or
  ``check:value``).
- ``parses`` (default on): the reference-free "answer found" rate: the line's template finds an answer in the
  reply (one of its labels, its regex's match); a reply it cannot read would be scored wrong by any metric.
- ``judge``: ``{}`` or ``{model: NAME, template: judge-rubric, max_new_tokens: 96}``: a judge model grades each
  sampled reply 1-5 against the request (evaluation/judge.py), scored 0-1; a verdict with no grade scores 0.
  Default model: the line's base model (name a larger one for a useful grade).

The scorer that runs them on traces lives in ``llmplay.loop.online``.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, fields
from typing import Any

from llmplay.errors import InvalidRequestError, short
from llmplay.evaluation.metrics import scoring
from llmplay.templates.model import Template

MAX_CHECKS = 20
PARSES = "answer found"
JUDGE = "judge"


class OnlineError(InvalidRequestError):
    pass


@dataclass(frozen=True)
class Check:
    check: str
    value: Any = None
    min_length: int | None = None
    max_length: int | None = None
    name: str = ""

    @property
    def label(self) -> str:
        if self.name:
            return self.name
        return self.check if self.value is None else f"{self.check}:{self.value}"

    def score(self, reply: str) -> tuple[float, str]:
        passed, why = scoring.check(reply, self.check, self.value, self.min_length, self.max_length)
        return float(passed), why


@dataclass(frozen=True)
class OnlineEval:
    sample: float = 0.0
    checks: tuple[Check, ...] = ()
    parses: bool = True
    judge: dict | None = None  # {"model", "template", "max_new_tokens"}; None: no judge

    @property
    def on(self) -> bool:
        return self.sample > 0 and (bool(self.checks) or self.parses or self.judge is not None)

    @classmethod
    def from_dict(cls, data: dict | None) -> OnlineEval:
        """Every problem named at once (OnlineError)."""
        data = dict(data or {})
        p: list[str] = []
        unknown = sorted(set(data) - {"sample", "checks", "parses", "judge"})
        if unknown:
            p.append(f"unknown online setting(s) {', '.join(unknown)} (known: sample, checks, parses, judge)")
        sample = data.get("sample", 0.0)
        if isinstance(sample, bool) or not isinstance(sample, int | float) or not 0 <= sample <= 1:
            p.append(f"online.sample must be a share from 0 to 1, not {short(sample)}")
            sample = 0.0
        checks = []
        raw_checks = data.get("checks") or []
        if not isinstance(raw_checks, list) or len(raw_checks) > MAX_CHECKS:
            p.append(f"online.checks must be a list of at most {MAX_CHECKS} checks")
            raw_checks = []
        for raw in raw_checks:
            check = _check(raw, p)
            if check is not None:
                checks.append(check)
        parses = data.get("parses", True)
        if not isinstance(parses, bool):
            p.append(f"online.parses must be true or false, not {short(parses)}")
        judge = data.get("judge")
        if judge is not None:
            if not isinstance(judge, dict) or set(judge) - {"model", "template", "max_new_tokens"}:
                p.append("online.judge must be {} or a mapping of model, template and max_new_tokens")
                judge = None
            else:
                tokens = judge.get("max_new_tokens", 96)
                if isinstance(tokens, bool) or not isinstance(tokens, int) or not 8 <= tokens <= 512:
                    p.append(f"online.judge.max_new_tokens must be a whole number from 8 to 512, not {short(tokens)}")
                for key in ("model", "template"):
                    if key in judge and not (isinstance(judge[key], str) and judge[key].strip()):
                        p.append(f"online.judge.{key} must be a name")
        if p:
            raise OnlineError("; ".join(p))
        return cls(float(sample), tuple(checks), parses, judge)

    def to_dict(self) -> dict:
        if self == OnlineEval():
            return {}
        checks = [{k: v for k, v in asdict(c).items() if v not in (None, "")} for c in self.checks]
        return {"sample": self.sample, "checks": checks, "parses": self.parses, "judge": self.judge}

    def drawn(self, trace_id: str) -> bool:
        """Whether this trace is in the sample: a stable draw from its id."""
        digest = int.from_bytes(hashlib.sha256(trace_id.encode()).digest()[:8], "big")
        return digest / 2**64 < self.sample

    def score_reply(self, reply: str, template: Template | None) -> tuple[dict[str, float], dict[str, str]]:
        """The model-free scores of one reply (checks and ``answer found``) and why a check failed."""
        scores, why = {}, {}
        for check in self.checks:
            scores[check.label], reason = check.score(reply)
            if reason:
                why[check.label] = reason
        if self.parses and template is not None:
            found = template.output.extract(reply) if (template.output.labels or template.output.regex) else reply
            scores[PARSES] = float(bool(found and str(found).strip()))
        return scores, why


def _check(raw, problems: list[str]) -> Check | None:
    if not isinstance(raw, dict) or set(raw) - {f.name for f in fields(Check)}:
        known = "check, value, min_length, max_length, name"
        problems.append(f"each online check is a mapping of {known}; not {short(raw)}")
        return None
    if raw.get("check") not in scoring.CHECKS:
        problems.append(f"online check {short(raw.get('check'))} is not one of {', '.join(scoring.CHECKS)}")
        return None
    check = Check(**raw)
    if check.check in ("contains", "icontains", "regex") and check.value in (None, ""):
        problems.append(f"online check {check.check} needs a value")
    if check.check == "regex":
        passed, why = scoring.check("", "regex", check.value)
        if "invalid regex" in why:
            problems.append(f"online check: {why}")
    return check
