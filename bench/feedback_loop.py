"""The continual-learning loop on real data, through the code the scheduler runs (llmplay.loop.update.run_update).

    .venv/bin/python bench/feedback_loop.py [--batch 50] [--batches 4] [--variants replay,noreplay,fresh,stacked]
                                            [--quick] [--set KEY=VALUE ...]

Setup (a fresh data dir): Financial PhraseBank AllAgree split as bench/finetune.py does (bench/_data.fpb_split):
the 300 held-out rows are every line's frozen regression set (gate b); labelers' corrections are training rows:
SmolLM2's own answer (greedy, financial-sentiment template) is the item's output and the gold label is the
labeler's answer, in one label queue (k = 1, so each answer is accepted) that every line learns from. The
held-out share is chosen per item, so all lines train on the same rows and are judged on the same rows.
Batches of ``--batch`` corrections arrive; after each, every line runs one update (the trigger fires at the
batch size). The lines (``--variants``):
- ``replay``: LineSettings defaults (continued training, replay of earlier feedback and general data). After
  the good batches a harmful batch (every label wrong) arrives and it runs one more update, which the gates must
  reject.
- ``noreplay``: replay and general data off, the probe gates opened wide so every update is promoted: how much
  the general probe moves without replay.
- ``fresh``: as ``replay``, but every update trains a fresh adapter on the base (``start_from: base``) instead
  of continuing the active version: which default learns more from the same rows.
- ``stacked``: no replay either, but each update trains a fresh adapter on top of the frozen active version
  (``start_from: stacked``), probe gates opened wide: the other way to forget less, against replay.
Per update: status, why, regression-set accuracy of the candidate with its 95% interval, the probe (exact
match, text perplexity, reply drift) vs the base, wall time (training job + gates). The last line is
one JSON object.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _data import FPB, FPB_LABELS, fpb_split, require  # noqa: E402

MODEL = "smollm2-135m-instruct"
TEMPLATE = "financial-sentiment"
REGRESSION = "fpb-regression"
QUEUE = "fpb-corrections"


def make_engine(data_dir: Path):
    from llmplay.engine import Engine
    from llmplay.settings import Settings

    prompts = data_dir / "prompts"
    shutil.copytree(ROOT / "prompts", prompts)
    return Engine(Settings(data_dir=data_dir, cache_dir=ROOT / ".cache" / "test-models", prompts_dir=prompts))


def base_answers(engine, runner, rows: list[dict]) -> list[str]:
    """SmolLM2's greedy answers to ``rows`` (an evaluation run: batched, cached), what labelers correct."""
    import pandas as pd

    from llmplay.datasets import ColumnMapping, save_dataset
    from llmplay.engine.types import GenerationParams
    from llmplay.evaluation.config import ColumnConfig, MetricConfig, RunConfig
    from llmplay.evaluation.results import load_results

    frame = pd.DataFrame(rows, columns=["text", "label"], dtype=object)
    save_dataset(engine.settings, "to-correct", frame, ColumnMapping({"text": "text"}, "label"))
    column = ColumnConfig(TEMPLATE, MODEL, params=GenerationParams(max_new_tokens=4), mode="generate")
    run_id = runner.run(RunConfig("to-correct", (column,), (MetricConfig("accuracy"),)))
    results = load_results(engine.settings, run_id)
    return [results.cells[(r, 0)].text or "" for r in range(len(rows))]


def add_batch(db, queue: str, rows: list[dict], answers: list[str], *, harmful: bool = False) -> None:
    from llmplay.feedback import store

    items = [
        {"source": "bench", "prompt": r["text"], "output": a, "input": {"text": r["text"]}, "template": TEMPLATE}
        for r, a in zip(rows, answers)
    ]
    for (item, _), row in zip(store.add_items(db, queue, items, user="bench"), rows):
        label = row["label"]
        if harmful:  # a wrong label for every row
            label = FPB_LABELS[(FPB_LABELS.index(label) + 1) % len(FPB_LABELS)]
        store.respond(db, item.id, "labeler", label)


def candidate_interval(settings, run_id: int | None, metric: str = "accuracy") -> dict:
    from llmplay.evaluation.results import load_results
    from llmplay.evaluation.stats import bootstrap_mean

    if run_id is None:
        return {}
    results = load_results(settings, run_id)
    out = {}
    for col, name in ((0, "active"), (1, "candidate")):
        iv = bootstrap_mean(results.column_scores(col, metric))
        out[name] = [round(iv.estimate, 4), round(iv.low, 4), round(iv.high, 4)]
    return out


