"""The general-ability probe that ships with llmplay (gate c): does a new version forget what the base could do?

Two figures, both written for llmplay and licensed with it (llmplay/loop/probe_data/):
- perplexity on ``probe_text.txt`` (everyday English prose, ~580 words), computed with the loaded model in
  llmplay (a trained version's adapter applied), in windows of at most 512 tokens;
- reply perplexity on ``probe_replies.jsonl`` (40 everyday instructions with a written reply): the loss of the
  reply tokens only, each prompt rendered through the chat path inference uses. This is where narrow training
  shows first: a model that learned to answer every turn with one label finds ordinary replies unlikely;
- exact-match accuracy on ``probe_tasks.jsonl`` (40 one-word questions: capitals, arithmetic, opposites),
  through the evaluation runner with the ``general-probe`` template (batched and cached like any run).
The general instructions used for replay (``general_replay.jsonl``) are a different set.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd

from llmplay.loop.data import PROBE_DATA

PROBE_TEMPLATE = "general-probe"
PROBE_DATASET = "loop-general-probe"
WINDOW = 512


def probe_text() -> str:
    return (PROBE_DATA / "probe_text.txt").read_text(encoding="utf-8")


def probe_tasks() -> list[dict]:
    lines = (PROBE_DATA / "probe_tasks.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def probe_replies() -> list[dict]:
    lines = (PROBE_DATA / "probe_replies.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines if line.strip()]


def reply_perplexity(engine, model: str, pairs: list[dict] | None = None) -> float:
    """exp(mean loss of the reply tokens) of ``model`` on instruction -> reply ``pairs`` (prompt, completion),
    each prompt rendered as inference renders it and each reply formatted as training formats it."""
    import torch

    from llmplay.engine.local import encode_prompt
    from llmplay.training.data import TrainRow, formatted_text

    spec = engine.catalog.get(model)
    loaded = engine.models.get(spec)
    total, count = 0.0, 0
    with loaded.lock, torch.no_grad():
        for pair in pairs or probe_replies():
            row = TrainRow(id=pair.get("id", 0), target=pair["completion"], prompt=pair["prompt"])
            prompt_text, completion_text = formatted_text(loaded, row)
            prompt_ids = encode_prompt(loaded, prompt_text)
            reply_ids = loaded.tokenizer(completion_text, add_special_tokens=False)["input_ids"]
            ids = torch.tensor([prompt_ids + reply_ids])
            logits = loaded.model(input_ids=ids[:, :-1]).logits.float()[0, len(prompt_ids) - 1 :]
            loss = torch.nn.functional.cross_entropy(logits, ids[0, len(prompt_ids) :], reduction="sum")
            total += float(loss)
            count += len(reply_ids)
    return math.exp(total / max(count, 1))


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
    from llmplay.evaluation.datasets import ColumnMapping, list_datasets, save_dataset

    if PROBE_DATASET not in {d.name for d in list_datasets(settings)}:
        frame = pd.DataFrame(probe_tasks(), columns=["question", "answer"], dtype=object)
        save_dataset(settings, PROBE_DATASET, frame, ColumnMapping({"question": "question"}, "answer"))
    return PROBE_DATASET


def probe_files() -> list[Path]:
    return sorted(PROBE_DATA.iterdir())
