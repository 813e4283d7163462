"""``llmplay traces list|export|scores``: the API's stored requests (llmplay/traces.py) and the online scores of
lines' traces (llmplay/loop/online.py), for people and scripts."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from llmplay import cliargs, exitcodes, traces
from llmplay.errors import LlmplayError
from llmplay.settings import Settings


def add_traces_commands(sub) -> None:
    t = sub.add_parser("traces", help="requests the OpenAI-compatible API answered (newest first)")
    actions = t.add_subparsers(dest="action", required=True)
    for name, text in (("list", "one line per trace"), ("export", "one JSON object per trace (JSONL)")):
        p = actions.add_parser(name, help=text)
        p.add_argument("--model", help="the model as asked or what answered it (a version label, line:NAME)")
        p.add_argument("--user", help="the API key's user")
        p.add_argument("--since", help="ISO time (inclusive)")
        p.add_argument("--until", help="ISO time (exclusive)")
        p.add_argument("--finish-reason", choices=("stop", "length", "error", "cancelled"))
        p.add_argument("--search", help="text in the request or the reply (case-insensitive)")
        p.add_argument("--rating", choices=traces.RATINGS, help="rated up / down through /v1/feedback, or by nobody")
        p.add_argument("--limit", type=cliargs.whole("list_count"), default=100 if name == "list" else 10_000)
        if name == "export":
            p.add_argument("--out", type=cliargs.path, help="write to this file instead of stdout")
    s = actions.add_parser("scores", help="online evaluation scores per line, version and day")
    s.add_argument("--line", help="one line's scores")
    s.add_argument("--since", help="ISO time (inclusive)")
    s.add_argument("--json", action="store_true", help="one JSON object per line, version and day")


def cmd_traces(args, settings: Settings) -> int:
    if args.action == "scores":
        return _scores(args, settings)
    found = traces.list_traces(
        settings,
        model=args.model,
        user=args.user,
        since=args.since,
        until=args.until,
        finish_reason=args.finish_reason,
        search=args.search,
        rating=args.rating,
        limit=args.limit,
    )
    if args.action == "list":
        if not found:
            print("No traces (the OpenAI-compatible API stores one per request: see the README).")
        for t in found:
            reply = " ".join(t.reply.split())[:60]
            print(f"{t.at}  {t.id}  {t.user or '-'}  {t.served}  {t.finish_reason}  {t.completion_tokens} tok  {reply}")
        return exitcodes.OK
    lines = "".join(json.dumps(t.to_dict(), ensure_ascii=False) + "\n" for t in found)
    if args.out:
        try:
            Path(args.out).write_text(lines, encoding="utf-8")
        except OSError as exc:
            raise LlmplayError(f"Cannot write {args.out}: {exc.strerror or exc}.") from None
        print(f"Wrote {len(found)} trace(s) to {args.out}.", file=sys.stderr)
    else:
        sys.stdout.write(lines)
    return exitcodes.OK


def _scores(args, settings: Settings) -> int:
    from llmplay.loop.online import summary, summary_rows

    days = summary(settings, args.line, since=args.since)
    if args.json:
        sys.stdout.write("".join(json.dumps(d.to_dict(), ensure_ascii=False) + "\n" for d in days))
        return exitcodes.OK
    if not days:
        print("No online scores yet: turn them on per line (llmplay loop set NAME 'online={sample: 0.2}').")
        return exitcodes.OK
    headers, rows = summary_rows(days)
    widths = [max(len(str(h)), *(len(_cell(r[i])) for r in rows)) for i, h in enumerate(headers)]
    for row in [headers, *rows]:
        print("  ".join(_cell(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
    return exitcodes.OK


def _cell(value) -> str:
    return "-" if value is None else f"{value:.3f}" if isinstance(value, float) else str(value)
