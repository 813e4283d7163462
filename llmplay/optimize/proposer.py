"""Instructions proposed by a model (OPRO-style): the proposer reads the task, the current instruction and rows
the current template gets wrong, and writes an improved instruction; each accepted one replaces the instruction
lines of the start template's body (the input lines stay as they are) and becomes a search candidate.

A proposer is any catalog chat or base model, or an endpoint. Whatever it says is checked before it becomes a
template: a reply that is empty, too long, holds Jinja syntax (it would be rendered, not shown), repeats the
current instruction or an earlier proposal is left out with a note. A proposer that fails (load error, HTTP
error, timeout) gives a note, never an exception: the search goes on with its deterministic edits.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace

from llmplay.engine.types import GenerationParams, GenerationRequest, GenerationResult
from llmplay.errors import InvalidRequestError, LlmplayError
from llmplay.optimize.candidates import _join, _parts
from llmplay.templates.model import Template, template_problems
from llmplay.templates.render import base_model_prompt

START, END = "<instruction>", "</instruction>"
MAX_CHARS = 600  # an instruction, not an essay: longer replies are the model rambling
MAX_ROWS = 5  # wrong rows shown to the proposer: enough to see a pattern, short enough for a small context
MAX_VALUE = 400  # characters of one shown value (a long document would crowd out the rest)
JINJA = ("{{", "{%", "{#")

REASONS = {
    "empty": "the reply held no instruction",
    "long": f"longer than {MAX_CHARS} characters",
    "jinja": "it holds Jinja syntax ({{, {% or {#) that would be rendered as part of the template",
    "same": "same as the current instruction",
    "duplicate": "same as an earlier proposal",
    "invalid": "the template it makes is not valid",
}


@dataclass(frozen=True)
class WrongRow:
    """A dev or pool row the current template gets wrong."""

    values: dict[str, str]  # template variable -> the row's value
    expected: str  # the reference
    answer: str | None  # what the model answered (None: nothing could be extracted from its reply)


def propose_instructions(
    engine,
    proposer: str,
    start: Template,
    wrong: list[WrongRow],
    n: int = 3,
    seed: int = 0,
    max_new_tokens: int = 160,
) -> tuple[list[tuple[Template, str]], list[str]]:
    """Up to ``n`` templates, each the start with a proposed instruction, with what changed; and notes.

    Raises InvalidRequestError for a proposer name the catalog does not know or a model that cannot write text;
    anything that goes wrong while proposing is a note."""
    spec = check_proposer(engine, proposer)
    parts = _parts(start.body)
    if parts is None:
        return [], [f"proposer {proposer} not asked: the body is not instruction lines and input lines"]
    instruction, input_, input_last = parts
    messages = [{"role": "user", "content": meta_prompt(start, instruction, wrong)}]
    # A base model continues text: the opening marker is written for it, so its first words are the instruction.
    prompt = base_model_prompt(messages) + START + "\n" if spec.kind == "base" else messages

    out: list[tuple[Template, str]] = []
    rejected: Counter[str] = Counter()
    seen = {_norm(instruction)}
    known = set(template_problems(start))  # the start's own problems (if any) are not the proposal's fault
    for i in range(n):
        # Sampled, one seed per ask: greedy decoding would give the same proposal n times.
        params = GenerationParams(
            max_new_tokens=max_new_tokens, temperature=0.8, top_p=0.95, stop=(END,), seed=seed + i
        )
        try:
            result = _ask(engine, spec, GenerationRequest.of(prompt, params))
            error = result.error
        except Exception as exc:  # noqa: BLE001 -- a broken proposer must never stop the search
            result, error = None, str(exc) or type(exc).__name__
        if error:
            # Asking again would fail the same way (and an endpoint's retries cost seconds each).
            text = error if len(error) <= 300 else error[:300] + "…"
            failed = f"proposer {proposer} failed: {text}; the search goes on with the deterministic edits"
            return out, [*_rejection_notes(proposer, rejected, n), failed]
        proposed = parse_reply(result.text)
        reason = _refusal(proposed, instruction, seen)
        template = None
        if reason is None:
            template = replace(start, body=_join(proposed, input_, input_last))
            if set(template_problems(template)) - known:
                reason = "invalid"
        if reason is not None:
            rejected[reason] += 1
            continue
        seen.add(_norm(proposed))
        out.append((template, f"proposed instruction {len(out) + 1} (by {proposer})"))
    return out, _rejection_notes(proposer, rejected, n)


def check_proposer(engine, proposer: str):
    """The proposer's catalog entry; InvalidRequestError (bad input, before any search runs) if it cannot propose."""
    try:
        spec = engine.catalog.get(proposer)
    except LlmplayError as exc:
        raise InvalidRequestError(f"Proposer: {exc}") from None
    if spec.kind not in ("chat", "base"):
        raise InvalidRequestError(
            f"Proposer {proposer!r} is a {spec.kind} model; a proposer writes text (chat or base)."
        )
    return spec


