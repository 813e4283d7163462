"""`llmplay templates ...`: list, validate, render, and the version history, from a terminal or CI."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from llmplay import exitcodes
from llmplay.errors import InvalidRequestError
from llmplay.limits import check_number
from llmplay.settings import Settings


def add_template_commands(subparsers) -> None:
    t = subparsers.add_parser("templates", help="prompt templates: list, validate, render, history")
    t.add_argument(
        "--prompts-dir",
        help="the shipped template folder, only read (default ./prompts or $LLMPLAY_PROMPTS_DIR); "
        "restores are written to $LLMPLAY_DATA_DIR/prompts",
    )
    actions = t.add_subparsers(dest="action", required=True)

    actions.add_parser("list", help="list the templates (invalid ones marked)")

    v = actions.add_parser("validate", help="check template files; exit 1 if any is invalid, 2 if none to check")
    v.add_argument("paths", nargs="*", help="files to check (default: every template in the folder)")

    r = actions.add_parser("render", help="print exactly what a model receives")
    r.add_argument("name", help="template name, or a path to a .yaml file")
    r.add_argument("-m", "--model", help="model name (see `llmplay models`)")
    r.add_argument("--var", action="append", default=[], metavar="KEY=VALUE", help="variable value (repeatable)")
    r.add_argument("--var-file", action="append", default=[], metavar="KEY=PATH", help="variable value from a file")
    r.add_argument("--max-new-tokens", default="128", help="for the context-length warning")
    r.add_argument("--json", action="store_true", help="print text, messages, token count and warnings as JSON")

    h = actions.add_parser("history", help="list a template's versions")
    h.add_argument("name")

    d = actions.add_parser("diff", help="unified diff between two versions")
    d.add_argument("name")
    d.add_argument("old", help="version number")
    d.add_argument("new", nargs="?", help="version number (default: current)")

    s = actions.add_parser("restore", help="make an old version current again (recorded as a new version)")
    s.add_argument("name")
    s.add_argument("number", help="version number")
    s.add_argument("--message", default="")


def cmd_templates(args, settings: Settings) -> int:
    from llmplay.templates.library import TemplateLibrary

    library = TemplateLibrary.from_settings(settings, args.prompts_dir)
    handler = {
        "list": _list,
        "validate": _validate,
        "render": _render,
        "history": _history,
        "diff": _diff,
        "restore": _restore,
    }[args.action]
    return handler(args, settings, library)


def _list(args, settings, library) -> int:
    rows = [(s.name, s.task or "?", s.description if s.valid else "INVALID: " + s.problems[0]) for s in library.list()]
    if not rows:
        print(f"No templates in {library.where}")
        return 0
    width = [max(len(r[i]) for r in rows) for i in range(2)]
    for name, task, text in rows:
        print(f"{name.ljust(width[0])}  {task.ljust(width[1])}  {text}")
    return 0


def _validate(args, settings, library) -> int:
    from llmplay.templates.library import validate_files

    paths = [Path(p) for p in args.paths] or [library.path(n) for n in library.names()]
    if not paths:
        print(f"No templates in {library.where}", file=sys.stderr)
        return exitcodes.BAD_INPUT  # nothing was checked: a wrong folder, not an invalid template
    bad = 0
    for path, (_, problems) in validate_files(paths).items():
        if problems:
            bad += 1
            print(f"{path}: invalid")
            for p in problems:
                print(f"  - {p}")
        else:
            print(f"{path}: ok")
    if bad:
        print(f"{bad} of {len(paths)} template(s) invalid", file=sys.stderr)
    return exitcodes.CHECK_FAILED if bad else exitcodes.OK


def _parse_vars(pairs: list[str], files: list[str]) -> dict[str, str]:
    values = {}
    for raw, from_file in [(p, False) for p in pairs] + [(p, True) for p in files]:
        key, sep, value = raw.partition("=")
        if not sep or not key:
            raise InvalidRequestError(f"--var{'-file' if from_file else ''} needs KEY=VALUE; got {raw!r}.")
        values[key] = _read_var_file(key, Path(value)) if from_file else value
    return values


def _read_var_file(key: str, path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InvalidRequestError(f"--var-file {key}={path}: no such file.") from None
    except IsADirectoryError:
        raise InvalidRequestError(f"--var-file {key}={path} is a folder; give a text file.") from None
    except UnicodeDecodeError:
        raise InvalidRequestError(f"--var-file {key}={path} is not UTF-8 text (a binary file?).") from None
    except OSError as exc:
        raise InvalidRequestError(f"--var-file {key}={path}: cannot read it ({exc.strerror or exc}).") from None
    if "\x00" in text:  # NUL bytes decode as UTF-8 but no prompt text holds them
        raise InvalidRequestError(f"--var-file {key}={path} is a binary file, not text.")
    return text


def _render(args, settings, library) -> int:
    from llmplay.engine import Engine, GenerationParams
    from llmplay.templates.model import parse_template
    from llmplay.templates.render import render_for_model

    source = Path(args.name)
    if source.suffix in (".yaml", ".yml") and source.is_file():
        template = parse_template(source.read_text(encoding="utf-8"), str(source))
    else:
        template = library.load(args.name)
    engine = Engine(settings)
    try:
        rendered = render_for_model(
            engine,
            template,
            args.model or settings.default_model,
            _parse_vars(args.var, args.var_file),
            GenerationParams(max_new_tokens=check_number("max_new_tokens", args.max_new_tokens, settings=settings)),
        )
    finally:
        engine.close()
    if args.json:
        keys = ("model", "text", "messages", "token_count", "context_length", "warnings")
        print(json.dumps({k: getattr(rendered, k) for k in keys}, ensure_ascii=False, indent=1))
    else:
        sys.stdout.write(rendered.text)  # exactly the model's input: no added newline
        sys.stdout.flush()
        count = f"{rendered.token_count:,} tokens" if rendered.token_count is not None else "token count unknown"
        print(f"\n[{rendered.model}: {count}, context {rendered.context_length or '?'}]", file=sys.stderr)
    for warning in rendered.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0


def _history(args, settings, library) -> int:
    for version in library.versions(args.name):
        print(version.label())
    return 0


def _diff(args, settings, library) -> int:
    old = check_number("template_version", args.old, label="old version")
    new = check_number("template_version", args.new, label="new version", blank=None)
    print(library.diff(args.name, old, new), end="")
    return 0


def _restore(args, settings, library) -> int:
    number = check_number("template_version", args.number, label="version")
    result = library.restore(args.name, number, message=args.message)
    state = "restored as" if result.created else "already current:"
    print(f"{args.name}: {state} {result.version.label()}")
    return 0
