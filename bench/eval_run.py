"""An evaluation run end to end: Financial PhraseBank (AllAgree) through the financial-sentiment template on
SmolLM2, as llmplay runs it (batched, shared few-shot prefix computed once, outputs cached in SQLite).

    .venv/bin/python bench/eval_run.py [--rows 200] [--max-new-tokens 8] [--skip-likelihood]

Phases (one process; each phase its own fresh data dir unless said; the model is loaded before timing):
  first      - the run on an empty output cache: every cell generated
  cached     - the same run again: every cell should come from the cache
  sequential - the same run on an empty cache with one-at-a-time generation (max_batch_size=1)
  likelihood - the run in likelihood mode on an empty cache: labels chosen by their log-likelihood, rows scored
               in batches with the shared prompt prefix computed once (llmplay.engine.likelihood)
  one-row    - the one-row reference for likelihood: ``Engine.choose`` row by row (one forward pass over the whole
               prompt per row, as evaluation did before issue 26); its labels are what the batched run must match
The rows are a seeded sample of ../shared/datasets/financial_phrasebank/sentences_allagree.jsonl.
The last line printed is one JSON object with the headline figures; ``generate_s_per_100`` and
``likelihood_s_per_100`` are the wall seconds per 100 rows of the first (cold-cache) run in each mode, and
``likelihood_same_label_fraction`` the share of rows whose batched label equals the one-row reference's.
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


def run_phase(
    name: str, rows: list[dict], max_new_tokens: int, data_dir: Path, batch_size: int, mode: str = "generate"
) -> dict:
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
    column = ColumnConfig(TEMPLATE, MODEL, params=GenerationParams(max_new_tokens=max_new_tokens), mode=mode)
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


def one_row_reference(rows: list[dict], data_dir: Path) -> dict:
    """Labels chosen by likelihood one row at a time (Engine.choose: the path evaluation runs took before)."""
    from llmplay.engine import Engine
    from llmplay.settings import Settings
    from llmplay.templates.model import parse_template
    from llmplay.templates.render import build_request

    settings = Settings.from_env(data_dir=str(data_dir))
    cache = settings.cache_dir if "LLMPLAY_CACHE_DIR" in os.environ else ROOT / ".cache" / "test-models"
    engine = Engine(dataclasses.replace(settings, cache_dir=cache))
    template = parse_template((ROOT / "prompts" / f"{TEMPLATE}.yaml").read_text(encoding="utf-8"), TEMPLATE)
    engine.models.get(engine.catalog.get(MODEL))
    labels = list(template.output.labels)
    started = time.perf_counter()
    answers = []
    for row in rows:
        request, _ = build_request(template, "chat", {"text": row["text"]})
        answers.append(engine.choose(MODEL, request, labels)[0])
    wall = time.perf_counter() - started
    engine.close()
    return {"phase": "one-row", "wall_s": round(wall, 2), "answers": answers}


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
    ap.add_argument("--skip-likelihood", action="store_true")
    ap.add_argument("--reference-rows", type=int, default=None, help="rows checked one at a time (default: all)")
    args = ap.parse_args()
    rows = load_rows(args.rows)
    work = Path(tempfile.mkdtemp(prefix="llmplay-bench-eval-"))
    try:
        first = run_phase("first", rows, args.max_new_tokens, work / "a", args.batch_size)
        cached = run_phase("cached", rows, args.max_new_tokens, work / "a", args.batch_size)
        sequential = likelihood = reference = None
        if not args.skip_sequential:
            sequential = run_phase("sequential", rows, args.max_new_tokens, work / "b", 1)
        if not args.skip_likelihood:
            likelihood = run_phase("likelihood", rows, args.max_new_tokens, work / "c", args.batch_size, "likelihood")
            reference = one_row_reference(rows[: args.reference_rows], work / "d")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    header = ("phase", "wall s", "rows/s", "gen tok/s", "prompt tok/s", "generated", "cached")
    print(f"{header[0]:<11} " + " ".join(f"{h:>{max(len(h), 8)}}" for h in header[1:]))
    for p in [first, cached, sequential, likelihood]:
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
    if likelihood and reference:
        checked = len(reference["answers"])
        same = sum(a == b for a, b in zip(likelihood["answers"], reference["answers"])) / checked
        lik_acc = likelihood["accuracy"]["score"]
        print(
            f"likelihood {likelihood['wall_s']} s (accuracy {lik_acc:.3f}); one row at a time "
            f"{reference['wall_s']} s for {checked} rows; same labels as one row at a time: {same:.1%}"
        )
        headline |= {
            "generate_s_per_100": round(first["wall_s"] * 100 / len(rows), 2),
            "likelihood_s_per_100": round(likelihood["wall_s"] * 100 / len(rows), 2),
            "likelihood_one_row_s_per_100": round(reference["wall_s"] * 100 / checked, 2),
            "likelihood_reference_rows": checked,
            "likelihood_same_label_fraction": round(same, 4),
            "likelihood_accuracy": round(lik_acc, 4),
            "likelihood_speedup_vs_one_row": round(reference["wall_s"] * len(rows) / checked / likelihood["wall_s"], 2),
        }
    print(json.dumps(headline))


if __name__ == "__main__":
    main()