def _ask(engine, spec, request: GenerationRequest) -> GenerationResult:
    """One reply. Streamed because a local model samples on its fast decoder only there (a batch that samples
    runs on transformers: several times slower on CPU); an endpoint answers the same either way."""
    for event in engine.stream(spec, request):
        if event.done:
            return event.result
    return GenerationResult.failure("the reply ended without a result", spec.name)


def meta_prompt(start: Template, instruction: str, wrong: list[WrongRow]) -> str:
    """What the proposer reads: the task, the allowed answers, the current instruction, the rows it misses."""
    lines = ["You improve the instructions given to a language model.", ""]
    task = start.description or f"a {start.task} task"
    lines.append(f"The task: {task}")
    if start.output.labels:
        lines.append(f"Allowed answers: {', '.join(start.output.labels)}.")
    if start.output.format:
        lines.append(f"Answer format: {start.output.format}")
    lines += ["", "The current instruction:", START, instruction, END, ""]
    if wrong:
        lines.append("With it the model answered these inputs wrongly:")
        for k, row in enumerate(wrong[:MAX_ROWS], 1):
            lines.append(f"Example {k}")
            lines += [f"{name}: {_cut(value)}" for name, value in row.values.items()]
            lines.append(f"Correct answer: {_cut(row.expected)}")
            got = "(no usable answer)" if row.answer is None or not str(row.answer).strip() else _cut(row.answer)
            lines.append(f"The model's answer: {got}")
        lines.append("")
    lines.append(
        "Write one better instruction for this task: general (do not quote these examples), clear about which "
        "answers are allowed, a few sentences at most. The input is placed after the instruction, so do not "
        f"repeat it. Reply with only the new instruction, between {START} and {END}."
    )
    return "\n".join(lines)


def parse_reply(text: str) -> str:
    """The instruction in a reply: between the markers (the closing one may be cut off by the stop string or the
    token limit), else the first paragraph; wrapping quotes and a leading label go."""
    text = (text or "").replace("\r\n", "\n")
    if START in text or END in text:
        text = text.split(START, 1)[-1].split(END, 1)[0]
    else:
        text = next((p for p in text.split("\n\n") if p.strip()), "")
    text = text.strip().strip("`\"'").strip()
    for label in ("New instruction:", "Instruction:"):
        if text.casefold().startswith(label.casefold()):
            text = text[len(label) :].strip()
    return text


def _refusal(proposed: str, instruction: str, seen: set[str]) -> str | None:
    if not proposed:
        return "empty"
    if len(proposed) > MAX_CHARS:
        return "long"
    if any(mark in proposed for mark in JINJA):
        return "jinja"
    if _norm(proposed) == _norm(instruction):
        return "same"
    if _norm(proposed) in seen:
        return "duplicate"
    return None


def _rejection_notes(proposer: str, rejected: Counter, asked: int) -> list[str]:
    return [
        f"proposer {proposer}: {count} of {asked} proposals left out: {REASONS[r]}" for r, count in rejected.items()
    ]


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()


def _cut(value) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= MAX_VALUE else text[:MAX_VALUE] + "…"
