"""`llmplay feedback ...`: queues, items, imports, exports, agreement and adjudication from a terminal.

llmplay feedback queues                                   one line per queue (items, complete, accepted, agreement)
llmplay feedback create-queue NAME --task label --labels a,b --k 2 [--guidelines FILE] [--show-reference]
llmplay feedback add --queue NAME --prompt TEXT --output TEXT   one item (the CLI as a source of items)
llmplay feedback import FILE --queue NAME [--user U]      JSONL / CSV items, optionally with responses
llmplay feedback export --queue NAME --format sft|dpo|kto|csv [--out FILE]   stdout without --out
llmplay feedback agreement --queue NAME [--disagreements]
llmplay feedback adjudicate ITEM VALUE --user U           the final answer for an item
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from llmplay import cliargs, exitcodes
from llmplay.errors import InvalidRequestError
from llmplay.settings import Settings


def add_feedback_commands(subparsers) -> None:
    from llmplay.feedback.exports import FORMATS, LAYOUTS
    from llmplay.feedback.store import ACCEPT_RULES, TASKS

    f = subparsers.add_parser("feedback", help="labeling queues: create, add, import, export, agreement")
    actions = f.add_subparsers(dest="action", required=True)

    q = actions.add_parser("queues", help="list the queues")
    q.add_argument("--all", action="store_true", help="include archived queues")
    q.add_argument("--json", action="store_true", help="print the list as JSON")

    c = actions.add_parser("create-queue", help="create a labeling queue")
    c.add_argument("name")
    c.add_argument("--task", required=True, choices=TASKS)
    c.add_argument("--labels", default="", help="comma-separated label set (label tasks)")
    c.add_argument("--k", default="1", help="submitted responses needed per item (default 1)")
    c.add_argument("--guidelines", type=cliargs.path, metavar="FILE", help="Markdown file with the labeling guidelines")
    c.add_argument("--show-reference", action="store_true", help="show items' reference answers to labelers")
    c.add_argument("--rating-min", default="1", help="lowest rating (rating tasks; default 1)")
    c.add_argument("--rating-max", default="5", help="highest rating (rating tasks; default 5)")
    c.add_argument("--accept-rule", choices=ACCEPT_RULES, default="auto", help="which answers count as final")
    c.add_argument("--user", help="who creates it (default anonymous)")

    a = actions.add_parser("add", help="add one item to a queue")
    a.add_argument("--queue", required=True)
    a.add_argument("--prompt", required=True, help="the prompt text, or - to read stdin")
    a.add_argument("--output", help="the model's reply to review")
    a.add_argument("--output-b", help="the second reply (preference queues)")
    a.add_argument("--reference", help="a reference answer")
    a.add_argument("--model", help="the model that wrote --output")
    a.add_argument("--model-b", help="the model that wrote --output-b")
    a.add_argument("--user")

    i = actions.add_parser("import", help="import items (and responses) from a JSONL or CSV file")
    i.add_argument("file", type=cliargs.path)
    i.add_argument("--queue", required=True)
    i.add_argument("--user", help="who imports (and the labeler of responses without one)")

    e = actions.add_parser("export", help="export accepted feedback as training data")
    e.add_argument("--queue", required=True)
    e.add_argument("--format", required=True, choices=FORMATS)
    e.add_argument("--out", type=cliargs.path, help="file to write (default: stdout)")
    e.add_argument("--layout", choices=LAYOUTS, default="auto", help="dpo / kto: conversational or plain strings")
    e.add_argument("--provenance", action="store_true", help="also write <out>.items.json with each row's item")

    g = actions.add_parser("agreement", help="agreement figures for a queue")
    g.add_argument("--queue", required=True)
    g.add_argument("--disagreements", action="store_true", help="also list the items where labelers differ")
    g.add_argument("--json", action="store_true")

    j = actions.add_parser("adjudicate", help="record the final answer for an item")
    j.add_argument("item", type=cliargs.whole("record_id"), help="item id")
    j.add_argument("value", help="the final answer: correction text, rating, label or a / b / tie")
    j.add_argument("--user", required=True, help="the adjudicator")
    j.add_argument("--comment")


def cmd_feedback(args, settings: Settings) -> int:
    from llmplay.store import connect

    handler = {
        "queues": _queues,
        "create-queue": _create_queue,
        "add": _add,
        "import": _import,
        "export": _export,
        "agreement": _agreement,
        "adjudicate": _adjudicate,
    }[args.action]
    with connect(settings.db_path) as db:
        return handler(args, db)


def _int(text: str, flag: str) -> int:
    try:
        return int(str(text).strip())
    except ValueError:
        raise InvalidRequestError(f"{flag} must be a whole number, not {text!r}.") from None


def _table(rows: list[tuple], header: tuple) -> None:
    cells = [tuple("" if c is None else str(c) for c in r) for r in [header, *rows]]
    widths = [max(len(r[n]) for r in cells) for n in range(len(header))]
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip())


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _queues(args, db) -> int:
    from llmplay.feedback.dashboard import queue_summary

    frame = queue_summary(db, include_archived=args.all)
    if args.json:
        print(frame.to_json(orient="records"))
        return exitcodes.OK
    if frame.empty:
        print("No feedback queues yet. Create one: llmplay feedback create-queue NAME --task label --labels a,b")
        return exitcodes.OK
    rows = [
        (r.queue, r.task, r.k, r.items, r.complete, r.accepted, r.labelers, _percent(r.agreement), _number(r.kappa))
        for r in frame.astype(object).where(frame.notna(), None).itertuples()
    ]
    _table(rows, ("QUEUE", "TASK", "K", "ITEMS", "COMPLETE", "ACCEPTED", "LABELERS", "AGREE", "KAPPA"))
    return exitcodes.OK


def _create_queue(args, db) -> int:
    from llmplay.feedback.store import create_queue

    guidelines = ""
    if args.guidelines:
        path = Path(args.guidelines)
        if not path.is_file():
            raise InvalidRequestError(f"Guidelines file {args.guidelines} does not exist.")
        guidelines = path.read_text(encoding="utf-8")
    queue = create_queue(
        db,
        args.name,
        args.task,
        user=args.user,
        guidelines=guidelines,
        labels=[s.strip() for s in args.labels.split(",") if s.strip()],
        k=_int(args.k, "--k"),
        rating_min=_int(args.rating_min, "--rating-min"),
        rating_max=_int(args.rating_max, "--rating-max"),
        show_reference=args.show_reference,
        accept_rule=args.accept_rule,
    )
    labels = f", labels {', '.join(queue.labels)}" if queue.labels else ""
    print(f"Created queue {queue.name} ({queue.task}, k = {queue.k}{labels})")
    return exitcodes.OK


def _add(args, db) -> int:
    from llmplay.feedback.store import add_item

    prompt = sys.stdin.read() if args.prompt == "-" else args.prompt
    item, created = add_item(
        db,
        args.queue,
        user=args.user,
        source="cli",
        prompt=prompt,
        output=args.output,
        output_b=args.output_b,
        reference=args.reference,
        model=args.model,
        model_b=args.model_b,
    )
    print(f"{'Added' if created else 'Already in the queue:'} item {item.id} in {args.queue}")
    return exitcodes.OK


def _import(args, db) -> int:
    from llmplay.feedback.imports import import_file

    path = Path(args.file)
    if not path.is_file():
        raise InvalidRequestError(f"File {args.file} does not exist.")
    print(import_file(db, path, args.queue, args.user).text)
    return exitcodes.OK


def _export(args, db) -> int:
    from llmplay.feedback.exports import export_file, export_rows, to_text

    if args.out:
        try:
            export = export_file(db, args.queue, args.format, args.out, layout=args.layout, provenance=args.provenance)
        except OSError as exc:  # a folder, read-only, not a real folder (/proc/self), no permission
            raise InvalidRequestError(f"Cannot write {args.out}: {exc.strerror or exc}.") from None
        where = args.out
    else:
        if args.provenance:
            raise InvalidRequestError("--provenance writes <out>.items.json: give --out FILE too.")
        export = export_rows(db, args.queue, args.format, layout=args.layout)
        sys.stdout.write(to_text(export))
        where = "stdout"
    skipped = "".join(f", {n} skipped ({why})" for why, n in export.skipped.items())
    layout = f", {export.layout}" if args.format in ("dpo", "kto") else ""
    print(f"Exported {len(export.rows)} {args.format} row(s){layout} to {where}{skipped}", file=sys.stderr)
    return exitcodes.OK


def _agreement(args, db) -> int:
    from dataclasses import asdict

    from llmplay.feedback.agreement import disagreements, queue_agreement

    a = queue_agreement(db, args.queue)
    found = disagreements(db, args.queue) if args.disagreements else []
    if args.json:
        out = asdict(a)
        if args.disagreements:
            out["disagreements"] = [
                {
                    "item_id": d.item.id,
                    "values": d.values,
                    "adjudicated": d.adjudication.value if d.adjudication else None,
                }
                for d in found
            ]
        print(json.dumps(out, ensure_ascii=False, default=str))
        return exitcodes.OK
    print(f"Queue {a.queue} ({a.task}, k = {a.k}): {a.labelers_count} labeler(s), {a.items_compared} item(s) compared")
    print(f"  percent agreement   {_percent(a.percent_agreement)}   (pairwise {_percent(a.pairwise_agreement)})")
    if a.cohen_kappa is not None or a.cohen_items:
        print(f"  Cohen's kappa       {_number(a.cohen_kappa)}   on {a.cohen_items} item(s)")
    if a.weighted_kappa is not None:
        print(f"  weighted kappa      {_number(a.weighted_kappa)}   (quadratic)")
    if a.fleiss_kappa is not None or a.fleiss_items:
        print(f"  Fleiss' kappa       {_number(a.fleiss_kappa)}   on {len(a.fleiss_items)} item(s)")
    if a.note:
        print(f"  {a.note}")
    if a.labelers:
        print()
        rows = [
            (s.labeler, s.submitted, s.drafts, s.discarded, s.compared, _percent(s.agreement_with_others))
            for s in a.labelers
        ]
        _table(rows, ("LABELER", "SUBMITTED", "DRAFTS", "DISCARDED", "COMPARED", "AGREES"))
    if args.disagreements:
        print(f"\n{len(found)} item(s) where labelers differ:")
        for d in found:
            values = "; ".join(f"{who}: {json.dumps(v, ensure_ascii=False)[:80]}" for who, v in d.values.items())
            final = f"  -> adjudicated {json.dumps(d.adjudication.value)[:80]}" if d.adjudication else ""
            print(f"  item {d.item.id}: {values}{final}")
    return exitcodes.OK


def _adjudicate(args, db) -> int:
    from llmplay.feedback.store import adjudicate

    result = adjudicate(db, args.item, args.value, adjudicator=args.user, comment=args.comment)
    print(f"Item {result.item_id}: final answer {json.dumps(result.value, ensure_ascii=False)} by {result.adjudicator}")
    return exitcodes.OK
