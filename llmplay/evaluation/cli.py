"""`llmplay eval CONFIG.yaml`: an evaluation run from a terminal or CI, with thresholds and exit codes.

Exit codes (llmplay/exitcodes.py): 0 every threshold passed; 1 a threshold failed; 2 the config or data is
invalid (checked whole before anything runs); 3 the run itself failed, was interrupted, or a column failed in
every cell (e.g. its model or adapter did not load). The config (YAML) looks like::

    name: sentiment-regression
    dataset:                      # a saved dataset's name, a built-in sample's name, or a file:
      file: data/sentiment.csv    #   relative to this config file; saved under `name` (same content: reused)
      name: sentiment-ci
      variables: {text: sentence} #   template variable -> column (default: columns of the same name)
      reference: label
    sample: 50                    # optional: a seeded sample of rows
    templates: [financial-sentiment]
    models: [smollm2-135m-instruct]
    params: {max_new_tokens: 8}   # decoding, for every column
    metrics:
      - name: accuracy
        threshold: 0.6            # every column must reach it
    judge: {model: smollm2-135m-instruct}   # optional LLM-as-judge
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from llmplay import cliargs, exitcodes, yamlsafe
from llmplay.errors import InvalidRequestError, LlmplayError
from llmplay.settings import Settings


def add_eval_commands(subparsers) -> None:
    e = subparsers.add_parser("eval", help="run an evaluation from a YAML config (exit 1 if a threshold fails)")
    e.add_argument("config", type=cliargs.path, help="the run's YAML file")
    e.add_argument(
        "--prompts-dir",
        help="the shipped template folder, read after $LLMPLAY_DATA_DIR/prompts (default ./prompts or "
        "$LLMPLAY_PROMPTS_DIR)",
    )
    e.add_argument("--out", type=cliargs.path, help="folder for results CSV/JSON (default <data dir>/exports/run-<id>)")
    e.add_argument("--json", action="store_true", help="print the summary and threshold checks as JSON")
    e.add_argument("--quiet", action="store_true", help="no progress lines on stderr")


def cmd_eval(args, settings: Settings) -> int:
    from llmplay.engine import Engine
    from llmplay.evaluation.config import RunConfig
    from llmplay.evaluation.results import failure_note, get_run, load_results
    from llmplay.evaluation.runner import EvalRunner
    from llmplay.templates.library import TemplateLibrary

    path = Path(args.config)
    data = _read_config(path)
    data["dataset"] = prepare_dataset(settings, data.get("dataset"), path.parent)
    config = RunConfig.from_dict(data)
    out = Path(args.out) if args.out else None
    if out is not None and out.exists() and not out.is_dir():
        raise InvalidRequestError(f"--out {out} is a file; give a folder for the results.")
    if out is not None:  # before the run, not after it: a folder the system refuses would lose the results
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise InvalidRequestError(f"--out {out}: cannot create the folder ({exc.strerror or exc}).") from None
    engine = Engine(settings)
    library = TemplateLibrary.from_settings(settings, args.prompts_dir)
    runner = EvalRunner(engine, library)

    def show(progress) -> None:
        if not args.quiet:
            print(progress.describe(), file=sys.stderr, flush=True)

    run_id = runner.run(config, on_progress=show)
    info = get_run(settings, run_id)
    results = load_results(settings, run_id)
    out = out or settings.data_dir / "exports" / f"run-{run_id}"
    csv_path, json_path = results.export(out)
    checks = threshold_checks(config, info.summary or {})
    failed = [c for c in checks if not c["passed"]]
    if args.json:
        print(json.dumps({"run_id": run_id, "status": info.status, "summary": info.summary, "checks": checks}))
    else:
        print(format_summary(info))
        for check in checks:
            print(("PASS " if check["passed"] else "FAIL ") + check["message"])
        print(f"Run #{run_id} {info.status} in {info.elapsed_s or 0:.1f} s; results: {csv_path} and {json_path}")
    if info.status != "done":
        print(f"error: run #{run_id} {info.status}: {info.error or ''}", file=sys.stderr)
        return exitcodes.RUN_FAILED
    # A column that never answered did not regress: it did not run (a model or adapter that does not load).
    broken = [c for c in (info.summary or {}).get("columns", []) if c.get("status") == "failed"]
    for col in broken:
        print(f"error: {col['title']}: {failure_note(col)}", file=sys.stderr)
    if broken:
        return exitcodes.RUN_FAILED
    return exitcodes.CHECK_FAILED if failed else exitcodes.OK


def _read_config(path: Path) -> dict:
    return yamlsafe.load_config(path, "the run", "dataset, templates, models, metrics")


def prepare_dataset(settings: Settings, spec, base: Path) -> str:
    """The saved dataset's name for the config's ``dataset``: a name (a built-in sample is installed on first
    use) or {file, name, variables, reference} (read, checked and saved; same content is reused)."""
    from llmplay import datasets as ds

    if isinstance(spec, str):
        if spec in ds.builtin_datasets() and spec not in {d.name for d in ds.list_datasets(settings)}:
            ds.install_builtins(settings)
        return spec
    if not isinstance(spec, dict) or "file" not in spec:
        raise InvalidRequestError("'dataset' must be a dataset name or a mapping with 'file' (and 'name').")
    file = Path(spec["file"])
    file = file if file.is_absolute() else base / file
    if not file.is_file():
        raise InvalidRequestError(f"The dataset file {file} does not exist (paths are relative to the config file).")
    name = spec.get("name") or file.stem.lower().replace(" ", "-")
    table = ds.read_table(file, settings, filename=file.name)
    variables = dict(spec.get("variables") or {})
    mapping = ds.ColumnMapping(variables, spec.get("reference"))
    try:
        ds.save_dataset(settings, name, table.df, mapping, source=file.name)
    except LlmplayError as exc:
        raise InvalidRequestError(str(exc)) from None
    return name


def threshold_checks(config, summary: dict) -> list[dict]:
    """One check per (thresholded metric, column): passed, score, bound and a one-line message."""
    bounds = [
        (m.name, m.threshold, m.max_threshold)
        for m in config.metrics
        if m.threshold is not None or m.max_threshold is not None
    ]
    if config.judge and config.judge.threshold is not None:
        bounds.append(("judge", config.judge.threshold, None))
    checks = []
    for name, low, high in bounds:
        for col in summary.get("columns", []):
            metric = col.get("metrics", {}).get(name)
            score = metric["score"] if metric else None
            passed = score is not None and (low is None or score >= low) and (high is None or score <= high)
            bound = " and ".join(x for x in (low is not None and f">= {low}", high is not None and f"<= {high}") if x)
            shown = "no score" if score is None else f"{score:.4f} [{metric['low']:.4f}, {metric['high']:.4f}]"
            checks.append(
                {
                    "column": col["title"],
                    "metric": name,
                    "score": score,
                    "min": low,
                    "max": high,
                    "passed": passed,
                    "message": f"{col['title']}: {name} = {shown}, required {bound}",
                }
            )
    return checks


def format_summary(info) -> str:
    """A plain-text scoreboard: one line per column, one cell per metric (score [95% CI]), n answered cells
    (the ones scored) and failed cells; a column where every cell failed shows FAILED instead of scores."""
    from llmplay.evaluation.results import failure_note

    summary = info.summary or {}
    names = summary.get("metrics", [])
    header = ["column", *names, "latency_s", "n", "failed"]
    lines = []
    for col in summary.get("columns", []):
        cells = [col["title"]]
        for name in names:
            m = col.get("metrics", {}).get(name)
            dead = "FAILED" if col.get("status") == "failed" else "—"
            cells.append(f"{m['score']:.3f} [{m['low']:.3f}, {m['high']:.3f}]" if m else dead)
        lat = col.get("latency_s")
        cells += [f"{lat['score']:.2f}" if lat else "—", str(col.get("n", 0)), str(col.get("failed", 0))]
        lines.append(cells)
    widths = [max(len(str(r[i])) for r in [header, *lines]) for i in range(len(header))]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    out = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    out += [fmt.format(*r) for r in lines]
    if summary.get("lower_is_better"):
        out.append(f"lower is better: {', '.join(summary['lower_is_better'])}")
    decoded = {col["title"]: col["backend"] for col in summary.get("columns", []) if col.get("backend")}
    if len(set(decoded.values())) == 1:  # what computed the outputs (speed and, in int8, the text depend on it)
        out.append(f"decoded on: {next(iter(decoded.values()))}")
    else:
        out += [f"decoded on: {title}: {backend}" for title, backend in decoded.items()]
    for col in summary.get("columns", []):
        # A metric's lines by group (attack_success · KIND): in the summary beside the metric, not in the table.
        for name, m in col.get("metrics", {}).items():
            if name not in names and m.get("score") is not None:
                out.append(f"{col['title']}: {name} = {m['score']:.3f} [{m['low']:.3f}, {m['high']:.3f}] (n={m['n']})")
        if col.get("failed"):
            out.append(f"note: {col['title']}: {failure_note(col)}")
        for name, problem in col.get("metric_errors", {}).items():
            out.append(f"note: {col['title']}: {name}: {problem}")
    for name, why in summary.get("skipped_metrics", {}).items():
        out.append(f"note: suggested metric {name} skipped: {why}")
    return "\n".join(out)
