"""Generation throughput: a naive one-at-a-time loop vs llmplay's batched engine, on SmolLM2, and one
streamed reply per backend (transformers vs the fast decoder in each precision) on SmolLM2 and Gemma-3-270M.

    .venv/bin/python bench/generation.py [--prompts 32] [--max-new-tokens 64] [--stream-models ...]

Phases run in separate processes so each one's peak memory (max RSS) and load time are its own:
  cold   - convert the bundled GGUF into an empty cache (first-ever load)
  warm   - load the same model again from that cache (fresh process)
  naive  - fp32 model, `model.generate` one prompt at a time (what a first script would do)
  engine - llmplay's engine: length-grouped, left-padded batches, per dtype: auto (the default
           Settings.batch_backend: transformers float32 or ONNX Runtime int8, whichever it estimates faster for
           these rows; "backend" says which), float32, bfloat16, then ONNX Runtime int8 (int8 weights) and w8a8
           (8-bit weights and per-row 8-bit activations) batches
  single - the engine in the same dtype, one prompt at a time: the reference for "same text"
  stream - engine.stream per backend choice (transformers = reference, fast/<precision>, onnx/<precision>,
           auto = the default), one reply at a time as the Playground streams it: tokens/s over the replies,
           time to first token, and the share of replies equal to transformers float32's
  fpb    - a lower precision's task check: 200 Financial PhraseBank rows (../shared/datasets; skipped
           without them) classified by a streamed greedy reply, accuracy per backend (and per ONNX batch precision
           asked for: each row of its batches decodes as it streams alone)
  engine_stream, engine_fpb - the same replies and FPB rows on other CPU engines (bench/_engines.py:
           OpenVINO GenAI int8 on 2 threads as ONNX Runtime runs, converted once into
           .cache/test-models/openvino), beside llmplay's own
           default stream backend: by_engine in the JSON line (skipped, with the reason, where not installed)
Prompts: the first N instructions of AlpacaEval (../shared/datasets) when present, else a shipped list.
The last line printed is one JSON object with the headline figures.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _engines

ROOT = Path(__file__).resolve().parents[1]
ALPACA = ROOT.parent / "shared" / "datasets" / "alpaca_eval" / "alpaca_eval_instructions.jsonl"
MODEL = "smollm2-135m-instruct"
FALLBACK_PROMPTS = [
    "What is the capital of France?",
    "Give three tips for staying healthy.",
    "Explain what a neural network is in two sentences.",
    "Write a haiku about the sea.",
    "How do I boil an egg?",
    "What is the difference between weather and climate?",
    "Name three famous painters.",
    "Why is the sky blue?",
]


def load_prompts(n: int) -> list[str]:
    if ALPACA.exists():
        rows = [json.loads(line)["instruction"] for line in ALPACA.read_text().splitlines() if line.strip()]
    else:
        rows = FALLBACK_PROMPTS
    return [rows[i % len(rows)] for i in range(n)]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---- phases (each runs in its own process) ---------------------------------------------------------
def phase_load(cache_dir: str) -> dict:
    from llmplay.engine import Engine
    from llmplay.settings import Settings

    t0 = time.perf_counter()
    import transformers.models.llama.modeling_llama  # noqa: F401  - library import, not model load

    imports_s = time.perf_counter() - t0
    engine = Engine(Settings(data_dir=Path(cache_dir) / "data", cache_dir=Path(cache_dir)))
    t1 = time.perf_counter()
    loaded = engine.models.get(engine.catalog.get(MODEL))
    return {"load_s": time.perf_counter() - t1, "imports_s": imports_s, "from_cache": loaded.from_cache}


def phase_naive(cache_dir: str, prompts: list[str], max_new: int) -> dict:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from llmplay.engine import Engine
    from llmplay.settings import Settings

    engine = Engine(Settings(data_dir=Path(cache_dir) / "data", cache_dir=Path(cache_dir)))
    folder = engine.models.cache_entry(engine.catalog.get(MODEL))  # converted by the cold phase
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    tokens, texts = 0, []
    t0 = time.perf_counter()
    for prompt in prompts:
        enc = tok.apply_chat_template(
            [{"role": "user", "content": prompt}], add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        with torch.inference_mode():
            out = model.generate(**enc, max_new_tokens=max_new, do_sample=False)
        new = out[0, enc["input_ids"].shape[1] :].tolist()
        n = next((i for i, t in enumerate(new) if t == tok.eos_token_id), len(new))
        tokens += n
        texts.append(tok.decode(new[:n], skip_special_tokens=True))
    elapsed = time.perf_counter() - t0
    return {"tokens": tokens, "seconds": elapsed, "texts": texts}


def phase_engine(cache_dir: str, prompts: list[str], max_new: int, one_at_a_time: bool, dtype: str) -> dict:
    from llmplay.engine import Engine, GenerationParams, GenerationRequest
    from llmplay.settings import Settings

    # "onnx/int8": ONNX Runtime's batches (Settings.batch_backend) of the float32 model's export; "auto": the
    # default, which picks transformers float32 or onnx/int8 for the call's rows (llmplay.engine.backends)
    onnx_or_auto = dtype.startswith("onnx/") or dtype == "auto"
    batch_backend, dtype = (dtype, "float32") if onnx_or_auto else ("transformers", dtype)
    settings = Settings(data_dir=Path(cache_dir) / "data", cache_dir=Path(cache_dir), batch_backend=batch_backend)
    engine = Engine(settings)
    loaded = engine.models.get(engine.catalog.get(MODEL), dtype=dtype)
    params = GenerationParams(max_new_tokens=max_new)
    engine.generate(MODEL, ["Hello"], GenerationParams(max_new_tokens=2), dtype=dtype)  # warm-up, not timed
    # "auto" decides (and exports a missing ONNX model, once) before the rows run, as an evaluation run does
    engine.batch_backend(MODEL, [GenerationRequest.of(p, params) for p in prompts], dtype=dtype)
    t0 = time.perf_counter()
    if one_at_a_time:
        results = [engine.generate(MODEL, [p], params, dtype=dtype)[0] for p in prompts]
    else:
        results = engine.generate(MODEL, prompts, params, dtype=dtype)
    elapsed = time.perf_counter() - t0
    errors = [r.error for r in results if r.error]
    if errors:
        raise SystemExit(f"engine errors: {errors[:3]}")
    return {
        "tokens": sum(r.completion_tokens for r in results),
        "seconds": elapsed,
        "texts": [r.text for r in results],
        "dtype": batch_backend if batch_backend != "transformers" else str(loaded.dtype).removeprefix("torch."),
        "backend": results[0].backend,
    }


def phase_stream(cache_dir: str, model: str, prompts: list[str], max_new: int, backend: str) -> dict:
    from llmplay.engine import Engine, GenerationParams
    from llmplay.settings import Settings

    engine = Engine(Settings(data_dir=Path(cache_dir) / "data", cache_dir=Path(cache_dir)))
    params = GenerationParams(max_new_tokens=max_new)
    settle(engine, model, backend)
    results = []
    for prompt in prompts:
        for event in engine.stream(model, prompt, params, backend=backend):
            if event.done:
                results.append(event.result)
    errors = [r.error for r in results if r.error]
    if errors:
        raise SystemExit(f"stream errors: {errors[:3]}")
    ttfts = [r.time_to_first_token_s for r in results if r.time_to_first_token_s is not None]
    return {
        "tokens": sum(r.completion_tokens for r in results),
        "seconds": sum(r.latency_s for r in results),
        "ttft_s": sum(ttfts) / len(ttfts),
        # The streaming rate a reader sees once the reply has started: tokens after the first one over the
        # time after the first one (the prompt pass is TTFT's, reported on its own).
        "decode_tokens": sum(max(r.completion_tokens - 1, 0) for r in results),
        "decode_seconds": sum(r.latency_s - (r.time_to_first_token_s or 0) for r in results),
        "texts": [r.text for r in results],
        "label": results[0].backend,
    }


def settle(engine, model: str, backend: str) -> None:
    """Load ``model`` and convert its weights for ``backend`` before anything is timed; "auto" on a fresh cache
    exports the ONNX copy in the background (its first replies run on the fast path), so wait for that too:
    every measured reply then runs on the backend "auto" settles on."""
    import threading

    from llmplay.engine import GenerationParams

    for _ in range(2):
        for _ in engine.stream(model, "Hello", GenerationParams(max_new_tokens=4), backend=backend):
            pass
        for thread in threading.enumerate():
            if thread.name.startswith("onnx-export-"):
                thread.join()


def phase_fpb(cache_dir: str, backend: str, rows: int = 200) -> dict:
    """Financial PhraseBank rows through the shipped financial-sentiment template, one streamed reply each."""
    from _data import fpb_split

    from llmplay.engine import Engine, GenerationParams
    from llmplay.settings import Settings
    from llmplay.templates import build_request
    from llmplay.templates.library import TemplateLibrary

    _, held_out = fpb_split(0, train=0, held_out=rows)
    settings = Settings(data_dir=Path(cache_dir) / "data", cache_dir=Path(cache_dir), prompts_dir=ROOT / "prompts")
    engine = Engine(settings)
    template = TemplateLibrary.from_settings(settings).load("financial-sentiment")
    params = GenerationParams(max_new_tokens=8)
    settle(engine, MODEL, backend)
    correct, answers, labels = 0, [], set()
    for row in held_out:
        request, _ = build_request(template, "chat", {"text": row["text"]}, params)
        for event in engine.stream(MODEL, request, backend=backend):
            if event.done:
                answer = template.output.extract(event.result.text) or ""  # as an evaluation run scores it
                answers.append(answer)
                labels.add(event.result.backend)
                correct += answer == row["label"]
    return {"accuracy": correct / len(held_out), "answers": answers, "rows": len(held_out), "labels": sorted(labels)}


def run_phase(name: str, cache_dir: str, args, dtype: str = "float32", extra: tuple = ()) -> dict:
    cmd = [sys.executable, __file__, "--phase", name, "--cache-dir", cache_dir, "--dtypes", dtype, *extra]
    cmd += ["--prompts", str(args.prompts), "--max-new-tokens", str(args.max_new_tokens)]
    cmd += ["--fpb-rows", str(args.fpb_rows)]  # the fpb phases read it (without it they ran the default 200)
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"phase {name} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prompts", type=int, default=32)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument(
        "--dtypes",
        default="auto,float32,bfloat16,onnx/int8,onnx/w8a8",
        help="engine dtypes to run (onnx/<precision>, auto: Settings.batch_backend); the first is the headline",
    )
    ap.add_argument(
        "--stream-models", default=f"{MODEL},gemma-3-270m", help="models whose streamed replies are compared"
    )
    ap.add_argument(
        "--backends",
        default="transformers,fast/float32,fast/float16,fast/bfloat16,onnx/fp32,auto",
        help="stream backends of SmolLM2 (auto: the default, onnx int8); transformers (float32) is the reference",
    )
    ap.add_argument("--fpb-rows", type=int, default=200, help="0 skips the task-accuracy check")
    ap.add_argument("--engines", default="openvino/int8@2", help="other engines measured beside ours ('' skips)")
    ap.add_argument("--phase", help=argparse.SUPPRESS)
    ap.add_argument("--cache-dir", help=argparse.SUPPRESS)
    ap.add_argument("--model", help=argparse.SUPPRESS)
    ap.add_argument("--backend", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.phase:
        prompts = load_prompts(args.prompts)
        if args.phase in ("cold", "warm"):
            out = phase_load(args.cache_dir)
        elif args.phase == "naive":
            out = phase_naive(args.cache_dir, prompts, args.max_new_tokens)
        elif args.phase == "stream":
            out = phase_stream(args.cache_dir, args.model, prompts, args.max_new_tokens, args.backend)
        elif args.phase == "fpb":
            out = phase_fpb(args.cache_dir, args.backend, args.fpb_rows)
        elif args.phase == "engine_stream":
            out = _engines.phase_engine_stream(args.cache_dir, args.model, prompts, args.max_new_tokens, args.backend)
        elif args.phase == "engine_fpb":
            from _data import fpb_split

            held_out = fpb_split(0, train=0, held_out=args.fpb_rows)[1]
            out = _engines.phase_engine_fpb(args.cache_dir, MODEL, args.backend, held_out)
        else:
            out = phase_engine(args.cache_dir, prompts, args.max_new_tokens, args.phase == "single", args.dtypes)
        out["peak_rss_mb"] = peak_rss_mb()
        print(json.dumps(out))
        return

    dtypes = [d.strip() for d in args.dtypes.split(",") if d.strip()]
    with tempfile.TemporaryDirectory(prefix="llmplay-bench-") as cache_dir:
        cold = run_phase("cold", cache_dir, args)
        warm = run_phase("warm", cache_dir, args)
        naive = run_phase("naive", cache_dir, args)
        runs = {d: (run_phase("engine", cache_dir, args, d), run_phase("single", cache_dir, args, d)) for d in dtypes}
        backends = [b.strip() for b in args.backends.split(",") if b.strip()]
        streams = {}
        for m in [m.strip() for m in args.stream_models.split(",") if m.strip()]:
            # Other models: the reference, the fast decoder and what "auto" picks for them.
            for b in backends if m == MODEL else ["transformers", "fast/float16", "auto"]:
                streams[(m, b)] = run_phase("stream", cache_dir, args, extra=("--model", m, "--backend", b))
        fpb = {}
        with_fpb = args.fpb_rows and (ROOT.parent / "shared" / "datasets" / "financial_phrasebank").exists()
        if with_fpb:
            # each ONNX batch precision too: its streamed replies are its batched ones (each row decodes as alone)
            fpb_backends = ("transformers", "fast/float16", "auto", *(d for d in dtypes if d.startswith("onnx/")))
            fpb = {b: run_phase("fpb", cache_dir, args, extra=("--backend", b)) for b in fpb_backends}
        engines, skipped = {}, {}
        for name in [e.strip() for e in args.engines.split(",") if e.strip()]:
            if reason := _engines.missing(name):
                skipped[name] = reason
                continue
            for m in [m.strip() for m in args.stream_models.split(",") if m.strip()]:
                extra = ("--model", m, "--backend", name)
                engines[(m, name)] = run_phase("engine_stream", cache_dir, args, extra=extra)
            if with_fpb:
                fpb[name] = run_phase("engine_fpb", cache_dir, args, extra=("--backend", name))

    naive_tok_s = naive["tokens"] / naive["seconds"]
    rows = [("naive loop, float32, 1 at a time", naive)]
    by_dtype = {}
    for engine, single in runs.values():
        rows += [(f"engine, {single['dtype']}, 1 at a time", single), (f"engine, {engine['dtype']}, batched", engine)]
        engine_tok_s = engine["tokens"] / engine["seconds"]
        by_dtype[engine["dtype"]] = {
            "engine_tok_s": round(engine_tok_s, 1),
            "engine_single_tok_s": round(single["tokens"] / single["seconds"], 1),
            "backend": engine["backend"],
            "speedup_vs_naive": round(engine_tok_s / naive_tok_s, 2),
            "same_text_fraction": round(same_fraction(engine["texts"], single["texts"]), 3),
            "same_as_naive_fp32_fraction": round(same_fraction(engine["texts"], naive["texts"]), 3),
            "peak_rss_mb": round(engine["peak_rss_mb"]),
        }
    if "float32" in by_dtype:  # today's batches (transformers float32) are what the others are compared with
        for fig in by_dtype.values():
            fig["speedup_vs_float32_batched"] = round(fig["engine_tok_s"] / by_dtype["float32"]["engine_tok_s"], 2)
    print(f"\nSmolLM2-135M-Instruct, {args.prompts} prompts, greedy, <= {args.max_new_tokens} new tokens\n")
    print(f"{'run':34} {'tokens':>7} {'seconds':>8} {'tok/s':>8} {'peak MB':>8}")
    for name, r in rows:
        print(
            f"{name:34} {r['tokens']:7d} {r['seconds']:8.1f} {r['tokens'] / r['seconds']:8.1f} {r['peak_rss_mb']:8.0f}"
        )
    print()
    for dtype, fig in by_dtype.items():
        print(
            f"{dtype}: batched engine {fig['speedup_vs_naive']:.1f}x the naive fp32 loop; same text as one-at-a-time "
            f"{dtype}: {fig['same_text_fraction']:.0%} (as naive fp32: {fig['same_as_naive_fp32_fraction']:.0%})"
        )
    print(
        f"cold load (GGUF conversion): {cold['load_s']:.1f} s; warm load from cache: {warm['load_s']:.2f} s "
        f"(+ {warm['imports_s']:.1f} s one-time library import per process)"
    )
    headline = by_dtype[runs[dtypes[0]][0]["dtype"]]  # the first dtype asked for: the engine's default
    by_backend, default_row = stream_table(streams, fpb)
    by_engine = engine_table(streams, engines, fpb, skipped)
    print(
        json.dumps(
            {
                "backend": default_row.get("backend"),
                "stream_tok_s": default_row.get("stream_tok_s"),
                "stream_tok_s_with_prompt": default_row.get("stream_tok_s_with_prompt"),
                "stream_ttft_s": default_row.get("stream_ttft_s"),
                "stream_same_text_fraction": default_row.get("stream_same_text_fraction"),
                "stream_matching_prefix_share": default_row.get("stream_matching_prefix_share"),
                "reference_stream_tok_s": default_row.get("reference_stream_tok_s"),
                "stream_speedup": default_row.get("stream_speedup"),
                "fpb_accuracy": {b: round(r["accuracy"], 3) for b, r in fpb.items()},
                "prompts": args.prompts,
                "max_new_tokens": args.max_new_tokens,
                "engine_dtype": runs[dtypes[0]][0]["dtype"],
                "naive_tok_s": round(naive_tok_s, 1),
                **{k: headline[k] for k in ("engine_tok_s", "speedup_vs_naive", "same_text_fraction")},
                "cold_load_s": round(cold["load_s"], 2),
                "warm_load_s": round(warm["load_s"], 2),
                "warm_import_s": round(warm["imports_s"], 2),
                "naive_peak_rss_mb": round(naive["peak_rss_mb"]),
                "by_dtype": by_dtype,
                "by_backend": by_backend,
                "by_engine": by_engine,
            }
        )
    )


def stream_table(streams: dict, fpb: dict) -> tuple[dict, dict]:
    """Print one row per (model, backend) and return them, plus the default backend's SmolLM2 row."""
    print(f"\nOne streamed reply at a time ({'; '.join(sorted({m for m, _ in streams}))})\n")
    print("tok/s: while streaming (after the first token); +prompt: over the whole reply, prompt pass included")
    print(
        f"{'model':22} {'backend':22} {'tok/s':>7} {'+prompt':>7} {'TTFT s':>7} {'same as transformers fp32':>26}"
        f" {'prefix':>7}"
    )
    by_backend: dict = {}
    for (model, backend), run in streams.items():
        reference = streams.get((model, "transformers"))
        same = same_fraction(run["texts"], reference["texts"]) if reference else None
        row = {
            "model": model,
            "choice": backend,
            "backend": run["label"],
            "stream_tok_s": round(run["decode_tokens"] / run["decode_seconds"], 1),
            "stream_tok_s_with_prompt": round(run["tokens"] / run["seconds"], 1),
            "stream_ttft_s": round(run["ttft_s"], 3),
            "stream_same_text_fraction": None if same is None else round(same, 3),
            # Per prompt, the share of the reference reply's characters that the reply repeats before it first
            # differs (1.0 = same text); the mean over prompts.
            "stream_matching_prefix_share": None
            if not reference
            else round(prefix_share(run["texts"], reference["texts"]), 3),
        }
        if reference:
            reference_rate = reference["decode_tokens"] / reference["decode_seconds"]
            row["stream_speedup"] = round(row["stream_tok_s"] / reference_rate, 2)
            row["reference_stream_tok_s"] = round(reference_rate, 1)
        by_backend[f"{model} {backend}"] = row
        shown = "-" if same is None else f"{same:.0%}"
        prefix = "-" if same is None else f"{row['stream_matching_prefix_share']:.0%}"
        figures = f"{row['stream_tok_s']:7.1f} {row['stream_tok_s_with_prompt']:7.1f} {row['stream_ttft_s']:7.3f}"
        figures += f" {shown:>26} {prefix:>7}"
        print(f"{model:22} {run['label']:22} {figures}")
    if fpb:
        ref = fpb.get("transformers")
        for backend, run in fpb.items():
            agree = same_fraction(run["answers"], ref["answers"]) if ref else None
            ran_on = ", ".join(run.get("labels", []))
            print(
                f"FPB {run['rows']} rows, {backend} ({ran_on}): accuracy {run['accuracy']:.1%}"
                + ("" if agree is None else f", same label as transformers float32 on {agree:.0%}")
            )
    # The default: what "auto" picks for SmolLM2 (onnx int8 where onnxruntime-genai is installed).
    default = by_backend.get(f"{MODEL} auto") or by_backend.get(f"{MODEL} transformers") or {}
    return by_backend, default


