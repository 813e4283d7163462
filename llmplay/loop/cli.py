"""`llmplay loop ...`: model lines and their updates from a terminal (and from cron).

llmplay loop create NAME --base MODEL --template T [--set key=value ...]   a new line (the base active)
llmplay loop set NAME key=value ...                      change a line's settings (see loop/lines.py)
llmplay loop status [NAME] [--json]                      lines, active version, what the trigger waits for
llmplay loop run-once NAME [--force]                     run an update now if one is due (--force: regardless)
llmplay loop promote UPDATE_ID --user U                  promote a rejected update's candidate by hand
llmplay loop rollback NAME [--to VERSION_ID] --user U    make an earlier version active again
llmplay loop serve NAME --url URL [--model M] [--lora] [--adapter-root P] [--key-env VAR] | --off
                                                         forward the line's requests to an external engine (vLLM)
"""

from __future__ import annotations

import json

import yaml

from llmplay import cliargs, exitcodes, yamlsafe
from llmplay.errors import LlmplayError
from llmplay.settings import Settings


def add_loop_commands(subparsers) -> None:
    p = subparsers.add_parser("loop", help="continual learning: model lines, updates, promotion, rollback")
    actions = p.add_subparsers(dest="action", required=True)
    c = actions.add_parser("create", help="create a model line")
    c.add_argument("name")
    c.add_argument("--base", required=True, help="catalog name of the base model")
    c.add_argument("--template", required=True, help="the task's template (name or name@vN)")
    c.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a line setting")
    c.add_argument("--user", default="admin")
    s = actions.add_parser("set", help="change line settings")
    s.add_argument("name")
    s.add_argument("pairs", nargs="+", metavar="KEY=VALUE")
    s.add_argument("--user", default="admin")
    st = actions.add_parser("status", help="lines and their triggers")
    st.add_argument("name", nargs="?")
    st.add_argument("--json", action="store_true")
    r = actions.add_parser("run-once", help="run an update if one is due")
    r.add_argument("name")
    r.add_argument("--force", action="store_true", help="run even if the trigger has not fired")
    pr = actions.add_parser("promote", help="promote an update's candidate by hand")
    pr.add_argument("update_id", type=cliargs.whole("record_id"))
    pr.add_argument("--user", required=True)
    rb = actions.add_parser("rollback", help="make an earlier version active")
    rb.add_argument("name")
    rb.add_argument(
        "--to",
        type=cliargs.whole("version_or_base"),
        help="version id (default: the one active before); 0 = the base model",
    )
    rb.add_argument("--user", required=True)
    sv = actions.add_parser("serve", help="serve a line from an external OpenAI-compatible engine (vLLM)")
    sv.add_argument("name")
    sv.add_argument("--url", help="the engine's address, e.g. http://127.0.0.1:8000")
    sv.add_argument("--model", help="the engine's name for the base model (default: the line's base model)")
    sv.add_argument("--lora", action="store_true", help="load each promoted adapter into the engine (vLLM)")
    sv.add_argument("--adapter-root", help="where the engine sees <data>/models/versions, if not at the same path")
    sv.add_argument("--key-env", help="environment variable holding the engine's API key")
    sv.add_argument("--off", action="store_true", help="serve the line with llmplay's own engine again")
    sv.add_argument("--user", default="admin")


def _pairs(pairs: list[str]) -> dict:
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise LlmplayError(f"Settings are KEY=VALUE pairs; got {pair!r}.")
        try:  # numbers and lists as YAML, read by the loader for text users write (depth, aliases, size)
            out[key.strip()] = yamlsafe.load(value) if value.strip() else None
        except yaml.YAMLError as exc:
            problem = getattr(exc, "problem", None) or str(exc)
            raise LlmplayError(f"Settings are KEY=VALUE pairs with a YAML value; {pair[:80]!r}: {problem}.") from None
    return out