def update_report(engine, line: str, n: int, bad: bool, update, wall: float) -> dict:
    gates = {g["gate"]: g for g in update.gates}
    regression = gates.get("regression", {})

    def figures(gate: str) -> dict:
        return {k: gates.get(gate, {}).get(k) for k in ("baseline", "candidate", "difference")}

    return {
        "line": line,
        "update": n,
        "harmful": bad,
        "status": update.status,
        "reasons": update.reasons,
        "error": update.error,
        "trained_rows": len(update.feedback_ids),
        "replay_rows": len(update.replay_ids),
        "general_rows": len(update.general_ids),
        "heldout_feedback_rows": len(update.heldout_ids),
        "regression": candidate_interval(engine.settings, regression.get("run_id")),
        "feedback_gate": figures("feedback"),
        "probe_task": figures("probe_task"),
        "probe_ppl": figures("probe_perplexity"),
        "probe_reply": figures("probe_reply"),
        "wall_s": round(wall, 1),
    }


def run_round(engine, jobs, runner, lines: list[str], n: int, bad: bool) -> list[dict]:
    """One update of each line (the batch already arrived)."""
    from llmplay.loop.update import run_update

    reports = []
    for line in lines:
        started = time.perf_counter()
        update = run_update(engine, line, jobs=jobs, runner=runner, trigger="bench")
        wall = time.perf_counter() - started
        if update is None:
            raise SystemExit(f"{line}: no update started after batch {n} (trigger did not fire)")
        report = update_report(engine, line, n, bad, update, wall)
        print(json.dumps(report), flush=True)
        reports.append(report)
    return reports


def last_promoted(reports: list[dict]) -> dict | None:
    return next((r for r in reversed(reports) if r["status"] == "promoted" and not r["harmful"]), None)


def probe_ok(r: dict) -> bool:
    task, ppl, reply = r["probe_task"], r["probe_ppl"], r["probe_reply"]
    return (
        task["difference"] is not None
        and task["difference"] >= -0.02
        and ppl["difference"] <= 0.05
        and reply["difference"] <= 0.05
    )


def drift(r: dict | None) -> dict:
    """A version's probe vs the base: task points lost, text perplexity rise and reply drift (perplexity rise on the
    base's own replies) in %."""
    if r is None:
        return {}
    return {
        "probe_drop": round(-(r["probe_task"]["difference"] or 0) * 100, 1),
        "ppl_rise": round((r["probe_ppl"]["difference"] or 0) * 100, 1),
        "reply_drift": round((r["probe_reply"]["difference"] or 0) * 100, 1),
        "accuracy": r["regression"].get("candidate", [None])[0],
    }


def summary(reports: dict[str, list[dict]], variants: list[str]) -> dict:
    """The headline figures of the run (the bench's last line), from the per-update reports of each line."""
    out: dict = {}
    main_reports = reports["replay"]
    first = main_reports[0]["regression"].get("active", [None])[0]
    promoted = [r for r in main_reports if r["status"] == "promoted"]
    best = last_promoted(main_reports)
    final = best["regression"]["candidate"][0] if best else first
    out |= {
        "base_accuracy": first,
        "final_accuracy": final,
        "gain_points": round((final - first) * 100, 1) if first is not None and final is not None else None,
        "updates": len(main_reports),
        "promoted": len(promoted),
        "probe_ok_all_promoted": all(probe_ok(r) for r in promoted),
        "harmful_promoted": any(r["harmful"] and r["status"] == "promoted" for r in main_reports),
        "max_update_s": max(r["wall_s"] for r in main_reports),
        "per_update": [
            {k: r[k] for k in ("update", "status", "wall_s")} | {"accuracy": r["regression"].get("candidate")}
            for r in main_reports
        ],
    }
    out["replay"] = drift(best)
    for variant in variants[1:]:
        best_v = last_promoted(reports[variant])
        out[variant] = drift(reports[variant][-1]) | {  # drift: its last candidate, promoted or not
            "candidates": [r["regression"].get("candidate", [None])[0] for r in reports[variant]],
            "statuses": [r["status"] for r in reports[variant]],
            "final_accuracy": best_v["regression"]["candidate"][0] if best_v else first,
        }
    if "noreplay" in reports:
        out["probe_drop_no_replay"] = out["noreplay"]["probe_drop"]
        out["reply_drift_no_replay"] = out["noreplay"]["reply_drift"]
    return out


