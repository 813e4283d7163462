"""The decoding form every generating tab shares (Playground, Compare, Arena, Templates' run once, Evaluate):
the dtype and backend choices, stop strings and parameters read from the form and checked against
llmplay/limits.py, and the stats line under a reply."""

from __future__ import annotations

from llmplay.backend_names import ONNX_PRECISIONS, PRECISIONS
from llmplay.engine import GenerationParams, GenerationResult
from llmplay.limits import bounds, check_number, check_stop

UI_DTYPES = ("auto", "float32", "bfloat16")
BACKEND_CHOICES = [
    ("auto (ONNX Runtime int8, else the fast decoder)", "auto"),
    ("transformers (reference)", "transformers"),
    *((f"fast {p}", f"fast/{p}") for p in PRECISIONS),
    *((f"onnx {p} (ONNX Runtime)", f"onnx/{p}") for p in ONNX_PRECISIONS),
]


def parse_stop(text: str | None) -> tuple[str, ...]:
    if isinstance(text, list | tuple):  # the API may send the strings themselves
        return check_stop(list(text))
    if text is not None and not isinstance(text, str):
        return check_stop(text)  # refused, naming stop
    parts = (text or "").replace(",", "\n").split("\n")
    # A literal "\n" or "\t" typed in the box stands for the character (a real newline separates entries).
    return tuple(p.replace("\\n", "\n").replace("\\t", "\t") for p in parts if p.strip())


def parse_params(
    max_new_tokens, temperature, top_p, top_k, repetition_penalty, seed, stop, settings=None
) -> GenerationParams:
    """Decoding parameters from the form (numbers or numeric text; a blank seed = random), checked against
    llmplay.limits (``settings``: its max_new_tokens limit): InvalidRequestError names a bad one."""
    params = GenerationParams(
        max_new_tokens=check_number("max_new_tokens", max_new_tokens, settings=settings),
        temperature=check_number("temperature", temperature),
        top_p=check_number("top_p", top_p),
        top_k=check_number("top_k", top_k),
        repetition_penalty=check_number("repetition_penalty", repetition_penalty),
        seed=check_number("seed", seed, blank=None),
        stop=parse_stop(stop),
    )
    params.validate(bounds("max_new_tokens", settings)[1])
    return params


def decode_rate(completion_tokens: int, latency_s: float, first_token_s: float | None) -> float | None:
    """Decoding speed: tokens per second after the first token, ``(n - 1) / (latency - first token)``, so the
    wait for the first token (the prompt's prefill, a cold cache) does not count. Without a time to first token
    (a provider that does not stream), ``n / latency``. None when there is no speed to speak of: one token or
    none, or no time after the first."""
    if first_token_s is None:
        return completion_tokens / latency_s if completion_tokens > 0 and latency_s > 0 else None
    after = latency_s - first_token_s
    return (completion_tokens - 1) / after if completion_tokens > 1 and after > 0 else None


def speed_parts(completion_tokens: int, latency_s: float, first_token_s: float | None) -> list[str]:
    """'**12.3 tokens/s** (after the first token)' (or why there is no speed) and 'first token 0.42 s'."""
    rate = decode_rate(completion_tokens, latency_s, first_token_s)
    if rate is not None:
        after = " after the first token" if first_token_s is not None else ""
        parts = [f"**{rate:.1f} tokens/s**{after}"]
    else:
        parts = ["tokens/s: n/a (fewer than two tokens)"]
    if first_token_s is not None:
        parts.append(f"first token {first_token_s:.2f} s")
    return parts


def format_stats(result: GenerationResult, load_s: float | None = None, notes: list[str] | None = None) -> str:
    parts = speed_parts(result.completion_tokens, result.latency_s, result.time_to_first_token_s)
    parts.insert(1, f"latency {result.latency_s:.2f} s")
    if result.backend:
        parts.insert(0, f"`{result.backend}`")
    parts.append(f"{result.prompt_tokens} prompt + {result.completion_tokens} completion tokens")
    finish = f"finish: {result.finish_reason}"
    if result.finish_reason == "length":
        finish += " (hit max new tokens)"
    parts.append(finish)
    if load_s:
        parts.append(f"model load {load_s:.1f} s")
    return "✅ " + " · ".join(parts) + "".join(f"  \nℹ️ {note}" for note in notes or [])
