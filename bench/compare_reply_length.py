"""Compare tab's default length: how many new tokens a free reply needs to finish, on the bundled chat model.

    .venv/bin/python bench/compare_reply_length.py [--prompts 12] [--cap 512] [--model smollm2-135m-instruct]

Each prompt (the first N instructions of AlpacaEval in ../shared/datasets when present, else a shipped list) is
sent as a free message through llmplay.compare (the code the Compare tab runs), greedy, with a generous cap. A
reply "finishes" under a limit when it stopped by itself (finish reason ``stop``) within that many tokens. The
table gives, per candidate default (64, 128, 192, 256, 384, 512), the share of replies that finish and the
seconds the longest finishing reply takes at the measured decoding speed. The model is loaded and warmed up
first; nothing timed includes a load. The last line printed is one JSON object with the headline figures.
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

LIMITS = (64, 128, 192, 256, 384, 512)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--prompts", type=int, default=12)
    ap.add_argument("--cap", type=int, default=512)
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--cache-dir", default=str(ROOT / ".cache" / "test-models"))
    args = ap.parse_args()

    import torch

    from llmplay.compare import ColumnConfig, Comparison, prepare_column
    from llmplay.engine import Engine, GenerationParams
    from llmplay.settings import Settings

    load_avg = os.getloadavg()[0]
    rows = []
    with tempfile.TemporaryDirectory(prefix="llmplay-bench-") as data_dir:
        engine = Engine(Settings(data_dir=Path(data_dir), cache_dir=Path(args.cache_dir)))
        engine.models.get(engine.catalog.get(args.model))
        engine.generate(args.model, ["Hello"], GenerationParams(max_new_tokens=2))
        params = GenerationParams(max_new_tokens=args.cap)
        for prompt in load_prompts(args.prompts):
            column = prepare_column(engine, ColumnConfig(args.model, params), [], prompt)
            started = time.perf_counter()
            result = Comparison([column]).run(engine).runs[0].result
            if result.error:
                raise SystemExit(f"error: {result.error}")
            rows.append(
                {
                    "tokens": result.completion_tokens,
                    "stopped": result.finish_reason == "stop",
                    "tok_s": result.tokens_per_s,
                    "wall_s": time.perf_counter() - started,
                }
            )
        engine.close()

    tok_s = statistics.median(r["tok_s"] for r in rows)
    finished = sorted(r["tokens"] for r in rows if r["stopped"])
    table = []
    for limit in LIMITS:
        done = [t for t in finished if t <= limit]
        table.append(
            {
                "limit": limit,
                "finish_share": round(len(done) / len(rows), 3),
                "longest_finishing_s": round(max(done, default=0) / tok_s, 1) if tok_s else None,
            }
        )
    where = f"{os.cpu_count()} CPUs, torch threads {torch.get_num_threads()}, load average {load_avg:.2f} at start"
    print(f"{args.model}: {len(rows)} prompts, greedy, cap {args.cap} new tokens; {where}")
    print(f"reply lengths (tokens): {[r['tokens'] for r in rows]}; decoding {tok_s:.1f} tok/s (median)")
    print(f"{'limit':>6} {'replies that finish':>20} {'longest finishing reply, s':>27}")
    for row in table:
        print(f"{row['limit']:>6} {row['finish_share']:>20.0%} {row['longest_finishing_s']:>27}")
    lengths = [r["tokens"] for r in rows]
    headline = {
        "model": args.model,
        "prompts": len(rows),
        "cap": args.cap,
        "cpus": os.cpu_count(),
        "load_average_at_start": round(load_avg, 2),
        "median_tokens": statistics.median(lengths),
        "max_finished_tokens": max(finished, default=None),
        "hit_cap": sum(not r["stopped"] for r in rows),
        "tok_s": round(tok_s, 1),
        "finish_share": {str(r["limit"]): r["finish_share"] for r in table},
    }
    print(json.dumps(headline))


if __name__ == "__main__":
    main()
