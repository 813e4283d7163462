"""Compare tab: columns streamed in parallel vs the same columns one after the other, on the bundled models.

    .venv/bin/python bench/compare.py [--prompts 3] [--max-new-tokens 64]

Two runs, each on the same prompts, greedy, through llmplay.compare (the code the Compare tab runs):
  2 columns - SmolLM2-135M-Instruct vs Gemma-3-270M
  4 columns - both models x two decodings (plain greedy; greedy with repetition_penalty 1.3); two columns on the
              same model share one loaded copy, so they take turns: only different models overlap
Per prompt, "serial" streams the columns one after the other and "parallel" streams them all at once (the order
of the two alternates from prompt to prompt, so neither always runs on a warmer machine). Both models are loaded
and warmed up first; nothing timed includes a load. TTFT and tokens/s are the engine's own per-column figures
(from the moment that column's generation starts), averaged over the prompts; "first text" is when the column's
first text arrived counted from the start of the whole parallel run, so it includes waiting for its turn.
Prompts: the first N instructions of AlpacaEval (../shared/datasets) when present, else a shipped list.
The last line printed is one JSON object with the headline figures.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
from generation import load_prompts  # noqa: E402  (bench/ is on sys.path when run as a script)

MODELS = ("smollm2-135m-instruct", "gemma-3-270m")


def column_setups(count: int, max_new: int) -> list[tuple[str, object]]:
    """(model, params) per column: the two models, then (4 columns) the two again with a repetition penalty."""
    from llmplay.engine import GenerationParams

    plain = GenerationParams(max_new_tokens=max_new)
    setups = [(model, plain) for model in MODELS]
    if count == 4:
        setups += [(model, GenerationParams(max_new_tokens=max_new, repetition_penalty=1.3)) for model in MODELS]
    return setups


def run_once(engine, setups, prompt: str, parallel: bool) -> tuple[float, list]:
    """Wall time and each column's run (result and timing) for one prompt, all at once or one after the other."""
    from llmplay.compare import ColumnConfig, Comparison, prepare_column

    columns = [prepare_column(engine, ColumnConfig(model, params), [], prompt) for model, params in setups]
    started = time.perf_counter()
    if parallel:
        runs = Comparison(columns).run(engine).runs
    else:
        runs = [Comparison([column]).run(engine).runs[0] for column in columns]
    wall = time.perf_counter() - started
    errors = [run.result.error for run in runs if run.result.error]
    if errors:
        raise SystemExit(f"column errors: {errors}")
    return wall, runs


def measure(engine, setups, prompts: list[str]) -> dict:
    walls = {"serial": 0.0, "parallel": 0.0}
    results: dict[str, list[list]] = {"serial": [], "parallel": []}
    for i, prompt in enumerate(prompts):
        order = ("serial", "parallel") if i % 2 == 0 else ("parallel", "serial")
        for mode in order:
            wall, res = run_once(engine, setups, prompt, parallel=mode == "parallel")
            walls[mode] += wall
            results[mode].append(res)
    columns = []
    for c, (model, params) in enumerate(setups):
        row = {"model": model, "repetition_penalty": params.repetition_penalty}
        for mode in ("parallel", "serial"):
            mine = [per_prompt[c].result for per_prompt in results[mode]]
            prefix = "" if mode == "parallel" else "serial_"
            row[f"{prefix}ttft_s"] = round(statistics.mean(r.time_to_first_token_s or 0.0 for r in mine), 3)
            row[f"{prefix}tok_s"] = round(statistics.mean(r.tokens_per_s for r in mine), 1)
            row[f"{prefix}tokens"] = sum(r.completion_tokens for r in mine)
        row["first_text_s"] = round(statistics.mean(p[c].first_text_s for p in results["parallel"]), 2)
        columns.append(row)
    pairs = zip(results["serial"], results["parallel"])
    same = [a.result.text == b.result.text for s, p in pairs for a, b in zip(s, p)]
    return {
        "serial_s": round(walls["serial"], 2),
        "parallel_s": round(walls["parallel"], 2),
        "speedup": round(walls["serial"] / walls["parallel"], 2),
        "same_text_fraction": round(sum(same) / len(same), 3),
        "columns": columns,
    }


