"""Continual learning over a task sequence: does a line keep its old tasks while it learns new ones?

    .venv/bin/python bench/forgetting.py [--updates 2] [--batch 40] [--slice 60] [--lines noreplay,replay,stacked,olora]
                                         [--olora-weight 0.5] [--quick]

The standard protocol, through the code the scheduler runs (llmplay.loop.update.run_update). One line per protection
learns three tasks in turn from labelers' corrections, ``--updates`` updates per task, ``--batch`` corrections an
update (SmolLM2's own greedy answer is the item's output, the gold answer the labeler's):

1. sentiment: Financial PhraseBank AllAgree through the financial-sentiment template (a label queue);
2. intents: CLINC150's 10 banking intents of the intent-detection template (a label queue);
3. entities: CoNLL-2003 eng.testb, split by document, through ner-extraction ("TYPE: entity" lines; a correction
   queue).

Every task keeps a held-out slice (``--slice`` rows, never trained on). A line's ``tasks`` setting lists the slices of
the tasks it has met, so each update is gated on every earlier task (loop/tasks.py; the current one is measured with
margin 1, not gated: its first update may score below the base), and those gate runs are the measurement: after an
update, a task's accuracy is the candidate's score on its slice when it was promoted, else the active version's. That
gives each line's accuracy matrix (update x task), its average accuracy after the last task, and its backward transfer
(loop/forgetting.py: each earlier task's final score minus its score right after the last update that trained it;
negative = forgotten).

The lines (``--lines``), all on the same rows:
- ``noreplay``: no replay, no general rehearsal, every gate wide open (it promotes whatever it trains);
- ``replay``: llmplay's default line (replay of earlier feedback and general rehearsal, task margins 0.02, one retry
  with twice the replay when a candidate forgot);
- ``stacked``: no replay; each update a fresh adapter on the frozen active version; gates wide open;
- ``olora``: stacked, with O-LoRA's orthogonality penalty (``--olora-weight``); gates wide open.

Per update one JSON line (line, task, update, status, reasons, scores per task, wall seconds); the last line is one
JSON object with ``bwt_noreplay``, ``bwt_default``, ``final_avg_default``, ``final_avg_noreplay``, ``max_update_s`` and
``by_line`` (each line's tasks, matrix, backward transfer per task and mean, final average, newest task's score).
Needs ../shared/datasets (FPB, CLINC150, CoNLL-2003); ``--quick`` (1 update a task, 12 corrections, 20-row slices,
two lines) checks the script in minutes.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from _data import CONLL, DATASETS, FPB, FPB_LABELS, conll_split, fpb_split, require  # noqa: E402
from feedback_loop import make_engine  # noqa: E402

MODEL = "smollm2-135m-instruct"
CLINC = DATASETS / "clinc150" / "data_full.json"
WIDE = {"probe_task_margin": 1.0, "probe_ppl_margin": 10.0, "regression_margin": 1.0}  # gates that pass anything
NO_REPLAY = {"replay_ratio": 0.0, "general_ratio": 0.0}
LINES = {
    "noreplay": NO_REPLAY | WIDE,
    "replay": {},  # LineSettings' defaults
    "stacked": NO_REPLAY | WIDE | {"start_from": "stacked"},
    "olora": NO_REPLAY | WIDE | {"start_from": "stacked"},  # + orthogonal_weight from --olora-weight
}


# ---- the three tasks ---------------------------------------------------------------------------------------------


def entity_lines(tokens: list[str], tags: list[str]) -> str:
    """Gold "TYPE: entity" lines of a BIO-tagged sentence (what ner-extraction asks for), NONE when it has none."""
    lines, current = [], None
    for token, tag in zip(tokens, tags):
        if tag.startswith("B-") or (tag.startswith("I-") and (current is None or current[0] != tag[2:])):
            current = [tag[2:], [token]]
            lines.append(current)
        elif tag.startswith("I-"):
            current[1].append(token)
        else:
            current = None
    return "\n".join(f"{kind}: {' '.join(words)}" for kind, words in lines) or "NONE"


def tasks(seed: int, need: int, slice_rows: int) -> list[dict]:
    """Each task: name, template, queue kind and labels, training rows and held-out slice rows (``input`` = template
    variables, ``gold`` = the labeler's answer), and how its slice is saved (columns, reference)."""
    rng = random.Random(seed)
    train, held = fpb_split(seed, train=need, held_out=slice_rows)
    sentiment = [{"input": {"text": r["text"]}, "gold": r["label"]} for r in train + held]
    intent_labels = (
        "balance", "transfer", "card_declined", "report_lost_card", "freeze_account", "pin_change", "bill_due",
        "pay_bill", "report_fraud", "new_card",
    )  # fmt: skip
    data = json.loads(CLINC.read_text(encoding="utf-8"))
    intents = [
        {"input": {"message": text}, "gold": label}
        for part in ("train", "val", "test")
        for text, label in data[part]
        if label in intent_labels
    ]
    rng.shuffle(intents)
    conll_train, conll_held = conll_split(seed)
    with_entities = lambda rows: [r for r in rows if any(t != "O" for t in r["tags"])]  # noqa: E731
    entities = [
        {"input": {"text": " ".join(r["tokens"])}, "gold": entity_lines(r["tokens"], r["tags"]), "tags": r["tags"]}
        for r in with_entities(conll_train)[:need] + with_entities(conll_held)[:slice_rows]
    ]
    out = [
        {"name": "sentiment", "template": "financial-sentiment", "kind": "label", "labels": list(FPB_LABELS),
         "rows": sentiment, "variable": "text"},
        {"name": "intents", "template": "intent-detection", "kind": "label", "labels": list(intent_labels),
         "rows": intents[: need + slice_rows], "variable": "message"},
        {"name": "entities", "template": "ner-extraction", "kind": "correction", "labels": None,
         "rows": entities, "variable": "text"},
    ]  # fmt: skip
    for task in out:
        rows = task.pop("rows")
        if len(rows) < need + slice_rows:
            sys.exit(f"task {task['name']}: {len(rows)} rows, {need} + {slice_rows} needed")
        task["train"], task["slice"] = rows[:need], rows[need : need + slice_rows]
    return out


def save_slice(settings, task: dict) -> str:
    """The task's held-out slice as a dataset (reference: the label, or the BIO tags for entities)."""
    import pandas as pd

    from llmplay.datasets import ColumnMapping, save_dataset

    var = task["variable"]
    if task["name"] == "entities":
        records = [{var: r["input"][var], "tags": json.dumps(r["tags"])} for r in task["slice"]]
        mapping = ColumnMapping({var: var}, "tags")
    else:
        records = [{var: r["input"][var], "label": r["gold"]} for r in task["slice"]]
        mapping = ColumnMapping({var: var}, "label")
    name = f"task-{task['name']}"
    save_dataset(settings, name, pd.DataFrame(records, dtype=object), mapping, source="bench/forgetting.py")
    return name


def base_answers(engine, runner, task: dict, rows: list[dict]) -> list[str]:
    """SmolLM2's greedy answers to ``rows`` through the task's template (what labelers correct)."""
    import pandas as pd

    from llmplay.datasets import ColumnMapping, save_dataset
    from llmplay.engine.types import GenerationParams
    from llmplay.evaluation.config import ColumnConfig, RunConfig
    from llmplay.evaluation.results import load_results

    var = task["variable"]
    frame = pd.DataFrame([{var: r["input"][var]} for r in rows], dtype=object)
    save_dataset(engine.settings, f"to-correct-{task['name']}", frame, ColumnMapping({var: var}, None))
    column = ColumnConfig(task["template"], MODEL, params=GenerationParams(max_new_tokens=48), mode="generate")
    run_id = runner.run(RunConfig(f"to-correct-{task['name']}", (column,), ()))
    results = load_results(engine.settings, run_id)
    return [results.cells[(r, 0)].text or "" for r in range(len(rows))]


def add_corrections(db, library, task: dict, rows: list[dict], answers: list[str]) -> None:
    """The rows as items of the task's queue (the prompt inference renders, the base's answer), each corrected."""
    from llmplay.feedback import store
    from llmplay.templates import load_template
    from llmplay.templates.render import build_messages

    template, _ = load_template(library, task["template"])
    items = [
        {"source": "bench", "prompt": build_messages(template, r["input"]), "output": a or "(no answer)",
         "input": r["input"], "template": task["template"]}
        for r, a in zip(rows, answers)
    ]  # fmt: skip
    for (item, _), row in zip(store.add_items(db, f"q-{task['name']}", items, user="bench"), rows):
        store.respond(db, item.id, "labeler", row["gold"])


# ---- measuring -----------------------------------------------------------------------------------------------------


def scores_after(update) -> dict[str, float]:
    """Each task's score after ``update``: the candidate's when promoted, else the active version's."""
    side = "candidate" if update.status == "promoted" else "baseline"
    return {g["task"]: g[side] for g in update.gates if g.get("gate") == "task" and g.get(side) is not None}


def line_summary(stages: list[dict], names: list[str]) -> dict:
    from llmplay.loop.forgetting import AccuracyMatrix, average_accuracy, backward_transfer, mean_backward_transfer

    trained = [names.index(s["task"]) for s in stages]
    acc = [tuple(s["scores"].get(t) for t in names) for s in stages]
    out = {"tasks": names, "matrix": [list(row) for row in acc], "statuses": [s["status"] for s in stages]}
    try:
        m = AccuracyMatrix(tuple(names), tuple(f"u{i + 1}" for i in range(len(stages))), tuple(trained), tuple(acc))
    except ValueError as exc:  # an update that failed to measure a task: say so, keep the rest
        return out | {"error": str(exc)}
    mean = mean_backward_transfer(m)
    return out | {
        "bwt_by_task": {t: round(v * 100, 1) for t, v in backward_transfer(m).items()},
        "bwt": round(mean * 100, 1) if mean is not None else None,
        "worst_bwt": round(min(backward_transfer(m).values(), default=0.0) * 100, 1),
        "final_avg": round(average_accuracy(m) * 100, 1),
        "newest_task": round(acc[-1][trained[-1]] * 100, 1),
        "max_update_s": max(s["wall_s"] for s in stages),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=2, help="updates per task")
    parser.add_argument("--batch", type=int, default=40, help="corrections per update")
    parser.add_argument("--slice", type=int, default=60, help="held-out rows per task")
    parser.add_argument("--lines", default="noreplay,replay,stacked,olora")
    parser.add_argument("--olora-weight", type=float, default=0.5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="1 update a task, 12 corrections, 20-row slices")
    args = parser.parse_args()
    require(FPB, CLINC, CONLL)
    if args.quick:
        args.updates, args.batch, args.slice = 1, 12, 20
        args.lines = "noreplay,replay" if args.lines == parser.get_default("lines") else args.lines
    chosen = [name for name in args.lines.split(",") if name]
    unknown = set(chosen) - set(LINES)
    if unknown:
        parser.error(f"unknown lines {sorted(unknown)} (known: {', '.join(LINES)})")

    from llmplay.evaluation.runner import EvalRunner
    from llmplay.feedback import store
    from llmplay.loop import lines
    from llmplay.loop.update import run_update
    from llmplay.store import connect
    from llmplay.training.jobs import JobRunner

    sequence = tasks(args.seed, args.updates * args.batch, args.slice)
    names = [t["name"] for t in sequence]
    out: dict = {"model": MODEL, "tasks": names, "updates_per_task": args.updates, "batch": args.batch}
    out |= {"slice": args.slice, "lines": chosen, "olora_weight": args.olora_weight}
    stages: dict[str, list[dict]] = {line: [] for line in chosen}
    with tempfile.TemporaryDirectory(prefix="llmplay-bench-forgetting-") as tmp:
        engine = make_engine(Path(tmp))
        runner = EvalRunner(engine)
        jobs = JobRunner(engine.settings, catalog=engine.catalog, poll_s=0.5)
        try:
            started = time.perf_counter()
            slices = {t["name"]: save_slice(engine.settings, t) for t in sequence}
            answers = {t["name"]: base_answers(engine, runner, t, t["train"]) for t in sequence}
            out["label_answers_s"] = round(time.perf_counter() - started, 1)
            common = {"min_new_rows": max(1, round(args.batch * 0.6)), "heldout_fraction": 0.0, "max_new_tokens": 48}
            with connect(engine.settings.db_path) as db:
                for t in sequence:
                    store.create_queue(db, f"q-{t['name']}", t["kind"], labels=t["labels"], user="bench")
                for line in chosen:
                    settings = common | LINES[line] | {"queues": []}
                    if line == "olora":
                        settings["orthogonal_weight"] = args.olora_weight
                    lines.create_line(
                        db, f"seq-{line}", MODEL, sequence[0]["template"], settings=settings, user="bench"
                    )
            for k, task in enumerate(sequence):
                met = sequence[: k + 1]
                with connect(engine.settings.db_path) as db:
                    for line in chosen:
                        # An earlier task's margin is the line's regression_margin (0.02 by default, 1 = open on the
                        # WIDE lines). The task being learned is measured, not gated (margin 1): a user adds a task's
                        # slice once the line has learned it, and its first update may score below the base.
                        task_slices = [
                            {"name": t["name"], "dataset": slices[t["name"]], "template": t["template"]}
                            | ({"margin": 1.0} if t is task else {})
                            for t in met
                        ]
                        queues = [f"q-{t['name']}" for t in met]
                        lines.update_settings(db, f"seq-{line}", {"tasks": task_slices, "queues": queues}, user="bench")
                for u in range(args.updates):
                    rows = task["train"][u * args.batch : (u + 1) * args.batch]
                    given = answers[task["name"]][u * args.batch : (u + 1) * args.batch]
                    with connect(engine.settings.db_path) as db:
                        add_corrections(db, runner.library, task, rows, given)
                    for line in chosen:
                        began = time.perf_counter()
                        update = run_update(engine, f"seq-{line}", jobs=jobs, runner=runner, trigger="bench")
                        wall = round(time.perf_counter() - began, 1)
                        if update is None:
                            raise SystemExit(f"{line}: no update ran for {task['name']} batch {u + 1}")
                        stage = {
                            "line": line, "task": task["name"], "update": u + 1, "status": update.status,
                            "reasons": update.reasons, "error": update.error, "trained_rows": len(update.feedback_ids),
                            "replay_rows": len(update.replay_ids), "general_rows": len(update.general_ids),
                            "scores": scores_after(update), "wall_s": wall, "timings": update.timings,
                        }  # fmt: skip
                        print(json.dumps(stage), flush=True)
                        stages[line].append(stage)
        finally:
            jobs.close()
    by_line = {line: line_summary(stages[line], names) for line in chosen}
    out["by_line"] = by_line
    out["max_update_s"] = max(s["wall_s"] for line in chosen for s in stages[line])
    for key, line in (("noreplay", "noreplay"), ("default", "replay")):
        if line in by_line:
            out[f"bwt_{key}"] = by_line[line].get("bwt")
            out[f"worst_bwt_{key}"] = by_line[line].get("worst_bwt")
            out[f"final_avg_{key}"] = by_line[line].get("final_avg")
            out[f"newest_{key}"] = by_line[line].get("newest_task")
    print(json.dumps(out))


if __name__ == "__main__":
    main()
