"""The search space: candidate templates derived from the start template, each with a short "what changed".

Three independent parts, each switchable (config.py):
- instruction edits, deterministic: the list of labels the answer must be one of, an explicit output-format
  line, and the input placed before the instruction instead of after it (or the reverse); and all three;
- few-shot example sets drawn from the pool: rows the start template answers correctly first (DSPy's
  BootstrapFewShot), balanced over the labels, topped up with labelled pool rows where a label has too few
  correct ones (a model that answers "positive" to everything gets no correct "negative" row); plus no examples;
  and per-row retrieved examples: the whole labelled pool stored in the template (``retrieve``), each row shown the
  k pool rows nearest it (llmplay/templates/retrieval.py), in place of the fixed examples;
- the answer mode: generate (the template's extract parses the reply) or likelihood (the likeliest label).
Candidates that change one part come first, so ``max_candidates`` cuts the combinations, never a single edit.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, replace
from typing import Any

from llmplay.templates.model import Example, Retrieval, Template

MODE_TEXT = {"generate": "answer by generating text", "likelihood": "answer by likelihood over the labels"}


@dataclass(frozen=True)
class Candidate:
    id: int  # 0 is the start template
    template: Template
    changed: str  # what differs from the start, in a few words

    @property
    def mode(self) -> str:
        return self.template.output.mode

    @property
    def shots(self) -> int:
        """Examples in each prompt: the fixed ones and the retrieved ones."""
        t = self.template
        return len(t.examples) + (t.retrieve.k if t.retrieve is not None else 0)

    @property
    def prompt_chars(self) -> int:
        """The prompt's size without a row: the tie-break toward shorter prompts (fewer tokens per call)."""
        t = self.template
        shots = sum(_chars(e) for e in t.examples)
        count = len(t.examples)
        if t.retrieve is not None and t.retrieve.pool:  # k pool rows of average size per prompt
            shots += t.retrieve.k * sum(_chars(e) for e in t.retrieve.pool) / len(t.retrieve.pool)
            count += t.retrieve.k
        return int(len(t.system) + len(t.body) * (1 + count) + shots)


def _chars(example: Example) -> int:
    return len(json.dumps(example.values, ensure_ascii=False)) + len(example.output)


# ---- instruction edits ----------------------------------------------------------------------------------------
def _parts(body: str) -> tuple[str, str, bool] | None:
    """(instruction, input, input_last) when the body is instruction lines then the lines that hold variables,
    or the reverse; None for any other layout (Jinja blocks, variables inside the instruction): left alone."""
    if "{%" in body:
        return None
    lines = body.split("\n")
    marks = ["{{" in line for line in lines]
    if all(marks) or not any(marks):
        return None
    first = marks.index(True)
    if all(marks[first:]):
        return "\n".join(lines[:first]).rstrip(), "\n".join(lines[first:]), True
    last = marks.index(False)
    if first == 0 and not any(marks[last:]):
        return "\n".join(lines[last:]).strip("\n"), "\n".join(lines[:last]), False
    return None


def _join(instruction: str, input_: str, input_last: bool) -> str:
    return f"{instruction}\n{input_}" if input_last else f"{input_}\n{instruction}"


def _add_line(t: Template, line: str) -> Template:
    """``line`` at the end of the instruction (next to the input it is about), or of the body."""
    parts = _parts(t.body)
    if parts is None:
        return replace(t, body=f"{t.body.rstrip()}\n{line}")
    instruction, input_, last = parts
    return replace(t, body=_join(f"{instruction.rstrip()}\n{line}".lstrip("\n"), input_, last))


def label_edit(t: Template) -> Template | None:
    if not t.output.labels:
        return None
    return _add_line(t, f"Answer with exactly one of these labels: {', '.join(t.output.labels)}.")


def format_edit(t: Template) -> Template:
    line = f"Output format: {t.output.format}" if t.output.format else "Reply with the answer only, nothing else."
    return _add_line(t, line)


def order_edit(t: Template) -> Template | None:
    parts = _parts(t.body)
    if parts is None:
        return None
    instruction, input_, last = parts
    return replace(t, body=_join(instruction, input_, not last))


def instruction_variants(start: Template) -> list[tuple[Template, str]]:
    """The start, then each deterministic edit alone, then all of them together."""
    out: list[tuple[Template, str]] = [(start, "")]
    order_text = "input before the instruction"
    parts = _parts(start.body)
    if parts is not None and not parts[2]:
        order_text = "instruction before the input"
    edits = [(label_edit, "label list"), (format_edit, "output-format line"), (order_edit, order_text)]
    texts, combined = [], start
    for edit, text in edits:
        one = edit(start)
        if one is not None and one != start:
            out.append((one, text))
            both = edit(combined)
            if both is not None:
                combined, texts = both, [*texts, text]
    if len(texts) > 1:
        out.append((combined, " + ".join(texts)))
    return out


