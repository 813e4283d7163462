"""The continual-learning loop on real data, through the code the scheduler runs (llmplay.loop.update.run_update).

    .venv/bin/python bench/feedback_loop.py [--batch 50] [--batches 4] [--quick] [--skip-no-replay]

Setup (a fresh data dir): Financial PhraseBank AllAgree split as bench/finetune.py does (bench/_data.fpb_split):
the 300 held-out rows are the line's frozen regression set (gate b); labelers' corrections are training rows:
SmolLM2's own answer (greedy, financial-sentiment template) is the item's output and the gold label is the
labeler's answer, in a label queue (k = 1, so each answer is accepted).
1. Line ``fpb`` (replay on: LineSettings defaults): ``--batches`` batches of ``--batch`` corrections arrive, one
   update after each (the trigger fires at the batch size); then a harmful batch (every label wrong) and one more
   update, which the gates must reject.
2. Line ``fpb-noreplay``: the same good batches, replay and general data off and the probe gate opened wide, so
   every update is promoted: how much the general probe drops without replay.
Per update: status, why, held-out (regression set) accuracy of the candidate with its 95% interval, the probe
(exact match, perplexity) vs the base, wall time (training job + gates). The last line is one JSON object.
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


def make_engine(data_dir: Path):
    from llmplay.engine import Engine
    from llmplay.settings import Settings

    prompts = data_dir / "prompts"
    shutil.copytree(ROOT / "prompts", prompts)
    return Engine(Settings(data_dir=data_dir, cache_dir=ROOT / ".cache" / "test-models", prompts_dir=prompts))


def base_answers(engine, runner, rows: list[dict]) -> list[str]:
    """SmolLM2's greedy answers to ``rows`` (an evaluation run: batched, cached), what labelers correct."""
    import pandas as pd

    from llmplay.engine.types import GenerationParams
    from llmplay.evaluation.config import ColumnConfig, MetricConfig, RunConfig
    from llmplay.evaluation.datasets import ColumnMapping, save_dataset
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


def run_line(engine, jobs, runner, line: str, batches: list, answers: list, harmful: list | None) -> list[dict]:
    from llmplay.loop.update import run_update
    from llmplay.store import connect

    reports = []
    plan = [(b, a, False) for b, a in zip(batches, answers)] + ([(harmful[0], harmful[1], True)] if harmful else [])
    for n, (rows, replies, bad) in enumerate(plan, 1):
        with connect(engine.settings.db_path) as db:
            add_batch(db, f"{line}-q", rows, replies, harmful=bad)
        started = time.perf_counter()
        update = run_update(engine, line, jobs=jobs, runner=runner, trigger="bench")
        wall = time.perf_counter() - started
        if update is None:
            raise SystemExit(f"{line}: no update started after batch {n} (trigger did not fire)")
        gates = {g["gate"]: g for g in update.gates}
        regression = gates.get("regression", {})
        report = {
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
            "feedback_gate": {k: gates.get("feedback", {}).get(k) for k in ("baseline", "candidate", "difference")},
            "probe_task": {k: gates.get("probe_task", {}).get(k) for k in ("baseline", "candidate", "difference")},
            "probe_ppl": {k: gates.get("probe_perplexity", {}).get(k) for k in ("baseline", "candidate", "difference")},
            "wall_s": round(wall, 1),
        }
        print(json.dumps(report), flush=True)
        reports.append(report)
    return reports


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=50)
    parser.add_argument("--batches", type=int, default=4)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="2 batches of 12, 40 regression rows: checks the script")
    parser.add_argument("--skip-no-replay", action="store_true")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a line setting for both lines")
    args = parser.parse_args()
    require(FPB)
    import pandas as pd
    import yaml

    from llmplay.evaluation.datasets import ColumnMapping, save_dataset
    from llmplay.evaluation.runner import EvalRunner
    from llmplay.feedback import store
    from llmplay.loop import lines
    from llmplay.store import connect
    from llmplay.training.jobs import JobRunner

    if args.quick:
        args.batch, args.batches = 12, 2
    train, held = fpb_split(args.seed)
    held = held[:40] if args.quick else held
    needed = args.batch * (args.batches + 1)
    batches = [train[i * args.batch : (i + 1) * args.batch] for i in range(args.batches + 1)]
    assert needed <= len(train)
    extra = {k: yaml.safe_load(v) for k, v in (pair.split("=", 1) for pair in args.set)}
    out: dict = {"model": MODEL, "batch": args.batch, "batches": args.batches, "settings": extra}
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
        common |= extra
        with connect(engine.settings.db_path) as db:
            for name, settings in (
                ("fpb", common | {"queues": ["fpb-q"]}),
                ("fpb-noreplay", common | {"queues": ["fpb-noreplay-q"], "replay_ratio": 0.0, "general_ratio": 0.0,
                                           "probe_task_margin": 1.0, "probe_ppl_margin": 10.0}),
            ):  # fmt: skip
                store.create_queue(db, f"{name}-q", "label", labels=list(FPB_LABELS), user="bench")
                lines.create_line(db, name, MODEL, TEMPLATE, settings=settings, user="bench")
        try:
            good = batches[: args.batches]
            reports = run_line(
                engine, jobs, runner, "fpb", good, per_batch[: args.batches], (batches[-1], per_batch[-1])
            )
            no_replay = [] if args.skip_no_replay else run_line(
                engine, jobs, runner, "fpb-noreplay", good, per_batch[: args.batches], None
            )  # fmt: skip
        finally:
            jobs.close()
    first = reports[0]["regression"].get("active", [None])[0]
    promoted = [r for r in reports if r["status"] == "promoted"]
    good_reports = [r for r in reports if not r["harmful"]]
    final = next((r["regression"]["candidate"][0] for r in reversed(good_reports) if r["status"] == "promoted"), first)

    def probe_ok(r: dict) -> bool:
        task, ppl = r["probe_task"], r["probe_ppl"]
        return task["difference"] is not None and task["difference"] >= -0.02 and ppl["difference"] <= 0.05

    out |= {
        "base_accuracy": first,
        "final_accuracy": final,
        "gain_points": round((final - first) * 100, 1) if first is not None and final is not None else None,
        "updates": len(reports),
        "promoted": len(promoted),
        "probe_ok_all_promoted": all(probe_ok(r) for r in promoted),
        "harmful_promoted": any(r["harmful"] and r["status"] == "promoted" for r in reports),
        "max_update_s": max(r["wall_s"] for r in reports),
        "per_update": [
            {k: r[k] for k in ("update", "status", "wall_s")} | {"accuracy": r["regression"].get("candidate")}
            for r in reports
        ],
    }
    if no_replay:
        last = no_replay[-1]
        out["probe_drop_no_replay"] = round(-(last["probe_task"]["difference"] or 0) * 100, 1)  # points vs base
        out["ppl_rise_no_replay"] = round((last["probe_ppl"]["difference"] or 0) * 100, 1)  # % vs base
        out["final_accuracy_no_replay"] = last["regression"].get("candidate", [None])[0]
        with_replay = next((r for r in reversed(good_reports) if r["status"] == "promoted"), None)
        if with_replay:
            out["probe_drop_replay"] = round(-(with_replay["probe_task"]["difference"] or 0) * 100, 1)
            out["ppl_rise_replay"] = round((with_replay["probe_ppl"]["difference"] or 0) * 100, 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