VARIANTS = {
    "replay": {},
    "noreplay": {"replay_ratio": 0.0, "general_ratio": 0.0, "probe_task_margin": 1.0, "probe_ppl_margin": 10.0},
    "fresh": {"start_from": "base"},  # replay as the default line, but a fresh adapter on the base every update
    "stacked": {
        "start_from": "stacked", "replay_ratio": 0.0, "general_ratio": 0.0, "probe_task_margin": 1.0,
        "probe_ppl_margin": 10.0,
    },
}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="2 batches of 12, 40 regression rows: checks the script")
    parser.add_argument("--variants", default="replay,noreplay,fresh,stacked", help="lines to run (replay always runs)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a line setting for all lines")
    args = parser.parse_args()
    require(FPB)
    import pandas as pd
    import yaml

    from llmplay.datasets import ColumnMapping, save_dataset
    from llmplay.evaluation.runner import EvalRunner
    from llmplay.feedback import store
    from llmplay.loop import lines
    from llmplay.store import connect
    from llmplay.training.jobs import JobRunner

    if args.quick:
        args.batch, args.batches = 12, 2
    variants = ["replay"] + [v for v in args.variants.split(",") if v and v != "replay"]
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        parser.error(f"unknown variants {sorted(unknown)} (known: {', '.join(VARIANTS)})")
    train, held = fpb_split(args.seed)
    held = held[:40] if args.quick else held
    needed = args.batch * (args.batches + 1)
    batches = [train[i * args.batch : (i + 1) * args.batch] for i in range(args.batches + 1)]
    assert needed <= len(train)
    extra = {k: yaml.safe_load(v) for k, v in (pair.split("=", 1) for pair in args.set)}
    out: dict = {"model": MODEL, "batch": args.batch, "batches": args.batches, "settings": extra}
    names = {v: "fpb" if v == "replay" else f"fpb-{v}" for v in variants}
    reports: dict[str, list[dict]] = {v: [] for v in variants}
    with tempfile.TemporaryDirectory(prefix="llmplay-bench-loop-") as tmp:
        engine = make_engine(Path(tmp))
        runner = EvalRunner(engine)
        jobs = JobRunner(engine.settings, catalog=engine.catalog, poll_s=0.5)
        frame = pd.DataFrame(held, columns=["text", "label"], dtype=object)
        save_dataset(engine.settings, REGRESSION, frame, ColumnMapping({"text": "text"}, "label"))
        started = time.perf_counter()
        answers = base_answers(engine, runner, [r for b in batches for r in b])
        out["label_answers_s"] = round(time.perf_counter() - started, 1)
        per_batch = [answers[i * args.batch : (i + 1) * args.batch] for i in range(args.batches + 1)]
        common = {"min_new_rows": round(args.batch * 0.6), "regression_dataset": REGRESSION, "max_new_tokens": 4}
        if args.quick:  # 12 rows a batch: enough held out for gate (a) (5 rows) and enough left to train
            common |= {"heldout_fraction": 0.5, "min_new_rows": 2}
        with connect(engine.settings.db_path) as db:
            store.create_queue(db, QUEUE, "label", labels=list(FPB_LABELS), user="bench")
            for variant in variants:
                settings = common | VARIANTS[variant] | extra | {"queues": [QUEUE]}
                lines.create_line(db, names[variant], MODEL, TEMPLATE, settings=settings, user="bench")
        try:
            for n in range(args.batches):
                with connect(engine.settings.db_path) as db:
                    add_batch(db, QUEUE, batches[n], per_batch[n])
                for variant, report in zip(
                    variants, run_round(engine, jobs, runner, list(names.values()), n + 1, False)
                ):
                    reports[variant].append(report)
            with connect(engine.settings.db_path) as db:  # the harmful batch: only the replay line learns from it
                add_batch(db, QUEUE, batches[-1], per_batch[-1], harmful=True)
            reports["replay"] += run_round(engine, jobs, runner, [names["replay"]], args.batches + 1, True)
        finally:
            jobs.close()
    out |= summary(reports, variants)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