def print_table(title: str, fig: dict, n_prompts: int) -> None:
    print(f"\n{title}")
    head = f"{'col':>3} {'model':22} {'rep.pen':>7} | {'parallel: TTFT s':>16} {'tok/s':>6} {'tokens':>6}"
    print(head + f" {'first text s':>12} | {'serial: TTFT s':>14} {'tok/s':>6} {'tokens':>6}")
    for i, c in enumerate(fig["columns"], 1):
        print(
            f"{i:>3} {c['model']:22} {c['repetition_penalty']:>7.1f} | {c['ttft_s']:>16.2f} {c['tok_s']:>6.1f} "
            f"{c['tokens']:>6d} {c['first_text_s']:>12.2f} | {c['serial_ttft_s']:>14.2f} {c['serial_tok_s']:>6.1f} "
            f"{c['serial_tokens']:>6d}"
        )
    print(
        f"wall time for {n_prompts} prompts: serial {fig['serial_s']:.1f} s, parallel {fig['parallel_s']:.1f} s "
        f"({fig['speedup']:.2f}x); same text serial vs parallel: {fig['same_text_fraction']:.0%}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prompts", type=int, default=3)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--dtype", default="float32", help="weights dtype for both models (the settings' default)")
    ap.add_argument(
        "--cache-dir",
        default=str(ROOT / ".cache" / "test-models"),
        help="converted-model cache (the tests' cache by default, so no GGUF conversion runs)",
    )
    args = ap.parse_args()

    import torch

    from llmplay.engine import Engine, GenerationParams
    from llmplay.settings import Settings

    load_avg = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="llmplay-bench-") as data_dir:
        engine = Engine(Settings(data_dir=Path(data_dir), cache_dir=Path(args.cache_dir), dtype=args.dtype))
        load_s = {}
        for model in MODELS:  # load and warm up, untimed: the figures are about generation
            t0 = time.perf_counter()
            engine.models.get(engine.catalog.get(model))
            load_s[model] = round(time.perf_counter() - t0, 2)
            engine.generate(model, ["Hello"], GenerationParams(max_new_tokens=2))
        prompts = load_prompts(args.prompts)
        two = measure(engine, column_setups(2, args.max_new_tokens), prompts)
        four = measure(engine, column_setups(4, args.max_new_tokens), prompts)
        engine.close()

    where = f"{os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}, load average {load_avg:.2f} at start"
    common = f"{args.prompts} prompts, greedy, <= {args.max_new_tokens} new tokens, {args.dtype}; {where}"
    print_table(f"2 columns: SmolLM2-135M-Instruct vs Gemma-3-270M ({common})", two, args.prompts)
    print_table(f"4 columns: both models x (plain, repetition_penalty 1.3) ({common})", four, args.prompts)
    print(f"model load from cache (untimed above): {load_s}")

    def short(fig: dict) -> dict:
        keep = ("model", "repetition_penalty", "ttft_s", "tok_s", "tokens", "first_text_s", "serial_ttft_s")
        keep += ("serial_tok_s",)
        return {k: fig[k] for k in ("parallel_s", "serial_s", "speedup", "same_text_fraction")} | {
            "columns": [{k: c[k] for k in keep} for c in fig["columns"]]
        }

    headline = {
        "prompts": args.prompts,
        "max_new_tokens": args.max_new_tokens,
        "dtype": args.dtype,
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_at_start": round(load_avg, 2),
        **short(two),
        "four_columns": short(four),
    }
    print(json.dumps(headline))


if __name__ == "__main__":
    main()
