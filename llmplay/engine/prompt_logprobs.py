"""Reading an answer's log-likelihood from an endpoint's prompt log-probabilities.

``/completions`` with ``echo: true, logprobs: N`` returns the log-probability of every prompt token, so the
likelihood of ``option`` after ``context`` is the sum over the tokens that ``context + option`` ends with
(lm-evaluation-harness scores vLLM and llama.cpp servers this way). Two reply shapes are read:
- the OpenAI legacy one (vLLM, llama-cpp-python, OpenAI): ``logprobs = {tokens, token_logprobs, text_offset}``,
  offsets in characters of the echoed text;
- the per-token list (llama.cpp server): ``logprobs = {content: [{token, logprob, bytes}]}``, offsets counted
  here from each token's bytes.
A token that straddles the end of the context (the server tokenized ``context + option`` as one text) counts
for the option. Chat endpoints are not scored: the server applies its chat template, unseen here.
"""

from __future__ import annotations

from llmplay.engine.types import OptionScore
from llmplay.errors import ProviderError

# The backend label of an endpoint's likelihoods: the server decides the weights' precision.
ENDPOINT_LIKELIHOOD = "endpoint prompt log-probs (server precision)"


def likelihood_refusal(spec) -> str | None:
    """Why ``spec`` (an endpoint) cannot score answers by likelihood, or None."""
    if spec.kind != "base":
        return (
            f"{spec.name!r} is a chat endpoint: likelihood mode scores the prompt text through the server's "
            "/completions (echo + logprobs), which would skip the server's chat template; add the model as a "
            "base-model endpoint to score it that way, or use generate mode"
        )
    return None


def prompt_logprobs(choice: dict, text: str) -> list[tuple[int, int, float | None]] | None:
    """(start, end, log-probability) of each echoed token, in characters of ``text`` (the echoed prompt and
    what was generated), or None when the choice carries no prompt log-probabilities (echo or logprobs
    ignored)."""
    lp = choice.get("logprobs") if isinstance(choice, dict) else None
    if not isinstance(lp, dict):
        return None
    offsets, values = lp.get("text_offset"), lp.get("token_logprobs")
    if isinstance(offsets, list) and isinstance(values, list) and len(offsets) == len(values):
        starts = [int(o) for o in offsets]
        ends = [*starts[1:], len(choice.get("text") or text)]
    elif isinstance(lp.get("content"), list):
        starts, ends, values, at, encoded = [], [], [], 0, text.encode()
        for item in lp["content"]:
            if not isinstance(item, dict):
                return None
            piece = item.get("bytes")
            size = len(piece) if isinstance(piece, list) else len(str(item.get("token", "")).encode())
            # byte offsets as characters (a character split across tokens counts for the one completing it)
            starts.append(len(encoded[:at].decode(errors="ignore")))
            at += size
            ends.append(len(encoded[:at].decode(errors="ignore")))
            values.append(item.get("logprob"))
    else:
        return None
    # Echoed: the tokens start at the prompt's beginning and reach past it (one generated token).
    if len(starts) < 2 or starts[0] > 0:
        return None
    return list(zip(starts, ends, values))


def option_score(option: str, context: str, tokens: list[tuple[int, int, float | None]], url: str) -> OptionScore:
    """The summed log-probability of the tokens covering ``option`` in ``context + option``."""
    begin, end = len(context), len(context) + len(option)
    total, count = 0.0, 0
    for start, stop, value in tokens:
        if stop <= begin or start >= end or stop <= start:
            continue  # the context's, the generated token, or one that adds no text
        if value is None:
            raise ProviderError(f"Endpoint {url} sent no log-probability for a token of {option!r}.")
        total += float(value)
        count += 1
    if count == 0:
        raise ProviderError(f"Endpoint {url} sent no tokens for the answer {option!r} in its echoed prompt.")
    return OptionScore(option, total, count)
