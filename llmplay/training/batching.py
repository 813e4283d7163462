"""Batches for causal-LM training that waste little compute on padding (``TrainConfig.padding``).

- ``prefix``: the rows of a batch usually start with the same prompt tokens (a template's system message and
  few-shot examples: ~520 of the ~580 tokens of a financial-sentiment row). That prefix is computed once per
  batch, its keys/values copied to every row, and only each row's own suffix runs per row; gradients flow
  through the shared prefix, so the loss and its gradient are those of the plain batch. A batch whose rows
  share fewer than ``MIN_SHARED_PREFIX`` tokens is split into groups that do (``parts``; the rest packed), or
  packed when no group does.
- ``pack``: the batch's rows are packed into as few rows of at most ``max_length`` tokens as fit, with
  ``position_ids`` restarting at 0 for each row and no attention mask: transformers 5 then builds a
  block-diagonal causal mask from the positions, so no row attends to another (tested against ``pad``).
- ``group``: rows of similar length batched together (the Trainer's length-grouped sampler), padded.
- ``pad``: plain right-padded batches in random order.

Every mode keeps the batch's rows (``batch_size`` examples per step) and the loss (a mean over its predicted
tokens), so the modes differ only in speed. A batch also carries ``num_tokens``: its rows' real tokens, what
the trainer counts as training tokens (the shared prefix counts once per row, as the rows hold it).
"""

from __future__ import annotations

from dataclasses import dataclass

IGNORE_INDEX = -100
MIN_SHARED_PREFIX = 32  # shorter shared prefixes are not worth a second forward call
# Padded widths are multiples of this: oneDNN caches kernels (and reordered weights) per matrix shape, so every
# new width costs memory for the rest of the run (measured on SmolLM2: peak RSS +50 MB per step with exact widths,
# flat with a few distinct ones).
WIDTH_MULTIPLE = 16


def shared_prefix_length(features: list[dict]) -> int:
    """Tokens every row starts with, ending before every row's first trained token (so the first token after
    the prefix never carries loss and the prefix needs no logits)."""
    if len(features) < 2:
        return 0
    limit = min(_first_label(f["labels"]) for f in features)
    limit = min(limit, *(len(f["input_ids"]) - 1 for f in features))
    first = features[0]["input_ids"]
    n = 0
    while n < limit and all(f["input_ids"][n] == first[n] for f in features):
        n += 1
    return n


def round_up(n: int, multiple: int = WIDTH_MULTIPLE) -> int:
    return -(-n // multiple) * multiple


def _first_label(labels: list[int]) -> int:
    return next((i for i, y in enumerate(labels) if y != IGNORE_INDEX), len(labels))


def pack_rows(lengths: list[int], capacity: int) -> list[list[int]]:
    """First-fit decreasing: indices of the examples in each packed row (an example longer than ``capacity``
    gets a row of its own)."""
    rows: list[list[int]] = []
    room: list[int] = []
    for i in sorted(range(len(lengths)), key=lambda k: (-lengths[k], k)):
        for r, free in enumerate(room):
            if lengths[i] <= free:
                rows[r].append(i)
                room[r] -= lengths[i]
                break
        else:
            rows.append([i])
            room.append(capacity - lengths[i])
    return rows


@dataclass
class CausalCollator:
    """``features``: dicts with ``input_ids`` and ``labels`` (lists, -100 on the prompt) -> a batch of tensors."""

    pad_id: int
    mode: str = "pack"  # prefix | pack | group | pad
    max_length: int = 1024  # packed row capacity

    def __call__(self, features: list[dict]) -> dict:
        import torch

        tokens = sum(len(f["input_ids"]) for f in features)
        shared = shared_prefix_length(features) if self.mode == "prefix" else 0
        if shared >= MIN_SHARED_PREFIX:
            batch = self._prefix(features, shared)
        elif self.mode == "prefix" and (parts := self._parts(features)):
            batch = {"parts": parts}
        elif self.mode in ("prefix", "pack"):
            batch = self._pack(features)
        else:
            batch = self._pad(features)
        batch["num_tokens"] = torch.tensor(tokens)
        return batch

    def _parts(self, features: list[dict]) -> list[dict] | None:
        """A batch that mixes rows of different prompts (a template's rows and general replay rows in one
        continual-learning update): one prefix batch per group of rows that share a prefix, the rest packed;
        the trainer steps through the parts (their loss adds up to the whole batch's). None: no group shares."""
        groups: dict[tuple, list[dict]] = {}
        for f in features:
            groups.setdefault(tuple(f["input_ids"][:MIN_SHARED_PREFIX]), []).append(f)
        parts, rest = [], []
        for group in groups.values():
            shared = shared_prefix_length(group)
            if len(group) > 1 and shared >= MIN_SHARED_PREFIX:
                parts.append(self._prefix(group, shared))
            else:
                rest += group
        if not parts:
            return None
        return parts + ([self._pack(rest)] if rest else [])

    def _pad(self, features: list[dict]) -> dict:
        import torch

        width = round_up(max(len(f["input_ids"]) for f in features))
        ids, labels, mask = [], [], []
        for f in features:
            fill = width - len(f["input_ids"])
            ids.append(list(f["input_ids"]) + [self.pad_id] * fill)
            labels.append(list(f["labels"]) + [IGNORE_INDEX] * fill)
            mask.append([1] * len(f["input_ids"]) + [0] * fill)
        return {"input_ids": torch.tensor(ids), "attention_mask": torch.tensor(mask), "labels": torch.tensor(labels)}

    def _pack(self, features: list[dict]) -> dict:
        import torch

        lengths = [len(f["input_ids"]) for f in features]
        rows = pack_rows(lengths, max(self.max_length, max(lengths)))
        width = round_up(max(sum(lengths[i] for i in row) for row in rows))
        ids, labels, positions = [], [], []
        for row in rows:
            r_ids, r_labels, r_pos = [], [], []
            for i in row:
                f = features[i]
                r_ids += f["input_ids"]
                # The first token of each packed example is not predicted from the one before it (another row).
                r_labels += [IGNORE_INDEX] + list(f["labels"][1:])
                r_pos += range(len(f["input_ids"]))
            fill = width - len(r_ids)
            ids.append(r_ids + [self.pad_id] * fill)
            labels.append(r_labels + [IGNORE_INDEX] * fill)
            positions.append(r_pos + list(range(fill)))  # padding is a sequence of its own: nobody attends to it
        return {"input_ids": torch.tensor(ids), "position_ids": torch.tensor(positions), "labels": torch.tensor(labels)}

    def _prefix(self, features: list[dict], shared: int) -> dict:
        import torch

        suffixes = [{"input_ids": f["input_ids"][shared:], "labels": f["labels"][shared:]} for f in features]
        batch = self._pad(suffixes)
        prefix_mask = torch.ones(len(features), shared, dtype=batch["attention_mask"].dtype)
        batch["attention_mask"] = torch.cat([prefix_mask, batch["attention_mask"]], dim=1)
        batch["prefix_ids"] = torch.tensor([features[0]["input_ids"][:shared]])
        return batch
