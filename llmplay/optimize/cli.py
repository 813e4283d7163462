"""`llmplay optimize CONFIG.yaml [--save]`: the prompt search from a terminal (config.py shows the YAML).

Prints each candidate as it is scored (stderr, unless --quiet), then the table of candidates and the test result
(stdout); ``--save`` saves the winner as the start template's next version with its lineage in the message.
Exit codes (llmplay/exitcodes.py): 0 the search finished (a budget stop included); 2 bad input, refused before
any model call; 3 an evaluation run failed or was cancelled; 130 interrupted.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

from llmplay import cliargs, exitcodes, yamlsafe
from llmplay.settings import Settings


def add_optimize_commands(subparsers) -> None:
    o = subparsers.add_parser(
        "optimize", help="search a better prompt on dev rows and measure it on held-out test rows"
    )
    o.add_argument("config", type=cliargs.path, help="the search's YAML file")
    o.add_argument("--save", action="store_true", help="save the winner as the start template's next version")
    o.add_argument(
        "--prompts-dir",
        help="the shipped template folder, read after $LLMPLAY_DATA_DIR/prompts (default ./prompts or "
        "$LLMPLAY_PROMPTS_DIR)",
    )
    o.add_argument("--json", action="store_true", help="print the result as one JSON object")
    o.add_argument("--quiet", action="store_true", help="no progress lines on stderr")


def cmd_optimize(args, settings: Settings) -> int:
    from llmplay.engine import Engine
    from llmplay.evaluation.cli import prepare_dataset
    from llmplay.optimize.config import OptimizeConfig
    from llmplay.optimize.lineage import save_winner
    from llmplay.optimize.search import PromptSearch
    from llmplay.templates.library import TemplateLibrary

    path = Path(args.config)
    data = read_config(path)
    spec = data.get("dataset")
    # The whole config is checked before a file dataset is read and saved.
    config = OptimizeConfig.from_dict({**data, "dataset": "(file)" if isinstance(spec, dict) else spec})
    config = replace(config, dataset=prepare_dataset(settings, spec, path.parent))
    library = TemplateLibrary.from_settings(settings, args.prompts_dir)

    def show(event) -> None:
        if not args.quiet:
            print(f"[{event.elapsed_s:6.1f} s · {event.calls} calls] {event.message}", file=sys.stderr, flush=True)

    result = PromptSearch(Engine(settings), config, library, on_event=show).run()
    saved = None
    if args.save and result.winner.candidate.id != 0:
        saved = save_winner(library, result)
    if args.json:
        print(json.dumps(to_json(result, saved), ensure_ascii=False, default=str))
    else:
        print(format_result(result))
        if args.save:
            print(
                f"saved {saved.version.template} v{saved.version.number}"
                if saved
                else "nothing saved: the start template won"
            )
    if result.test is None:
        print(f"error: the search stopped ({result.stopped}) before the test report", file=sys.stderr)
        return exitcodes.RUN_FAILED
    return exitcodes.OK


def read_config(path: Path) -> dict:
    return yamlsafe.load_config(path, "the search", "template, dataset, model, splits")


def format_result(result) -> str:
    metric = result.metric
    header = ["#", "what changed", "mode", "shots", "dev rows", f"{metric} [95% CI]", "calls", ""]
    lines = []
    for row in result.table():
        score = f"{row['score']:.3f} [{row['low']:.3f}, {row['high']:.3f}]" if row["score"] is not None else "—"
        lines.append(
            [
                str(row["id"]),
                row["changed"],
                row["mode"],
                str(row["examples"]),
                str(row["dev_rows"]),
                score,
                str(row["calls"]),
                row["status"],
            ]
        )
    widths = [max(len(r[i]) for r in [header, *lines]) for i in range(len(header))]
    out = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header, *lines]]
    out.insert(1, "  ".join("-" * w for w in widths))
    p = result.prepared
    out.append(
        f"{len(result.standings)} candidates, {result.calls} model calls, {result.search_s:.1f} s ({result.stopped}); "
        f"splits {p.splits.describe()}"
    )
    out += [f"note: {n}" for n in result.notes]
    t = result.test
    if t is not None:
        out.append(
            f"test ({t.gain.n} held-out rows, run #{t.run_id}): start {metric} {t.start.estimate:.3f} "
            f"[{t.start.low:.3f}, {t.start.high:.3f}], winner #{result.winner.candidate.id} {t.winner.estimate:.3f} "
            f"[{t.winner.low:.3f}, {t.winner.high:.3f}]; gain {t.gain.estimate:+.3f} "
            f"(95% CI {t.gain.low:+.3f} to {t.gain.high:+.3f}), {t.better} rows better, {t.worse} worse"
        )
    return "\n".join(out)


def to_json(result, saved=None) -> dict:
    t = result.test
    iv = lambda i: {"score": i.estimate, "low": i.low, "high": i.high, "n": i.n}  # noqa: E731
    return {
        "metric": result.metric,
        "winner": result.winner.candidate.id,
        "winner_changed": result.winner.candidate.changed,
        "candidates": result.table(),
        "model_calls": result.calls,
        "search_s": round(result.search_s, 2),
        "elapsed_s": round(result.elapsed_s, 2),
        "stopped": result.stopped,
        "notes": result.notes,
        "rungs": result.rungs,
        "test": None
        if t is None
        else {
            "start": iv(t.start),
            "winner": iv(t.winner),
            "gain": iv(t.gain),
            "better": t.better,
            "worse": t.worse,
            "run_id": t.run_id,
        },
        "evaluations": [vars(e) | {"rows": len(e.rows)} for e in result.evaluations],
        "saved": None if saved is None else {"template": saved.version.template, "version": saved.version.number},
    }
