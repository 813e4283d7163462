"""Prompt optimisation end to end (issue 24): the library template against the searched one, on test rows the
search never read, with SmolLM2-135M-Instruct on 2 CPU cores.

    .venv/bin/python bench/prompt_optimize.py [--minutes 20] [--only fpb,generate_only,intents] [--seed 0]

Three searches in one process, each in a fresh data dir (cold output cache; the model weights are loaded once
and shared, before any timing):
  fpb            - Financial PhraseBank AllAgree, the library's financial-sentiment template; pool 200 / dev 150 /
                   test 300 disjoint rows (from a seeded sample of 680; duplicates dropped); every part of the
                   search space on
  generate_only  - the same rows and template with the answer mode held at generate (as for an endpoint model,
                   where likelihood is not available)
  intents        - CLINC150, the 10 banking intents of the library's intent-detection template: 470 rows drawn
                   (seeded) from data_full.json's train/val/test rows of those intents; pool 100 / dev 150 /
                   test 200; every part on
Each search runs through ``llmplay.optimize.search.run_search`` (the code behind ``llmplay optimize`` and the app's
Optimize panel). The test report is the paired bootstrap of (winner - start) over the same test rows. The last
line printed is one JSON object: ``start_accuracy``, ``optimized_accuracy``, ``gain_points``, ``gain_ci_low``,
``gain_ci_high``, ``search_s``, ``model_calls`` (uncached model calls of the search, the test scoring not
counted) of the fpb search, the same keys under ``generate_only`` and under ``intents``.
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
SHARED = ROOT.parent / "shared" / "datasets"
FPB = SHARED / "financial_phrasebank" / "sentences_allagree.jsonl"
CLINC = SHARED / "clinc150" / "data_full.json"
MODEL = "smollm2-135m-instruct"


def fpb_rows(n: int, seed: int) -> list[dict]:
    rows = [json.loads(line) for line in FPB.read_text(encoding="utf-8").splitlines() if line.strip()]
    return random.Random(seed).sample(rows, n)


def intent_rows(labels: tuple[str, ...], n: int, seed: int) -> list[dict]:
    data = json.loads(CLINC.read_text(encoding="utf-8"))
    rows = [
        {"message": text, "label": label}
        for part in ("train", "val", "test")
        for text, label in data[part]
        if label in labels
    ]
    return random.Random(seed).sample(rows, n)


def search(name: str, work: Path, shared_models, rows, mapping, config: dict) -> dict:
    import pandas as pd

    from llmplay.datasets import ColumnMapping, save_dataset
    from llmplay.engine import Engine
    from llmplay.optimize.config import OptimizeConfig
    from llmplay.optimize.search import run_search
    from llmplay.settings import Settings
    from llmplay.templates.library import TemplateLibrary

    data_dir = work / name
    settings = Settings.from_env(data_dir=str(data_dir))
    cache = settings.cache_dir if "LLMPLAY_CACHE_DIR" in os.environ else ROOT / ".cache" / "test-models"
    settings = dataclasses.replace(settings, cache_dir=cache, prompts_dir=ROOT / "prompts")
    engine = Engine(settings, shared_models=shared_models)
    columns = list(rows[0])
    save_dataset(settings, name, pd.DataFrame(rows, columns=columns, dtype=object), ColumnMapping(*mapping))
    library = TemplateLibrary.from_settings(settings)

    def show(event) -> None:
        if event.kind != "scored" or event.rows >= max(config["splits"]["dev"] // 3, 1):
            print(f"  [{name} {event.elapsed_s:6.0f} s, {event.calls:5d} calls] {event.message}", flush=True)

    print(f"== {name}: {config['template']} on {len(rows)} rows, {config['splits']}", flush=True)
    started = time.perf_counter()
    result = run_search(engine, OptimizeConfig.from_dict({**config, "dataset": name}), library, on_event=show)
    wall = time.perf_counter() - started
    engine.close()
    from llmplay.optimize.cli import format_result

    print(format_result(result), flush=True)
    t = result.test
    if t is None:
        sys.exit(f"{name}: the search stopped ({result.stopped}) before the test report")
    print(f"  winner #{result.winner.candidate.id}: {result.winner.candidate.changed}", flush=True)
    return {
        "start_accuracy": round(t.start.estimate, 4),
        "optimized_accuracy": round(t.winner.estimate, 4),
        "gain_points": round(100 * t.gain.estimate, 1),
        "gain_ci_low": round(100 * t.gain.low, 1),
        "gain_ci_high": round(100 * t.gain.high, 1),
        "test_rows": t.gain.n,
        "search_s": round(result.search_s, 1),
        "total_s": round(wall, 1),
        "model_calls": result.calls,
        "candidates": len(result.standings),
        "stopped": result.stopped,
        "winner": result.winner.candidate.changed,
        "winner_mode": result.winner.candidate.mode,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=20.0, help="each search's budget (the test scoring not counted)")
    ap.add_argument("--only", default="fpb,generate_only,intents")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    wanted = [w.strip() for w in args.only.split(",") if w.strip()]
    missing = [str(p) for p in (FPB, CLINC) if not p.exists()]
    if missing:
        sys.exit(f"skipped: needs the shared data sets ({', '.join(missing)} not found)")

    from llmplay.engine import Engine
    from llmplay.settings import Settings
    from llmplay.templates.model import parse_template

    work = Path(tempfile.mkdtemp(prefix="llmplay-bench-optimize-"))
    settings = Settings.from_env(data_dir=str(work / "models"))
    cache = settings.cache_dir if "LLMPLAY_CACHE_DIR" in os.environ else ROOT / ".cache" / "test-models"
    loader = Engine(dataclasses.replace(settings, cache_dir=cache))
    loader.models.get(loader.catalog.get(MODEL))  # loaded once, before any timing
    base = {
        "model": MODEL,
        "seed": args.seed,
        "budget": {"minutes": args.minutes},
        "params": {"max_new_tokens": 8},
    }
    fpb = fpb_rows(680, args.seed)  # a few spare: the splits drop duplicate sentences
    intents = parse_template((ROOT / "prompts" / "intent-detection.yaml").read_text(encoding="utf-8"))
    figures: dict = {}
    try:
        for name in wanted:
            if name == "fpb":
                config = {**base, "template": "financial-sentiment", "splits": {"pool": 200, "dev": 150, "test": 300}}
                figures[name] = search(name, work, loader.models, fpb, ({"text": "text"}, "label"), config)
            elif name == "generate_only":
                config = {
                    **base,
                    "template": "financial-sentiment",
                    "splits": {"pool": 200, "dev": 150, "test": 300},
                    "search": {"answer_modes": ["generate"]},
                }
                figures[name] = search(name, work, loader.models, fpb, ({"text": "text"}, "label"), config)
            elif name == "intents":
                rows = intent_rows(intents.output.labels, 470, args.seed)
                config = {**base, "template": "intent-detection", "splits": {"pool": 100, "dev": 150, "test": 200}}
                figures[name] = search(name, work, loader.models, rows, ({"message": "message"}, "label"), config)
            else:
                sys.exit(f"unknown search {name!r} (known: fpb, generate_only, intents)")
    finally:
        loader.close()
        shutil.rmtree(work, ignore_errors=True)

    print()
    for name, f in figures.items():
        print(
            f"{name:<14} start {f['start_accuracy']:.3f} -> {f['optimized_accuracy']:.3f} "
            f"(gain {f['gain_points']:+.1f} points, 95% CI {f['gain_ci_low']:+.1f} to {f['gain_ci_high']:+.1f}, "
            f"{f['test_rows']} test rows); search {f['search_s']:.0f} s, {f['model_calls']} model calls; "
            f"winner: {f['winner']} [{f['winner_mode']}]"
        )
    headline = dict(figures.get("fpb", {}))
    headline |= {k: v for k, v in figures.items() if k != "fpb"}
    headline["model"] = MODEL
    print(json.dumps(headline))


if __name__ == "__main__":
    main()
