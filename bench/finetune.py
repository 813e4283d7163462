"""SmolLM2-135M-Instruct + LoRA on 500 Financial PhraseBank AllAgree rows, evaluated greedily through the
financial-sentiment template on 300 held-out rows disjoint from them, as a user of llmplay would do it.

    .venv/bin/python bench/finetune.py [--quick] [--epochs 1] [--batch-size 16] [--lr 5e-4] [--compare-rows 32]

Phases (each in a fresh data dir under /tmp; the converted model cache is shared with the tests):
  base     - the base model on the held-out rows (an evaluation run: greedy, the template, 95% bootstrap CI)
  train    - `python -m llmplay.training.entry CONFIG.yaml` as a child process, as the app starts a job: the rows
             are a saved dataset rendered through the same template; TrainConfig defaults except the data
             (and any flag given here); wall time, training tokens/s, CPU time and the job process's peak RSS
  epochs   - each epoch's checkpoint and the registered version (picked by its label) on the held-out rows
  padding  - the same ``--compare-rows`` rows trained for one epoch with each padding mode (prefix: the shared
             few-shot prefix computed once per batch; pack; pad: plain padded batches of 4 with gradient
             accumulation 4, the same 16 rows per step, since padded batches of 16 need ~14 GB): tokens/s and
             final training loss of each; ``packing_speedup`` = tokens/s of the default mode over ``pad``
The last line printed is one JSON object with the headline figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
MODEL = "smollm2-135m-instruct"
TEMPLATE = "financial-sentiment"
NAME = "fpb-lora"


def make_settings(data_dir: Path):
    from llmplay.settings import Settings

    cache = Path(os.environ.get("LLMPLAY_CACHE_DIR") or ROOT / ".cache" / "test-models")
    prompts = data_dir / "prompts"
    if not prompts.exists():
        shutil.copytree(ROOT / "prompts", prompts)
    return Settings(data_dir=data_dir, cache_dir=cache, prompts_dir=prompts)


def save_rows(settings, name: str, rows: list[dict]) -> None:
    import pandas as pd

    from llmplay.datasets import ColumnMapping, save_dataset

    df = pd.DataFrame(rows, columns=["text", "label"], dtype=object)
    save_dataset(settings, name, df, ColumnMapping({"text": "text"}, "label"))


def evaluate(settings, columns: list[tuple[str, str | None, str]]) -> list[dict]:
    """Greedy evaluation of (model, adapter folder, title) columns on the saved 'held-out' dataset."""
    from llmplay.engine import Engine, GenerationParams
    from llmplay.evaluation.config import ColumnConfig, MetricConfig, RunConfig
    from llmplay.evaluation.results import get_run
    from llmplay.evaluation.runner import EvalRunner
    from llmplay.templates.library import TemplateLibrary

    engine = Engine(settings)
    runner = EvalRunner(engine, TemplateLibrary(settings.prompts_dir, settings.db_path))
    params = GenerationParams(max_new_tokens=4)
    cols = tuple(
        ColumnConfig(TEMPLATE, model, adapter=adapter, params=params, mode="generate", label=title)
        for model, adapter, title in columns
    )
    config = RunConfig(dataset="held-out", columns=cols, metrics=(MetricConfig("accuracy"), MetricConfig("macro_f1")))
    started = time.perf_counter()
    info = get_run(settings, runner.run(config))
    wall = time.perf_counter() - started
    engine.close()
    out = []
    for col in info.summary["columns"]:
        acc = col["metrics"]["accuracy"]
        out.append(
            {
                "column": col.get("label") or col.get("title"),
                "accuracy": round(acc["score"], 4),
                "ci": [round(acc["low"], 4), round(acc["high"], 4)],
                "macro_f1": round(col["metrics"]["macro_f1"]["score"], 4),
                "unparseable": col.get("unparseable"),
                "eval_s": round(wall / len(cols), 1),
            }
        )
    return out


def run_job(settings, config: dict, log: Path) -> dict:
    """One training job in a child process; its summary line plus wall, CPU time and peak RSS."""
    import yaml

    from llmplay.training.jobs import settings_env

    path = settings.data_dir / f"{config['name']}.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    env = {**os.environ, **settings_env(settings, settings.prompts_dir), "TOKENIZERS_PARALLELISM": "false"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    with open(log, "ab") as out:
        code = subprocess.call(
            [sys.executable, "-m", "llmplay.training.entry", str(path)], stdout=out, stderr=out, env=env
        )
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    lines = [
        line for line in log.read_text(encoding="utf-8", errors="replace").splitlines() if line.startswith('{"job"')
    ]
    if code != 0 or not lines:
        sys.exit(f"training job failed (exit {code}); see {log}")
    summary = json.loads(lines[-1])
    summary["job_wall_s"] = round(wall, 1)
    summary["cpu_s"] = round(after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, 1)
    return summary


def epoch_checkpoints(settings, job_id: int) -> list[tuple[int, Path]]:
    folder = settings.data_dir / "training" / "jobs" / str(job_id) / "checkpoints"
    found = []
    for ckpt in sorted(folder.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1])):
        state = json.loads((ckpt / "trainer_state.json").read_text())
        found.append((round(state.get("epoch") or 0, 2), ckpt))
    return found


def compare_padding(work: Path, rows: list[dict], base: dict, modes: list[str]) -> dict:
    from llmplay.training.defaults import batch_size

    out = {}
    for mode in modes:
        settings = make_settings(work / f"pad-{mode}")
        save_rows(settings, "fpb-train", rows)
        config = {**base, "name": f"cmp-{mode}", "padding": mode, "epochs": 1, "save_steps": 10**6, "logging_steps": 1}
        if mode in ("pad", "pack"):  # 16 rows of ~600 tokens in one padded batch need ~14 GB: same rows per step
            rows_per_step = base.get("batch_size") or batch_size(len(rows))  # the scaled default
            config.update(batch_size=4, grad_accum=max(1, rows_per_step // 4))
        summary = run_job(settings, config, work / f"pad-{mode}.log")
        m = summary["metrics"]
        out[mode] = {
            "tokens_per_s": m["train_tokens_per_s"],
            "train_s": summary["train_s"],
            "cpu_s": summary["cpu_s"],
            "final_loss": _last_train_loss(settings, summary["job"]),
            "mean_loss": m["train_loss"],
            "peak_rss_mb": summary["peak_rss_mb"],
        }
        print(f"padding {mode}: {out[mode]}", flush=True)
    return out


def _last_train_loss(settings, job_id: int) -> float | None:
    from llmplay.training import records

    losses = [r["loss"] for r in records.progress(settings.db_path, job_id) if r["loss"] is not None]
    return round(losses[-1], 4) if losses else None


def main() -> None:
    from _data import fpb_split, majority_share

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smoke mode: 48 train / 48 held-out rows, 1 epoch")
    ap.add_argument("--train-rows", type=int, default=500)
    ap.add_argument("--held-out", type=int, default=300)
    ap.add_argument("--epochs", type=float)
    ap.add_argument("--batch-size", type=int)
    ap.add_argument("--lr", type=float)
    ap.add_argument("--lora-r", type=int)
    ap.add_argument("--padding")
    ap.add_argument("--compare-rows", type=int, default=32, help="rows for the padding comparison (0: skip)")
    ap.add_argument("--compare-modes", default="prefix,pad")
    ap.add_argument("--skip-base", action="store_true")
    ap.add_argument("--keep", action="store_true", help="keep the work folder")
    args = ap.parse_args()
    if args.quick:
        args.train_rows, args.held_out, args.compare_rows = 48, 48, min(args.compare_rows, 16)
        args.epochs = args.epochs or 1
    train_rows, held_out = fpb_split(0, args.train_rows, args.held_out)
    work = Path(tempfile.mkdtemp(prefix="llmplay-bench-finetune-"))
    settings = make_settings(work / "main")
    save_rows(settings, "fpb-train", train_rows)
    save_rows(settings, "held-out", held_out)
    job_config = {
        "name": NAME,
        "base_model": MODEL,
        "data": {"source": "dataset", "dataset": "fpb-train", "template": TEMPLATE, "validation_fraction": 0.0},
    }
    for key, value in (("epochs", args.epochs), ("batch_size", args.batch_size), ("learning_rate", args.lr),
                       ("lora_r", args.lora_r), ("padding", args.padding)):  # fmt: skip
        if value is not None:
            job_config[key] = value
    if args.lora_r:
        job_config["lora_alpha"] = 2 * args.lora_r
    try:
        base = None
        if not args.skip_base:
            base = evaluate(settings, [(MODEL, None, "base")])[0]
            print(f"base: {base}", flush=True)
        summary = run_job(settings, job_config, work / "train.log")
        print(f"train: {json.dumps(summary)}", flush=True)
        columns = [(MODEL, str(ckpt), f"epoch {epoch}") for epoch, ckpt in epoch_checkpoints(settings, summary["job"])]
        columns.append((summary["version"], None, "version"))
        scores = evaluate(settings, columns)
        for s in scores:
            print(f"held-out: {s}", flush=True)
        tuned = scores[-1]
        padding = {}
        if args.compare_rows:
            modes = args.compare_modes.split(",")
            padding = compare_padding(work, train_rows[: args.compare_rows], job_config, modes)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    metrics = summary["metrics"]
    default_mode = job_config.get("padding") or padding and next(iter(padding))
    speedup = None
    if "pad" in padding and default_mode in padding and padding["pad"]["tokens_per_s"]:
        speedup = round(padding[default_mode]["tokens_per_s"] / padding["pad"]["tokens_per_s"], 2)
    headline = {
        "model": MODEL,
        "template": TEMPLATE,
        "train_rows": len(train_rows),
        "held_out_rows": len(held_out),
        "majority_share": round(majority_share(held_out), 4),
        "base_accuracy": base["accuracy"] if base else None,
        "base_ci": base["ci"] if base else None,
        "tuned_accuracy": tuned["accuracy"],
        "tuned_ci": tuned["ci"],
        "tuned_macro_f1": tuned["macro_f1"],
        "gain_points": round(100 * (tuned["accuracy"] - base["accuracy"]), 1) if base else None,
        "train_s": summary["train_s"],
        "job_wall_s": summary["job_wall_s"],
        "train_cpu_s": summary["cpu_s"],
        "train_tok_s": metrics["train_tokens_per_s"],
        "train_tokens": metrics["train_tokens"],
        "steps": summary["steps"],
        "peak_rss_mb": summary["peak_rss_mb"],  # the job process's own high-water mark (VmHWM)
        "epoch_accuracy": {s["column"]: s["accuracy"] for s in scores[:-1]},
        "packing_speedup": speedup,
        "padding": padding,
        "config": {k: v for k, v in job_config.items() if k != "data"},
    }
    print(json.dumps(headline))


if __name__ == "__main__":
    main()
