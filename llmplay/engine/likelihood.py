"""Likelihood of given answers for many rows at once (local models): the batched counterpart of
``LocalProvider.score_options``, with the same chosen labels and log-probabilities (within 1e-4 in float32).

How a batch runs:
- The prompt prefix every row shares (a template's system message and few-shot examples) runs once, through the
  provider's prefix cache (the one batched generation uses), and is kept for the next batches of the run.
- Each row's own tokens and every label after them are *packed* into one sequence, batch size one, attending to
  the prefix's keys/values without copying them per row: a custom attention mask lets a row's tokens see only
  the prefix and that row, and each label only its row and itself; positions are given explicitly, so every
  token sits where it would when its row runs alone (sliding-window layers, e.g. Gemma 3's, keep their window).
- Logits are computed only where a label token is predicted (Gemma's vocabulary has 262k entries).
Packs are bounded in tokens and attention size, so memory stays flat whatever the batch. Models whose attention
this cannot mask (other kernels or layer kinds) fall back to one row at a time.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from llmplay.engine.types import GenerationRequest, OptionScore
from llmplay.errors import InvalidRequestError, LlmplayError

if TYPE_CHECKING:
    from llmplay.engine.local import LocalProvider
    from llmplay.models.loader import LoadedModel

# New tokens per packed forward pass, its attention size (queries x keys) and the logits it keeps (positions x
# vocabulary): bound the memory of one pass.
PACK_TOKENS = 2048
PACK_ATTENTION = 6 * 1024 * 1024
PACK_LOGITS = 64 * 1024 * 1024
_KNOWN_LAYERS = {"full_attention", "sliding_attention"}
_MASKABLE = {"sdpa", "eager"}


@dataclass
class ScoredRow:
    """One row's scores (or why it has none), and which backend and precision computed them."""

    scores: list[OptionScore] = field(default_factory=list)
    error: str | None = None
    latency_s: float = 0.0
    backend: str = ""
    cancelled: bool = False

    @property
    def ok(self) -> bool:
        return self.error is None

    def best(self, per_token: bool = False) -> str:
        """The most likely option (``per_token``: by mean log-probability per token)."""
        return max(self.scores, key=lambda s: s.logprob_per_token if per_token else s.logprob).option


def check_options(options: list[str]) -> None:
    if not options or any(not o for o in options):
        raise InvalidRequestError("Give at least one non-empty option to score.")


def refuse_soft_prompt(provider: LocalProvider, loaded: LoadedModel) -> None:
    from llmplay.engine.prompt_text import soft_prompt

    if soft_prompt(loaded):
        raise InvalidRequestError(
            f"{provider.spec.name} uses a prompt-tuning adapter, which cannot score given answers by likelihood "
            "(its soft prompt does not fit the cached prompt this needs); use generate mode."
        )


def maskable(model) -> bool:
    """Whether the packed pass can mask this model's attention (else rows are scored one at a time)."""
    config = model.config
    layers = set(getattr(config, "layer_types", None) or ["full_attention"])
    return getattr(config, "_attn_implementation", None) in _MASKABLE and layers <= _KNOWN_LAYERS