def cmd_loop(args, settings: Settings) -> int:
    from llmplay.loop import lines
    from llmplay.loop.update import list_updates, promote_candidate
    from llmplay.store import connect

    if args.action == "run-once":
        return _run_once(args, settings)
    with connect(settings.db_path) as db:
        if args.action == "create":
            from llmplay.engine import Engine
            from llmplay.templates.library import TemplateLibrary

            engine = Engine(settings)
            line = lines.create_line(
                db, args.name, args.base, args.template, user=args.user, settings=_pairs(args.set),
                known_models=engine.catalog.names(), known_templates=TemplateLibrary.from_settings(settings).names(),
            )  # fmt: skip
            print(f"Created line {line.name!r} ({line.base_model}, template {line.template}); base model active.")
        elif args.action == "set":
            line = lines.update_settings(db, args.name, _pairs(args.pairs), user=args.user)
            print(json.dumps(line.settings.to_dict(), indent=2))
        elif args.action == "status":
            from llmplay.loop.scheduler import status

            wanted = [s for s in status(settings.db_path) if args.name in (None, s.name)]
            if args.name and not wanted:
                lines.get_line(db, args.name)  # raises the clear "no such line" message
            out = []
            for s in wanted:
                line = lines.get_line(db, s.name)
                last = list_updates(db, line, limit=1)
                out.append(
                    {
                        "line": line.name,
                        "active": lines.active_label(db, line),
                        "due": s.due,
                        "trigger": s.why,
                        "last_update": None if not last else {"id": last[0].id, "status": last[0].status},
                    }
                )
            if args.json:
                print(json.dumps(out, indent=2))
            for row in [] if args.json else out:
                last = row["last_update"]
                tail = f"; last update #{last['id']} {last['status']}" if last else ""
                print(f"{row['line']}: active {row['active']}; {row['trigger']}{tail}")
        elif args.action == "promote":
            line = promote_candidate(db, args.update_id, user=args.user)
            print(f"Line {line.name!r}: active is now {lines.active_label(db, line)}.")
        elif args.action == "rollback":
            if args.to == 0:  # back to the base model
                line = lines.set_active(db, args.name, None, user=args.user, action="rollback")
            else:
                line = lines.rollback(db, args.name, args.to, user=args.user)
            print(f"Line {line.name!r}: active is now {lines.active_label(db, line)}.")
        elif args.action == "serve":
            _serve(db, args)
    return exitcodes.OK


def _serve(db, args) -> None:
    from llmplay.loop import lines
    from llmplay.models.line_serving import LineServing

    if args.off == bool(args.url):
        raise LlmplayError("Give --url URL (serve the line from that engine) or --off (serve it from llmplay).")
    serving = None
    if args.url:
        serving = LineServing.from_dict(
            {"url": args.url, "model": args.model, "lora": args.lora, "adapter_root": args.adapter_root,
             "key_env": args.key_env}
        )  # fmt: skip
    line = lines.set_serving(db, args.name, serving, user=args.user)
    if serving is None:
        print(f"Line {line.name!r} is served by llmplay again.")
        return
    served = serving.served_name({"name": line.name, "base_model": line.base_model}, _version(db, line))
    print(f"Line {line.name!r} is served by {serving.base_url} (model {served!r}): line:{line.name} goes there.")


def _version(db, line) -> int | None:
    if line.active_version_id is None:
        return None
    return db.execute("select version from model_versions where id = ?", [line.active_version_id]).fetchone()[0]


def _run_once(args, settings: Settings) -> int:
    from llmplay.engine import Engine
    from llmplay.evaluation.runner import EvalRunner
    from llmplay.loop.update import run_update
    from llmplay.training.jobs import JobRunner

    engine = Engine(settings)
    jobs = JobRunner(settings, catalog=engine.catalog)
    try:
        update = run_update(engine, args.name, jobs=jobs, runner=EvalRunner(engine), trigger="cli", force=args.force)
    finally:
        jobs.close()
    if update is None:
        print("No update started: none is due (see `llmplay loop status`), or one is already running.")
        return exitcodes.OK
    print(f"Update #{update.id}: {update.status}")
    for gate in update.gates:
        mark = "pass" if gate["passed"] else "FAIL"
        print(f"  {gate['gate']:<17} {mark}  {gate['reason'] or ''}")
    if update.error:
        print(f"  error: {update.error}")
    codes = {"promoted": exitcodes.OK, "rejected": exitcodes.CHECK_FAILED}
    return codes.get(update.status, exitcodes.RUN_FAILED)
