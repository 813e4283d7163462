"""An evaluation run end to end: Financial PhraseBank (AllAgree) through the financial-sentiment template on
SmolLM2, as llmplay runs it (batched, shared few-shot prefix computed once, outputs cached in SQLite).

    .venv/bin/python bench/eval_run.py [--rows 200] [--max-new-tokens 8]

Phases (one process; each phase its own fresh data dir unless said; the model is loaded before timing):
  first      - the run on an empty output cache: every cell generated
  cached     - the same run again: every cell should come from the cache
  sequential - the same run on an empty cache with one-at-a-time generation (max_batch_size=1)
The rows are a seeded sample of ../shared/datasets/financial_phrasebank/sentences_allagree.jsonl.
The last line printed is one JSON object with the headline figures.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
FPB = ROOT.parent / "shared" / "datasets" / "financial_phrasebank" / "sentences_allagree.jsonl"
MODEL = "smollm2-135m-instruct"
TEMPLATE = "financial-sentiment"


def load_rows(n: int, seed: int = 0) -> list[dict]:
    if not FPB.exists():
        sys.exit(f"needs {FPB} (the shared test sets)")
    rows = [json.loads(line) for line in FPB.read_text(encoding="utf-8").splitlines() if line.strip()]
    random.Random(seed).shuffle(rows)
    return rows[:n]


def run_phase(name: str, rows: list[dict], max_new_tokens: int, data_dir: Path, batch_size: int) -> dict:
    import pandas as pd

    from llmplay.datasets import ColumnMapping, save_dataset
    from llmplay.engine import Engine, GenerationParams
    from llmplay.evaluation.config import ColumnConfig, MetricConfig, RunConfig
    from llmplay.evaluation.results import get_run, load_results
    from llmplay.evaluation.runner import EvalRunner
    from llmplay.settings import Settings
    from llmplay.templates.library import TemplateLibrary

    settings = Settings.from_env(data_dir=str(data_dir))
    # Converted weights are shared between phases (and with the tests): only the run is measured.
    cache = settings.cache_dir if "LLMPLAY_CACHE_DIR" in os.environ else ROOT / ".cache" / "test-models"
    settings = dataclasses.replace(settings, max_batch_size=batch_size, cache_dir=cache)
    engine = Engine(settings)
    prompts = data_dir / "prompts"
    if not prompts.exists():
        shutil.copytree(ROOT / "prompts", prompts)
    runner = EvalRunner(engine, TemplateLibrary(prompts, settings.db_path))
    df = pd.DataFrame(rows, columns=["text", "label"], dtype=object)
    save_dataset(settings, "fpb", df, ColumnMapping({"text": "text"}, "label"))
    engine.models.get(engine.catalog.get(MODEL))  # load before timing: the run, not the load, is measured
    column = ColumnConfig(TEMPLATE, MODEL, params=GenerationParams(max_new_tokens=max_new_tokens))
    config = RunConfig(dataset="fpb", columns=(column,), metrics=(MetricConfig("accuracy"), MetricConfig("macro_f1")))
    started = time.perf_counter()
    run_id = runner.run(config)
    wall = time.perf_counter() - started
    info = get_run(settings, run_id)
    results = load_results(settings, run_id)
    col = info.summary["columns"][0]
    tokens = sum(c.completion_tokens for c in results.cells.values() if not c.cached)
    prompt_tokens = _prompt_tokens(settings, run_id)
    out = {
        "phase": name,
        "wall_s": round(wall, 2),
        "rows": info.rows,
        "generated": info.generated_cells,
        "cached": info.cached_cells,
        "failed": info.failed_cells,
        "rows_per_s": round(info.rows / wall, 2),
        "completion_tokens_per_s": round(tokens / wall, 2),
        "prompt_tokens_per_s": round(prompt_tokens / wall, 1),
        "accuracy": col["metrics"]["accuracy"],
        "macro_f1": col["metrics"]["macro_f1"]["score"],
        "unparseable": col["unparseable"],
        "answers": [results.cells[(r, 0)].answer for r in range(info.rows)],
    }
    engine.close()
    return out


def _prompt_tokens(settings, run_id: int) -> int:
    from llmplay.store import connect

    with connect(settings.db_path) as db:
        row = next(
            db.query(
                "select coalesce(sum(o.prompt_tokens), 0) as n from eval_cells c join eval_outputs o "
                "on o.id = c.output_id where c.run_id = ? and c.cached = 0",
                [run_id],
            )
        )
    return row["n"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=200)
    ap.add_argument("--max-new-tokens", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--skip-sequential", action="store_true")
    args = ap.parse_args()
    rows = load_rows(args.rows)
    work = Path(tempfile.mkdtemp(prefix="llmplay-bench-eval-"))
    try:
        first = run_phase("first", rows, args.max_new_tokens, work / "a", args.batch_size)
        cached = run_phase("cached", rows, args.max_new_tokens, work / "a", args.batch_size)
        sequential = None
        if not args.skip_sequential:
            sequential = run_phase("sequential", rows, args.max_new_tokens, work / "b", 1)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    header = ("phase", "wall s", "rows/s", "gen tok/s", "prompt tok/s", "generated", "cached")
    print(f"{header[0]:<11} " + " ".join(f"{h:>{max(len(h), 8)}}" for h in header[1:]))
    for p in [first, cached, sequential]:
        if p:
            values = (p["wall_s"], p["rows_per_s"], p["completion_tokens_per_s"], p["prompt_tokens_per_s"])
            values += (p["generated"], p["cached"])
            print(f"{p['phase']:<11} " + " ".join(f"{v:>{max(len(h), 8)}}" for v, h in zip(values, header[1:])))
    acc = first["accuracy"]
    print(
        f"accuracy {acc['score']:.3f} (95% CI {acc['low']:.3f}-{acc['high']:.3f}, n={acc['n']}), "
        f"macro-F1 {first['macro_f1']:.3f}, unparseable {first['unparseable']}"
    )
    headline = {
        "rows": first["rows"],
        "model": MODEL,
        "template": TEMPLATE,
        "accuracy": round(acc["score"], 4),
        "accuracy_ci": [round(acc["low"], 4), round(acc["high"], 4)],
        "macro_f1": round(first["macro_f1"], 4),
        "first_run_s": first["wall_s"],
        "rows_per_s": first["rows_per_s"],
        "tokens_per_s": first["completion_tokens_per_s"],
        "prompt_tokens_per_s": first["prompt_tokens_per_s"],
        "cached_run_s": cached["wall_s"],
        "cached_fraction_of_first": round(cached["wall_s"] / first["wall_s"], 4),
        "cached_generated": cached["generated"],
    }
    if sequential:
        same = sum(a == b for a, b in zip(first["answers"], sequential["answers"])) / len(first["answers"])
        print(f"sequential {sequential['wall_s']} s; same answers as batched: {same:.1%}")
        headline |= {
            "sequential_s": sequential["wall_s"],
            "speedup_vs_sequential": round(sequential["wall_s"] / first["wall_s"], 2),
            "same_answers_as_sequential": round(same, 4),
        }
    print(json.dumps(headline))


if __name__ == "__main__":
    main()