# ---- few-shot example sets -------------------------------------------------------------------------------------
def example_variants(
    start: Template,
    pool: list[dict[str, Any]],
    correct: list[bool],
    variables: dict[str, str],
    reference: str,
    max_examples: int,
    sets: int,
    seed: int,
) -> list[tuple[tuple[Example, ...] | None, str]]:
    """(examples, what changed) for each number of examples and draw; the first is the start's own (None)."""
    out: list[tuple[tuple[Example, ...] | None, str]] = [(None, "")]
    if start.examples:
        out.append(((), "no examples"))
    if max_examples < 1 or not pool:
        return out
    for size in sorted({max(1, max_examples // 2), max_examples}):
        drawn: set[tuple[int, ...]] = set()
        for s in range(sets):
            rng = random.Random(f"{seed}:{size}:{s}")
            picked, boot = _draw(rng, pool, correct, reference, start.output.labels, size)
            if not picked or tuple(picked) in drawn:
                continue
            drawn.add(tuple(picked))
            examples = tuple(_example(pool[i], variables, reference, start.output.labels) for i in picked)
            labelled = len(picked) - boot
            how = f"{boot} bootstrapped" + (f", {labelled} labelled" if labelled else "")
            out.append((examples, f"{len(picked)} pool examples (set {len(drawn)}: {how})"))
    return out


def retrieved_variants(
    start: Template, pool: list[dict[str, Any]], variables: dict[str, str], reference: str, max_examples: int
) -> list[tuple[Retrieval, str]]:
    """Per-row retrieved examples from the whole labelled pool, for half and all of ``max_examples``."""
    rows = tuple(_example(row, variables, reference, start.output.labels) for row in pool)
    rows = tuple(e for e in rows if e.output)  # a row without its answer teaches nothing
    sizes = sorted({max(1, max_examples // 2), max_examples} if max_examples >= 1 else set())
    return [
        (Retrieval(k, rows), f"{k} retrieved examples per row (of {len(rows)} pool rows)")
        for k in sizes
        if k <= len(rows)
    ]


def _draw(rng, pool, correct, reference, labels, size) -> tuple[list[int], int]:
    """``size`` pool rows taken in turn from each label: correct answers first, else labelled rows."""
    order = [_norm(x) for x in labels]
    right: dict[str, list[int]] = {}
    other: dict[str, list[int]] = {}
    for i, row in enumerate(pool):
        label = _norm(row.get(reference))
        (right if correct[i] else other).setdefault(label, []).append(i)
        if label not in order:
            order.append(label)
    for bucket in (*right.values(), *other.values()):
        rng.shuffle(bucket)
    picked, boot = [], 0
    while len(picked) < size:
        took = False
        for label in order:
            if len(picked) >= size:
                break
            if right.get(label):
                picked.append(right[label].pop())
                boot, took = boot + 1, True
            elif other.get(label):
                picked.append(other[label].pop())
                took = True
        if not took:
            break
    return picked, boot


def _example(row: dict, variables: dict[str, str], reference: str, labels: tuple[str, ...]) -> Example:
    answer = str(row.get(reference, "")).strip()
    spelled = {_norm(x): x for x in labels}  # the template's spelling of the label ("positive", not "Positive")
    return Example({var: str(row.get(col, "")) for var, col in variables.items()}, spelled.get(_norm(answer), answer))


def _norm(value) -> str:
    return " ".join(str(value or "").split()).casefold()


# ---- the candidates --------------------------------------------------------------------------------------------
def build_candidates(
    start: Template,
    instructions: list[tuple[Template, str]],
    examples: list[tuple[tuple[Example, ...] | Retrieval | None, str]],
    modes: tuple[str, ...],
    max_candidates: int,
) -> tuple[list[Candidate], int]:
    """Every combination (instruction x examples x mode), fewest changes first, duplicates removed, cut at
    ``max_candidates``; the start template is always candidate 0. Returns (candidates, how many were cut)."""
    own = start.output.mode
    tried = [own, *(m for m in modes if m != own)]
    combos = []
    for ti, (body, what_i) in enumerate(instructions):
        for ei, (shots, what_e) in enumerate(examples):
            for mi, mode in enumerate(tried):
                if (ti or ei or mi) and mode not in modes:
                    continue  # only the start keeps a mode the search was told not to use
                if isinstance(shots, Retrieval):  # retrieved examples take the fixed ones' place
                    template = replace(body, examples=(), retrieve=shots)
                else:
                    template = body if shots is None else replace(body, examples=shots)
                template = replace(template, output=replace(template.output, mode=mode))
                what = [w for w in (what_i, what_e, MODE_TEXT[mode] if mode != own else "") if w]
                # fewest changes first, the parts taking turns (a cap must not keep only instruction edits)
                key = (bool(ti) + bool(ei) + bool(mi), max(ti, ei, mi), mi, ei, ti)
                combos.append((key, template, "; ".join(what)))
    combos.sort(key=lambda c: c[0])
    out: list[Candidate] = []
    seen: set[str] = set()
    for _, template, what in combos:
        content = template.to_yaml()
        if content in seen:
            continue
        seen.add(content)
        out.append(Candidate(len(out), template, what or "start template"))
    cut = max(0, len(out) - max_candidates)
    return out[:max_candidates], cut