def score_batch(
    provider: LocalProvider,
    requests: list[GenerationRequest],
    options: list[str],
    cancel: threading.Event | None = None,
) -> list[ScoredRow]:
    """Every option's log-likelihood as the reply to each request. Per-row problems (a prompt too long) are
    error rows; a problem of the whole call (no options, a prompt-tuning adapter) raises InvalidRequestError."""
    from llmplay.engine.backends import reference_label

    check_options(options)
    loaded = provider.load()
    refuse_soft_prompt(provider, loaded)
    label = reference_label(loaded)
    rows: list[ScoredRow] = [ScoredRow(backend=label) for _ in requests]
    prepared: list[tuple[int, list[int]]] = []
    for i, request in enumerate(requests):
        try:
            prepared.append((i, provider._prepare(loaded, request)))
        except LlmplayError as exc:
            rows[i].error = str(exc)
    if not prepared:
        return rows
    if not maskable(loaded.model):
        for i, _ in prepared:
            if cancel is not None and cancel.is_set():
                _cancel(rows[i])
                continue
            began = time.perf_counter()
            rows[i].scores = provider.score_options(requests[i], options)
            rows[i].latency_s = time.perf_counter() - began
        return rows
    tok = loaded.tokenizer
    option_ids = [tok(o, add_special_tokens=False)["input_ids"] for o in options]
    prefix = provider.prefix_to_share(loaded, [ids for _, ids in prepared])
    kept = 1 + sum(len(o) - 1 for o in option_ids)  # logits per row: the prompt's last token, inside options
    vocab = getattr(loaded.model.config, "vocab_size", None) or len(tok)
    rows_by_logits = max(1, PACK_LOGITS // (kept * vocab))
    for pack in _packs(prepared, prefix, sum(len(o) for o in option_ids), rows_by_logits):
        if cancel is not None and cancel.is_set():
            for i, _ in pack:
                _cancel(rows[i])
            continue
        began = time.perf_counter()
        try:
            found = _score_pack(provider, loaded, [ids for _, ids in pack], prefix, option_ids)
        except Exception as exc:  # a crash in one pack must not take the others down
            for i, _ in pack:
                rows[i].error = f"Scoring failed: {exc}"
            continue
        each = (time.perf_counter() - began) / len(pack)
        for (i, _), totals in zip(pack, found):
            rows[i].scores = [OptionScore(o, t, len(ids)) for o, t, ids in zip(options, totals, option_ids)]
            rows[i].latency_s = each
    return rows


def _cancel(row: ScoredRow) -> None:
    row.error, row.cancelled = "Cancelled before this row finished.", True


def _packs(prepared: list[tuple[int, list[int]]], prefix: int, option_tokens: int, most_rows: int):
    """Consecutive rows grouped so that a pack's new tokens, attention and logits stay within the budgets."""
    pack: list[tuple[int, list[int]]] = []
    size = 0
    for row in prepared:
        n = len(row[1]) - prefix + option_tokens
        grown = size + n
        full = grown > PACK_TOKENS or grown * (prefix + grown) > PACK_ATTENTION or len(pack) >= most_rows
        if pack and full:
            yield pack
            pack, grown = [], n
        pack.append(row)
        size = grown
    if pack:
        yield pack


def _score_pack(
    provider: LocalProvider, loaded: LoadedModel, batch: list[list[int]], prefix: int, option_ids: list[list[int]]
) -> list[list[float]]:
    """Per row, each option's summed log-probability, from one forward pass over the packed rows."""
    import torch

    tokens: list[int] = []
    positions: list[int] = []
    row_of: list[int] = []
    option_of: list[int] = []  # -1: the row's own prompt tokens
    keep: list[int] = []  # packed indices whose logits predict an option token
    targets: list[tuple[int, int, int, int]] = []  # (row, option, index into keep, token id)
    for r, ids in enumerate(batch):
        own = ids[prefix:]
        tokens += own
        positions += range(prefix, len(ids))
        row_of += [r] * len(own)
        option_of += [-1] * len(own)
        last = len(tokens) - 1  # the prompt's last token predicts each option's first
        keep.append(last)
        first = len(keep) - 1
        for j, opt in enumerate(option_ids):
            targets.append((r, j, first, opt[0]))
            start = len(tokens)
            tokens += opt
            positions += range(len(ids), len(ids) + len(opt))
            row_of += [r] * len(opt)
            option_of += [j] * len(opt)
            for m in range(1, len(opt)):  # option token m is predicted at option token m - 1
                keep.append(start + m - 1)
                targets.append((r, j, len(keep) - 1, opt[m]))
    model = loaded.model
    dev = model.device
    pos = torch.tensor(positions, device=dev)
    row = torch.tensor(row_of, device=dev)
    opt = torch.tensor(option_of, device=dev)
    n = len(tokens)
    index = torch.arange(n, device=dev)
    # among the new tokens: same row, not later, and a row's prompt or the same option
    new = (row[:, None] == row[None, :]) & (index[None, :] <= index[:, None])
    new &= (opt[None, :] == -1) | (opt[None, :] == opt[:, None])
    with loaded.lock, torch.inference_mode():
        cache = provider._prefix_cache(loaded, tuple(batch[0][:prefix]), 1) if prefix else None
        masks = _masks(model, cache, pos, new, prefix)
        out = model(
            input_ids=torch.tensor([tokens], device=dev),
            position_ids=pos[None, :],
            attention_mask=masks,
            cache=cache,
            use_cache=cache is not None,
            logits_to_keep=torch.tensor(keep, device=dev),
        )
        logprobs = torch.log_softmax(out.logits[0].float(), dim=-1)
    totals = [[0.0] * len(option_ids) for _ in batch]
    picked = logprobs[[k for _, _, k, _ in targets], [t for _, _, _, t in targets]].tolist()
    for (r, j, _, _), value in zip(targets, picked):
        totals[r][j] += value
    return totals


def _masks(model, cache, pos, new, prefix: int):
    """The attention masks of a packed pass: one tensor, or one per layer kind for models that mix full and
    sliding-window layers. Keys are the cached prefix (as each layer keeps it), then the packed tokens."""
    import torch

    config = model.config
    kinds = set(getattr(config, "layer_types", None) or ["full_attention"])
    window = getattr(config, "sliding_window", None)
    built = {}
    for kind in kinds:
        allowed = new
        cached = prefix
        if kind == "sliding_attention":
            layer = config.layer_types.index(kind)
            cached = cache.layers[layer].keys.shape[-2] if cache is not None else 0
            allowed = new & (pos[:, None] - pos[None, :] < window)
        if cached:
            # the layer keeps the prefix's last `cached` positions
            kept = torch.arange(prefix - cached, prefix, device=pos.device)
            seen = torch.ones(len(pos), cached, dtype=torch.bool, device=pos.device)
            if kind == "sliding_attention":
                seen = pos[:, None] - kept[None, :] < window
            allowed = torch.cat([seen, allowed], dim=1)
        if config._attn_implementation == "eager":
            zero = torch.zeros((), dtype=model.dtype, device=pos.device)
            allowed = torch.where(allowed, zero, torch.finfo(model.dtype).min)
        built[kind] = allowed[None, None]
    if getattr(config, "layer_types", None) and len(kinds) > 1:
        return built
    return next(iter(built.values()))
