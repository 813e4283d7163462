"""Other CPU inference engines, measured like llmplay's own stream backends (bench/generation.py, by_engine).

An engine decodes from the prompt ids llmplay renders and tokenizes (the same chat template, the same ids
as the transformers reference), one reply at a time, greedy; its weights are converted once into the model
cache (``.cache/test-models/openvino/<converted folder>-<precision>``, written then renamed).
Engines: ``openvino/int8``, ``openvino/fp16`` (OpenVINO GenAI, llmplay.engine.openvino_backend), optionally
``@<threads>`` (e.g. ``openvino/int8@2``; default 1 thread, as the fast decoder decodes).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Conversions outlive a bench run (the bench's own phases use a fresh temporary cache).
ENGINE_CACHE = ROOT / ".cache" / "test-models"
# The exporter's packages (llmplay.engine.openvino_backend says how to install them).
os.environ.setdefault("LLMPLAY_OPENVINO_TOOLS", str(ROOT / ".cache" / "ov-tools"))


def missing(name: str) -> str | None:
    """Why engine ``name`` cannot run here (None when it can)."""
    from llmplay.engine import openvino_backend

    kind = name.split("/", 1)[0]
    if kind != "openvino":
        return f"unknown engine {name!r}"
    if not openvino_backend.available():
        return "openvino-genai is not installed"
    if not (openvino_backend.tools_dir(ENGINE_CACHE) / "optimum" / "intel").is_dir():
        return f"the OpenVINO export tools are not in {openvino_backend.tools_dir(ENGINE_CACHE)}"
    return None


class EngineRunner:
    """One model on one engine: the transformers model loaded only for its tokenizer and chat template."""

    def __init__(self, cache_dir: str, model: str, name: str):
        from llmplay.engine import Engine, openvino_backend
        from llmplay.settings import Settings

        self.engine = Engine(
            Settings(data_dir=Path(cache_dir) / "data", cache_dir=Path(cache_dir), prompts_dir=ROOT / "prompts")
        )
        spec = self.engine.catalog.get(model)
        self.loaded = self.engine.models.get(spec)
        source = self.engine.models.cache_entry(spec)
        kind, rest = name.split("/", 1)
        precision, _, threads = rest.partition("@")
        folder, self.convert_s = openvino_backend.convert(source, ENGINE_CACHE, precision)
        started = time.perf_counter()
        self.decoder = openvino_backend.OpenVinoDecoder(folder, precision, int(threads or 1))
        self.open_s = time.perf_counter() - started

    def reply(self, request) -> dict:
        from llmplay.engine.local import _completion_length
        from llmplay.engine.prompt_text import encode_prompt, render_prompt
        from llmplay.engine.text import truncate_at_stop

        loaded, params = self.loaded, request.params
        tok = loaded.tokenizer
        ids = encode_prompt(loaded, render_prompt(loaded, request))
        first: list[float] = []
        tail = max((len(s) for s in params.stop), default=0) + 4

        def done(tokens: list[int]) -> bool:
            text = tok.decode(tokens[-tail:], skip_special_tokens=True)
            return any(s in text for s in params.stop)

        started = time.perf_counter()
        tokens = self.decoder.decode(
            ids, params, loaded.eos_ids, on_token=lambda t: first or first.append(time.perf_counter()), done=done
        )
        latency = time.perf_counter() - started
        n = _completion_length(tokens, loaded.eos_ids | {tok.pad_token_id})
        text, _ = truncate_at_stop(tok.decode(tokens[:n], skip_special_tokens=True), params.stop)
        return {"text": text, "tokens": n, "latency_s": latency, "ttft_s": (first[0] - started) if first else None}


def phase_engine_stream(cache_dir: str, model: str, prompts: list[str], max_new: int, name: str) -> dict:
    from llmplay.engine import GenerationParams
    from llmplay.engine.types import GenerationRequest

    try:
        runner = EngineRunner(cache_dir, model, name)
    except RuntimeError as exc:  # e.g. the exporter refuses the architecture: a row that says so, no figures
        reason = str(exc).strip().splitlines()[-1][:200] if str(exc).strip() else type(exc).__name__
        empty = {"tokens": 0, "seconds": 1.0, "ttft_s": 0.0, "decode_tokens": 0, "decode_seconds": 1.0}
        return {**empty, "texts": [""] * len(prompts), "label": f"{name} skipped ({reason})", "skipped": reason}
    runner.reply(GenerationRequest.of("Hello", GenerationParams(max_new_tokens=4)))  # warm-up, not timed
    params = GenerationParams(max_new_tokens=max_new)
    replies = [runner.reply(GenerationRequest.of(p, params)) for p in prompts]
    ttfts = [r["ttft_s"] for r in replies if r["ttft_s"] is not None]
    return {
        "tokens": sum(r["tokens"] for r in replies),
        "seconds": sum(r["latency_s"] for r in replies),
        "ttft_s": sum(ttfts) / len(ttfts),
        "decode_tokens": sum(max(r["tokens"] - 1, 0) for r in replies),
        "decode_seconds": sum(r["latency_s"] - (r["ttft_s"] or 0) for r in replies),
        "texts": [r["text"] for r in replies],
        "label": runner.decoder.label,
        "convert_s": round(runner.convert_s, 1),
    }


def phase_engine_fpb(cache_dir: str, model: str, name: str, held_out: list[dict]) -> dict:
    """The FPB rows through the financial-sentiment template on engine ``name`` (as bench phase_fpb)."""
    from llmplay.engine import GenerationParams
    from llmplay.templates import build_request
    from llmplay.templates.library import TemplateLibrary

    runner = EngineRunner(cache_dir, model, name)
    template = TemplateLibrary.from_settings(runner.engine.settings).load("financial-sentiment")
    params = GenerationParams(max_new_tokens=8)
    correct, answers = 0, []
    for row in held_out:
        request, _ = build_request(template, "chat", {"text": row["text"]}, params)
        answer = template.output.extract(runner.reply(request)["text"]) or ""
        answers.append(answer)
        correct += answer == row["label"]
    return {"accuracy": correct / len(held_out), "answers": answers, "rows": len(held_out)}
