"""Losses of the causal trainer (a mean cross-entropy over a batch's trained tokens), three ways:

- ``forward_loss``: the model's own forward and loss (AdaLoRA, prompt tuning, data-parallel runs);
- ``selective_loss``: the decoder, then the head only at trained positions (a one-word answer after a
  580-token prompt needs 2 of 580 rows of logits: the head is 49k x 576 per position);
- ``shared_prefix_backward``: a training step on a batch whose rows share a prefix (batching.py, mode prefix).
  The prefix runs once; its keys/values become leaf tensors that every chunk of rows reads (expanded, not
  copied); each chunk's backward adds its share of their gradient; one last backward through the prefix
  finishes the step. The gradient is exactly that of the plain batch, and memory holds the prefix plus one
  chunk of rows (``SUFFIX_CHUNK_TOKENS``) instead of the whole batch with the prefix copied into every row.

``count`` is the number of trained tokens of the whole (accumulated) batch: each function returns its sum of
token losses divided by it, so gradient accumulation and chunks add up to the plain batch's mean.
"""

from __future__ import annotations

from llmplay.training.batching import IGNORE_INDEX, round_up

# Suffix tokens (rows x padded width) per chunk of a shared-prefix step. SmolLM2 keeps ~1.4 MB of activations
# per token under LoRA on every linear layer: a chunk costs ~0.35 GB on top of the prefix (measured peak RSS of a
# 16-row FPB step: 2.3 GB at 256, 2.7 GB at 512; 256 was also the faster of the two).
SUFFIX_CHUNK_TOKENS = 256


def forward_loss(model, inputs: dict, count):
    """The model's own forward (and loss), for peft methods that add to it and for DDP."""
    extra = {"num_items_in_batch": count}
    if "prefix_ids" in inputs:
        base = model.module if hasattr(model, "module") else model
        cache = _new_cache(base.get_base_model().config)
        model(input_ids=inputs["prefix_ids"], cache=cache, use_cache=True, logits_to_keep=1)
        cache.batch_repeat_interleave(inputs["input_ids"].shape[0])
        extra.update(cache=cache, use_cache=True, attention_mask=inputs["attention_mask"])
    else:
        extra["use_cache"] = False
        extra.update({k: inputs[k] for k in ("attention_mask", "position_ids") if k in inputs})
    return model(input_ids=inputs["input_ids"], labels=inputs["labels"], **extra).loss


def selective_loss(peft_model, inputs: dict, count):
    """The loss with the head applied at trained positions only (also for evaluation of prefix batches)."""
    causal = peft_model.get_base_model()
    body = causal.get_decoder()
    if "prefix_ids" in inputs:
        cache = _new_cache(causal.config)
        body(input_ids=inputs["prefix_ids"], cache=cache, use_cache=True)
        cache.batch_repeat_interleave(inputs["input_ids"].shape[0])
        kwargs = {"attention_mask": inputs["attention_mask"], "cache": cache, "use_cache": True}
    else:
        kwargs = {k: inputs[k] for k in ("attention_mask", "position_ids") if k in inputs}
        kwargs["use_cache"] = False
    hidden = body(input_ids=inputs["input_ids"], **kwargs).last_hidden_state
    return _token_loss(causal, hidden, inputs["labels"]) / _at_least_one(count, hidden)


def shared_prefix_backward(peft_model, inputs: dict, count, chunk_tokens: int = SUFFIX_CHUNK_TOKENS):
    """Forward and backward of a prefix batch; returns the (detached) loss. Gradients end up in the parameters."""
    import torch

    causal = peft_model.get_base_model()
    body = causal.get_decoder()
    prefix = _new_cache(causal.config)
    body(input_ids=inputs["prefix_ids"], cache=prefix, use_cache=True)
    shared = [(layer.keys, layer.values) for layer in prefix.layers]
    leaves = [tuple(t.detach().requires_grad_(t.requires_grad) for t in kv) for kv in shared]
    width_p = inputs["prefix_ids"].shape[1]
    ids, mask, labels = inputs["input_ids"], inputs["attention_mask"], inputs["labels"]
    lengths = mask[:, width_p:].sum(dim=1)
    # Widths in a few buckets, as the collator's: every new shape grows oneDNN's kernel cache (batching.py).
    buckets = [min(round_up(n), ids.shape[1]) for n in lengths.tolist()]
    denominator = _at_least_one(count, ids)
    total = torch.zeros((), device=ids.device)
    for rows in _chunks(buckets, chunk_tokens):
        index = torch.tensor(rows, device=ids.device)
        width = max(buckets[i] for i in rows)
        cache = _new_cache(causal.config)
        for layer, (keys, values) in enumerate(leaves):
            cache.update(keys.expand(len(rows), -1, -1, -1), values.expand(len(rows), -1, -1, -1), layer)
        hidden = body(
            input_ids=ids[index, :width], attention_mask=mask[index, : width_p + width], cache=cache, use_cache=True
        ).last_hidden_state
        loss = _token_loss(causal, hidden, labels[index, :width]) / denominator
        loss.backward()
        total += loss.detach()
    pairs = [(t, leaf.grad) for kv, kv_leaves in zip(shared, leaves) for t, leaf in zip(kv, kv_leaves)]
    pairs = [(t, g) for t, g in pairs if g is not None]
    if pairs:
        torch.autograd.backward([t for t, _ in pairs], [g for _, g in pairs])
    return total


def _chunks(lengths: list[int], budget: int) -> list[list[int]]:
    """Rows in order of length, cut into groups whose padded size (rows x longest) stays within ``budget``."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    groups: list[list[int]] = []
    for i in order:
        if groups and (len(groups[-1]) + 1) * lengths[i] <= budget:
            groups[-1].append(i)
        else:
            groups.append([i])
    return groups


def _token_loss(causal, hidden, labels):
    """Summed cross-entropy of the tokens with a label, each predicted from the position before it."""
    import torch

    targets = labels[:, 1:]
    trained = targets != IGNORE_INDEX
    logits = causal.get_output_embeddings()(hidden[:, :-1][trained]).float()
    cap = getattr(causal.config, "final_logit_softcapping", None)
    if cap:
        logits = torch.tanh(logits / cap) * cap
    return torch.nn.functional.cross_entropy(logits, targets[trained], reduction="sum")


def _at_least_one(count, like):
    import torch

    return torch.clamp(torch.as_tensor(count, device=like.device), min=1)


def _new_cache(config):
    from transformers import DynamicCache

    return DynamicCache(config=config)
