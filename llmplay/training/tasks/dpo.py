"""DPO: an adapter trained on preference pairs ``{"prompt", "chosen", "rejected"}`` (TRL's DPOTrainer; the
trainer is training/dpo.py). Pairs come from inline rows, a file or accepted feedback, never a saved dataset."""

from __future__ import annotations

from dataclasses import dataclass

from llmplay.training import checks
from llmplay.training.tasks import register_task
from llmplay.training.tasks.causal_lm import CausalLmTask

DPO_METHODS = ("lora", "dora")


@dataclass(kw_only=True)
class DpoOptions:
    # The strength of the pull toward the reference (the parent version, else the base); TRL's default.
    dpo_beta: float = 0.1


@register_task
class Dpo(CausalLmTask):
    name = "dpo"
    options = DpoOptions

    def check_options(self, config, problems: list[str]) -> None:
        checks.number(problems, "dpo_beta", config.dpo_beta, 1e-4, 100.0)

    def check(self, config, problems: list[str]) -> None:
        if config.method not in DPO_METHODS:
            problems.append(f"task dpo trains method {checks.or_list(DPO_METHODS)}; got {str(config.method)[:40]!r}")
        d = config.data
        if d.source == "dataset":
            problems.append("task dpo trains on preference pairs: set data.source to rows, file or feedback")
        if d.source == "rows" and isinstance(d.rows, list):
            problems.extend(preference_row_problems(d.rows))

    def train(self, config, settings, job_dir, callbacks=(), *, output_dir=None, resume_from=None):
        from llmplay.training.dpo import train_dpo

        return train_dpo(config, settings, job_dir, callbacks, output_dir=output_dir, resume_from=resume_from)


def preference_text(value) -> str | None:
    """A reply of a preference pair as text: a string, or TRL's conversational form (one assistant turn)."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("content"), str):
        return value["content"]
    if isinstance(value, list) and len(value) == 1:
        return preference_text(value[0])
    return None


def preference_row_problems(rows: list, first_line: int = 1, limit: int = 5) -> list[str]:
    """What is wrong with preference pairs ``{"prompt", "chosen", "rejected"}`` (row numbers from first_line)."""
    problems: list[str] = []
    if not rows:
        return ["the preference data has no pairs"]
    for n, row in enumerate(rows, start=first_line):
        where = f"pair {n}"
        if not isinstance(row, dict):
            problems.append(f"{where} must be a mapping with prompt, chosen and rejected")
        else:
            missing = [k for k in ("prompt", "chosen", "rejected") if row.get(k) in (None, "", [])]
            prompt = row.get("prompt")
            chat = isinstance(prompt, list) and all(
                isinstance(m, dict) and isinstance(m.get("content"), str) for m in prompt
            )
            chosen, rejected = preference_text(row.get("chosen")), preference_text(row.get("rejected"))
            if missing:
                problems.append(f"{where} has no {' / '.join(missing)} (a pair needs prompt, chosen and rejected)")
            elif not (isinstance(prompt, str) or chat):
                problems.append(f"{where}: prompt must be text or a list of chat messages (role, content)")
            elif chosen is None or rejected is None:
                problems.append(f"{where}: chosen and rejected must be text (or one assistant message each)")
            elif not chosen.strip() or not rejected.strip():
                problems.append(f"{where}: chosen and rejected must not be blank")
            elif chosen.strip() == rejected.strip():
                problems.append(f"{where}: chosen and rejected are the same reply, so there is no preference to learn")
        if len(problems) >= limit:
            problems.append("(further pairs not checked)")
            break
    return problems
