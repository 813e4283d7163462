"""The general-ability probe that ships with llmplay (gate c): does a new version forget what the base could do?

Three figures, on data written for llmplay and licensed with it (llmplay/loop/probe_data/):
- perplexity on ``probe_text.txt`` (everyday English prose, ~580 words), computed with the loaded model in
  llmplay (a trained version's adapter applied), in windows of at most 512 tokens;
- reply drift on ``probe_prompts.jsonl`` (40 everyday instructions): the perplexity of the BASE model's own
  greedy replies under a version (only the reply tokens; each prompt rendered through the chat path inference
  uses). The base itself scores low on its own replies; a version that drifted from how the base answers
  ordinary requests (one that learned to answer every turn with a label) finds them unlikely, so this is where
  narrow training shows first. Written references would instead measure closeness to their writer's style;
- exact-match accuracy on ``probe_tasks.jsonl`` (40 one-word questions: capitals, arithmetic, opposites),
  through the evaluation runner with the ``general-probe`` template (batched and cached like any run).
The general instructions used for replay (``general_replay.jsonl``) are a different set of prompts. Replay
trains on the base model's own sampled replies to them (self-rehearsal: it keeps how the base answers rather
than teaching a new style); ``base_replies`` generates each once and caches it with the converted models.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from llmplay.backend_names import REFERENCE
from llmplay.loop.data import PROBE_DATA
from llmplay.openmp import released

PROBE_TEMPLATE = "general-probe"
PROBE_DATASET = "loop-general-probe"
WINDOW = 512


def probe_text() -> str:
    return (PROBE_DATA / "probe_text.txt").read_text(encoding="utf-8")


def probe_tasks() -> list[dict]:
    lines = (PROBE_DATA / "probe_tasks.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


REPLY_TOKENS = 64  # the base's replies: long enough for a few sentences, cut back to the last whole one
_SENTENCE_END = (".", "!", "?", "\n")


def probe_prompts() -> list[str]:
    lines = (PROBE_DATA / "probe_prompts.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line)["prompt"] for line in lines if line.strip()]


def _whole(text: str, finish_reason: str) -> str | None:
    """A reply cut at the token limit ends at its last whole sentence (training on a half sentence would teach
    the model to stop mid-way); None when there is none."""
    text = text.strip()
    if finish_reason != "length":
        return text or None
    end = max(text.rfind(c) for c in _SENTENCE_END)
    return text[: end + 1].strip() if end > 0 else None


def replies_file(settings) -> Path:
    """Where base replies are kept: with the converted models, since they follow from the weights alone (every
    data dir on this machine, e.g. each line's, shares them); 40 greedy replies take ~30 s on 2 cores."""
    return settings.cache_dir / "loop" / "base_replies.json"


def base_replies(engine, model: str, prompts: list[str], *, sampled: bool = False) -> dict[str, str]:
    """The base model's replies to ``prompts`` (prompt -> reply; prompts without a usable reply are left out):
    greedy, or ``sampled`` at temperature 1 (seeded), generated once per (weights, mode, prompt) and cached
    (``replies_file``).

    Rehearsal trains on sampled replies: the expected gradient of a model's log-likelihood on its own samples is
    zero, so they pull a version back toward the base's distribution and teach nothing new. Greedy replies
    would sharpen it instead (measured, bench/feedback_loop.py: general-text perplexity +9.8% after two updates
    with greedy rehearsal, +0.3% without rehearsal). The probe scores the greedy ones: the base's likeliest
    answers."""
    from llmplay.atomicfile import atomic_write
    from llmplay.engine.types import GenerationParams
    from llmplay.errors import LlmplayError
    from llmplay.models import sources

    spec = engine.catalog.get(model)
    mode = "sampled" if sampled else "greedy"
    try:
        weights = sources.cache_key(spec, engine.models.weights(spec))  # names the weights' version too
    except LlmplayError:  # not local weights: generating below says what is wrong
        weights = "?"
    identity = f"{spec.name}|{spec.source}|{spec.location}|{spec.gguf_file or ''}|{weights}|{REPLY_TOKENS}|{mode}"
    path = replies_file(engine.settings)
    try:
        cache = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    except (OSError, ValueError):
        cache = {}  # a damaged cache is only a cache: the replies are generated again
    known = cache.setdefault(identity, {})
    missing = [p for p in dict.fromkeys(prompts) if p not in known]
    if missing:
        params = GenerationParams(max_new_tokens=REPLY_TOKENS, temperature=1.0 if sampled else 0.0, seed=0)
        results = engine.generate(model, missing, params, batch_backend=REFERENCE)  # the reference's replies
        failed = [r.error for r in results if r.error]
        if failed:
            raise LlmplayError(f"The base model {model!r} could not answer the loop's general prompts: {failed[0]}")
        for prompt, result in zip(missing, results):
            known[prompt] = _whole(result.text, result.finish_reason)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, json.dumps(cache, ensure_ascii=False, indent=0))
    return {p: known[p] for p in prompts if known.get(p)}


