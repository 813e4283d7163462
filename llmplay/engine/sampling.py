"""Choosing the next token from logits, as transformers' ``generate`` does, for decoders outside it.

The order and the rules follow transformers' logits processors (repetition penalty over the prompt and
the reply so far, then temperature, top-k and top-p), so a sampled reply uses the same distribution on
either backend; the random draw uses torch's global generator, which a request's seed sets.
"""

from __future__ import annotations

from dataclasses import dataclass

from llmplay.engine.types import GenerationParams


@dataclass(frozen=True)
class Sampler:
    greedy: bool
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    repetition_penalty: float = 1.0

    @classmethod
    def of(cls, params: GenerationParams, generation_config=None) -> Sampler:
        """The effective settings: a 0 top-k falls back to the model's generation config, as in transformers."""
        top_k = params.top_k or int(getattr(generation_config, "top_k", 0) or 0)
        return cls(
            greedy=params.greedy,
            temperature=params.temperature,
            top_k=top_k,
            top_p=params.top_p,
            repetition_penalty=params.repetition_penalty,
        )

    def choose(self, logits, history: list[int]) -> int:
        """The next token given float32 ``logits`` (vocab,) and every token so far (prompt included)."""
        import torch

        scores = logits
        if self.repetition_penalty != 1.0 and history:
            seen = torch.tensor(sorted(set(history)), dtype=torch.long)
            picked = scores[seen]
            picked = torch.where(picked < 0, picked * self.repetition_penalty, picked / self.repetition_penalty)
            scores = scores.clone()
            scores[seen] = picked
        if self.greedy:
            return int(torch.argmax(scores))
        scores = scores / self.temperature
        if 0 < self.top_k < scores.shape[-1]:
            kth = torch.topk(scores, self.top_k).values[-1]
            scores = scores.masked_fill(scores < kth, float("-inf"))
        if self.top_p < 1.0:
            ordered, index = torch.sort(scores, descending=False)
            cumulative = ordered.softmax(dim=-1).cumsum(dim=-1)
            drop = cumulative <= (1 - self.top_p)
            drop[-1] = False  # always keep the most likely token
            scores = scores.masked_fill(drop.scatter(0, index, drop), float("-inf"))
        probs = torch.softmax(scores, dim=-1)
        return int(torch.multinomial(probs, num_samples=1))


def decode_loop(sampler: Sampler, prompt_ids, logits, step, max_new_tokens: int, stop_ids: set[int], on_token, done):
    """The token loop every step decoder shares (fast decoder, ONNX Runtime): choose from ``logits``, report the
    token, stop at a stop token, at ``max_new_tokens`` or when ``done(tokens)`` says so (a stop string completed,
    the reader went away); else ``step(token)`` feeds it and returns the next logits. Returns the new tokens, an
    end-of-sequence token included, as transformers returns them."""
    history, tokens = list(prompt_ids), []
    while True:
        token = sampler.choose(logits, history)
        tokens.append(token)
        history.append(token)
        if on_token is not None:
            on_token(token)
        if token in stop_ids or len(tokens) >= max_new_tokens or (done is not None and done(tokens)):
            return tokens
        logits = step(token)