def engine_table(streams: dict, engines: dict, fpb: dict, skipped: dict) -> dict:
    """Per model: llmplay's default stream backend ("auto") and each other engine on the same replies, with
    their speed against ours, same text as transformers float32, and (SmolLM2) FPB accuracy."""
    print("\nOther engines, same prompts and ids, one reply at a time (ours: the default stream backend)\n")
    print(
        f"{'model':22} {'engine':24} {'tok/s':>7} {'TTFT s':>7} {'vs ours':>7} {'same fp32':>9} {'prefix':>7}"
        f" {'FPB':>6}"
    )
    table: dict = {}
    models = sorted({m for m, _ in engines} | {m for m, _ in streams})
    for model in models:
        reference, ours = streams.get((model, "transformers")), streams.get((model, "auto"))
        ours = ours or streams.get((model, "fast/float16"))
        rows = [("ours", ours, "auto")] + [(name, run, name) for (m, name), run in engines.items() if m == model]
        for name, run, fpb_key in rows:
            if run is None:
                continue
            if run.get("skipped"):  # the engine could not convert this model (its reason)
                table[f"{model} {name}"] = {"skipped": run["skipped"]}
                print(f"{model:22} {name:24} skipped: {run['skipped']}")
                continue
            rate = run["decode_tokens"] / run["decode_seconds"]
            row = {
                "label": run["label"],
                "stream_tok_s": round(rate, 1),
                "stream_ttft_s": round(run["ttft_s"], 3),
                "stream_same_text_fraction": round(same_fraction(run["texts"], reference["texts"]), 3)
                if reference
                else None,
                "stream_matching_prefix_share": round(prefix_share(run["texts"], reference["texts"]), 3)
                if reference
                else None,
                "vs_ours": round(rate / (ours["decode_tokens"] / ours["decode_seconds"]), 2) if ours else None,
            }
            if "convert_s" in run:
                row["convert_s"] = run["convert_s"]
            if model == MODEL and fpb_key in fpb:
                row["fpb_accuracy"] = round(fpb[fpb_key]["accuracy"], 3)
                if "transformers" in fpb:
                    row["fpb_float32_accuracy"] = round(fpb["transformers"]["accuracy"], 3)
            table[f"{model} {name}"] = row
            cells = [
                f"{row['stream_tok_s']:7.1f}",
                f"{row['stream_ttft_s']:7.3f}",
                f"{row['vs_ours'] or 0:7.2f}",
                "-" if row["stream_same_text_fraction"] is None else f"{row['stream_same_text_fraction']:9.0%}",
                "-" if row["stream_matching_prefix_share"] is None else f"{row['stream_matching_prefix_share']:7.0%}",
                f"{row['fpb_accuracy']:6.1%}" if "fpb_accuracy" in row else "     -",
            ]
            print(f"{model:22} {run['label']:24} {' '.join(cells)}")
    for name, reason in skipped.items():
        print(f"{name}: skipped ({reason})")
        table[name] = {"skipped": reason}
    return table


def prefix_share(texts: list[str], references: list[str]) -> float:
    shares = []
    for text, ref in zip(texts, references):
        n = 0
        while n < min(len(text), len(ref)) and text[n] == ref[n]:
            n += 1
        shares.append(1.0 if text == ref else n / max(len(ref), 1))
    return sum(shares) / len(shares)


def same_fraction(a: list[str], b: list[str]) -> float:
    return sum(x == y for x, y in zip(a, b)) / len(b)


if __name__ == "__main__":
    main()