PERPLEXITY_ROWS = 8  # pairs per forward pass: 40 probe pairs took 15.1 s one at a time, 9.1 s in eights (2 cores)


@released  # (llmplay/openmp.py)
def reply_perplexity(engine, model: str, pairs: list[dict]) -> float:
    """exp(mean loss of the reply tokens) of ``model`` on instruction -> reply ``pairs`` (prompt, completion),
    each prompt rendered as inference renders it and each reply formatted as training formats it. Pairs of similar
    length share a batch, padded on the right (causal attention never looks ahead at it): the same value as one at a
    time, within 1e-8."""
    import torch

    from llmplay.engine.prompt_text import encode_prompt
    from llmplay.training.data import TrainRow, formatted_text

    spec = engine.catalog.get(model)
    loaded = engine.models.get(spec)
    rows = []
    for pair in pairs:
        row = TrainRow(id=pair.get("id", 0), target=pair["completion"], prompt=pair["prompt"])
        prompt_text, completion_text = formatted_text(loaded, row)
        reply_ids = loaded.tokenizer(completion_text, add_special_tokens=False)["input_ids"]
        rows.append((encode_prompt(loaded, prompt_text), reply_ids))
    rows = [r for r in sorted(rows, key=lambda r: len(r[0]) + len(r[1])) if r[1]]
    total, count = 0.0, 0
    with loaded.lock, torch.no_grad():
        for start in range(0, len(rows), PERPLEXITY_ROWS):
            batch = rows[start : start + PERPLEXITY_ROWS]
            inputs = [(prompt + reply)[:-1] for prompt, reply in batch]  # each position predicts the next token
            width = max(len(ids) for ids in inputs)
            ids = torch.zeros(len(batch), width, dtype=torch.long)
            mask = torch.zeros(len(batch), width, dtype=torch.long)
            for i, row_ids in enumerate(inputs):
                ids[i, : len(row_ids)], mask[i, : len(row_ids)] = torch.tensor(row_ids), 1
            logits = loaded.model(input_ids=ids, attention_mask=mask).logits.float()
            for i, (prompt, reply) in enumerate(batch):
                scores = logits[i, len(prompt) - 1 : len(prompt) - 1 + len(reply)]
                total += float(torch.nn.functional.cross_entropy(scores, torch.tensor(reply), reduction="sum"))
                count += len(reply)
    return math.exp(total / max(count, 1))


def reply_drift(engine, base_model: str, model: str) -> float:
    """Perplexity of ``model`` on the base model's own replies to the probe's prompts (the base: its floor)."""
    replies = base_replies(engine, base_model, probe_prompts())
    return reply_perplexity(engine, model, [{"prompt": p, "completion": r} for p, r in replies.items()])


@released
def perplexity(engine, model: str, text: str | None = None) -> float:
    """exp(mean next-token loss) of ``model`` (a catalog name or version label) on ``text``."""
    import torch

    spec = engine.catalog.get(model)
    loaded = engine.models.get(spec)
    ids = loaded.tokenizer(text or probe_text(), return_tensors="pt", add_special_tokens=False)["input_ids"][0]
    total, count = 0.0, 0
    with loaded.lock, torch.no_grad():
        for start in range(0, len(ids) - 1, WINDOW):
            window = ids[start : start + WINDOW + 1].unsqueeze(0)
            if window.shape[1] < 2:
                break
            logits = loaded.model(input_ids=window[:, :-1]).logits.float()
            loss = torch.nn.functional.cross_entropy(logits[0], window[0, 1:], reduction="sum")
            total += float(loss)
            count += window.shape[1] - 1
    return math.exp(total / max(count, 1))


def ensure_probe_dataset(settings) -> str:
    """Save the probe's questions as an evaluation dataset (once; the same rows every time)."""
    from llmplay.datasets import ColumnMapping, list_datasets, save_dataset

    if PROBE_DATASET not in {d.name for d in list_datasets(settings)}:
        frame = pd.DataFrame(probe_tasks(), columns=["question", "answer"], dtype=object)
        save_dataset(settings, PROBE_DATASET, frame, ColumnMapping({"question": "question"}, "answer"))
    return PROBE_DATASET


def probe_files() -> list[Path]:
    return sorted(PROBE_DATA.iterdir())
