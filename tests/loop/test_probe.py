"""The general probe's reply drift on the real SmolLM2: the base model's own replies are generated once and
cached (with the converted models: every data dir shares them), a reply cut at the token limit ends at a whole
sentence, and the base is at its floor on them."""

from __future__ import annotations

import dataclasses
import json

from llmplay.loop import probe
from tests.conftest import CHAT_MODEL

# From the probe's own prompts: greedy SmolLM2 ends the first two, and runs past the token limit on the third.
PROMPTS = ["What is the opposite of 'early'?", "How many hours are in a day?", "What do plants need to grow?"]


def test_base_replies_are_generated_once_and_cached_with_the_converted_models(engine, monkeypatch, tmp_path):
    monkeypatch.setattr(engine, "settings", dataclasses.replace(engine.settings, cache_dir=tmp_path))  # a cold cache
    calls = []
    real = engine.generate

    def counting(model, prompts, *args, **kwargs):
        calls.append(list(prompts))
        return real(model, prompts, *args, **kwargs)

    monkeypatch.setattr(engine, "generate", counting)
    first = probe.base_replies(engine, CHAT_MODEL, PROMPTS)
    assert set(first) == set(PROMPTS) and all(r.strip() for r in first.values())
    assert first[PROMPTS[2]].endswith(".")  # cut back to its last whole sentence
    assert calls == [PROMPTS]
    again = probe.base_replies(engine, CHAT_MODEL, [*PROMPTS[:2], "What is 2 plus 2?"])
    assert calls[1:] == [["What is 2 plus 2?"]]  # only the new prompt is generated
    assert {p: again[p] for p in PROMPTS[:2]} == {p: first[p] for p in PROMPTS[:2]}
    path = tmp_path / "loop" / "base_replies.json"
    stored = json.loads(path.read_text())
    assert any(first[PROMPTS[0]] in entry.values() for entry in stored.values())
    path.write_text("{ not json")  # a damaged cache is regenerated, never an error
    assert probe.base_replies(engine, CHAT_MODEL, PROMPTS[:1]) == {PROMPTS[0]: first[PROMPTS[0]]}


def test_a_reply_cut_at_the_token_limit_ends_at_its_last_whole_sentence():
    assert probe._whole("It is blue. The sky is", "length") == "It is blue."
    assert probe._whole("One long clause without an end", "length") is None
    assert probe._whole("  A complete reply  ", "stop") == "A complete reply"


def test_the_base_is_at_its_floor_on_its_own_replies(engine):
    replies = probe.base_replies(engine, CHAT_MODEL, PROMPTS)
    pairs = [{"prompt": p, "completion": r} for p, r in replies.items()]
    own = probe.reply_perplexity(engine, CHAT_MODEL, pairs)
    swapped = [{"prompt": p["prompt"], "completion": q["completion"]} for p, q in zip(pairs, pairs[1:] + pairs[:1])]
    # Greedy replies are the base's likeliest text: far below the perplexity of another prompt's reply.
    assert 1.0 < own < 3.0 and probe.reply_perplexity(engine, CHAT_MODEL, swapped) > 2 * own


def test_batched_reply_perplexity_equals_one_pair_at_a_time(engine, monkeypatch):
    """Pairs of different lengths share a padded batch: each reply is scored at its own positions."""
    pairs = [
        {"prompt": "Name a colour.", "completion": "Blue."},
        {"prompt": "Say hello in French.", "completion": "Bonjour! It is the usual greeting in France."},
        {"prompt": "What is 2 + 2?", "completion": "2 + 2 is 4, the sum of two and two."},
    ]
    batched = probe.reply_perplexity(engine, CHAT_MODEL, pairs)
    monkeypatch.setattr(probe, "PERPLEXITY_ROWS", 1)
    alone = probe.reply_perplexity(engine, CHAT_MODEL, pairs)
    assert abs(batched - alone) < 1e-4 * alone, (batched, alone)
