"""Command line: the same core code as the UI, for terminals and CI.

llmplay models                      list the catalog
llmplay models add NAME --hub ID    add a model (also --path, --endpoint)
llmplay generate -m NAME "PROMPT"   print the reply (--json for text, tokens, latency)
llmplay templates list|validate|render   prompt templates (see `llmplay templates -h`)
llmplay eval CONFIG.yaml            run an evaluation; exit 1 when a threshold fails (for CI)
llmplay train CONFIG.yaml           run a fine-tuning job in the foreground (--resume JOB; `train list`)
llmplay versions                    list trained versions
llmplay feedback queues|create-queue|add|import|export|agreement|adjudicate   labeling queues
llmplay loop create|set|status|run-once|promote|rollback   continual learning: model lines and updates
llmplay serve                       start the web app

Every command exits with a code from llmplay/exitcodes.py: 0 ok, 1 a check failed, 2 bad input, 3 the run failed.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import traceback

from llmplay import cliargs, exitcodes
from llmplay.auth.cli import add_users_commands, cmd_users
from llmplay.backup_cli import add_backup_commands, cmd_backup, cmd_restore
from llmplay.errors import LlmplayError
from llmplay.evaluation.cli import add_eval_commands, cmd_eval
from llmplay.feedback.cli import add_feedback_commands, cmd_feedback
from llmplay.limits import MAX_STOP_STRINGS, check_number, check_stop, span
from llmplay.loop.cli import add_loop_commands, cmd_loop
from llmplay.optimize.cli import add_optimize_commands, cmd_optimize
from llmplay.settings import DTYPES, Settings
from llmplay.templates.cli import add_template_commands, cmd_templates
from llmplay.traces_cli import add_traces_commands, cmd_traces
from llmplay.training.cli import add_train_commands, cmd_train, cmd_versions


def _engine(settings: Settings):
    from llmplay.engine import Engine

    return Engine(settings)


def cmd_models(args, settings: Settings) -> int:
    from llmplay.models import sources
    from llmplay.models.catalog import Catalog, ModelSpec

    # With the settings, so user-added entries are checked against the operator's LLMPLAY_ALLOWED_* limits;
    # `models add` itself is the operator's, so what it adds is trusted (see models/access.py).
    catalog = Catalog(settings.models_file, settings=settings)
    if args.action == "add":
        given = [(k, v) for k, v in (("hub", args.hub), ("local", args.path), ("endpoint", args.endpoint)) if v]
        if len(given) != 1:
            raise LlmplayError("Give exactly one of --hub ID, --path FOLDER_OR_GGUF, --endpoint URL.")
        source, location = given[0]
        spec = ModelSpec(
            name=args.name,
            kind=args.kind,
            source=source,
            location=location,
            gguf_file=args.gguf_file,
            api_model=args.api_model,
            api_key_env=args.api_key_env,
            context_length=args.context_length,
        )
        catalog.add(spec, confine=True)  # --path only inside the allowed folders (models/access.py)
        print(f"Added {spec.name} ({spec.kind}, {spec.source}: {spec.location}) to {settings.models_file}")
        return 0
    if args.action == "remove":
        catalog.remove(args.name)
        print(f"Removed {args.name}")
        return 0
    if args.action == "prepare":
        # Convert/cache ahead of time (e.g. at Docker build) so the first request does not wait.
        from llmplay.models.loader import ModelManager

        loaded = ModelManager(settings).get(catalog.get(args.name or settings.default_model), progress=print)
        print(f"{loaded.spec.name} ready in {loaded.load_s:.1f} s ({loaded.folder})")
        return 0

    from llmplay.models.loader import ModelManager

    manager = ModelManager(settings)
    rows = []
    for spec in catalog.specs():
        if spec.source == "endpoint":
            cached = "-"
        elif spec.source == "bundled" and not sources.bundle_installed(spec):
            cached = "package missing (Hub fallback)"
        else:
            state = manager.is_cached(spec)
            cached = "not needed" if state is None else ("yes" if state else "no")
        default = " (default)" if spec.name == settings.default_model else ""
        rows.append((spec.name + default, spec.kind, spec.source, spec.location, cached))
    if args.json:
        keys = ("name", "kind", "source", "location", "cached")
        print(json.dumps([dict(zip(keys, r)) for r in rows], indent=1))
        return 0
    header = ("NAME", "KIND", "SOURCE", "LOCATION", "CACHED")
    widths = [max(len(str(r[i])) for r in [*rows, header]) for i in range(5)]
    for row in [header, *rows]:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
    return 0


def cmd_generate(args, settings: Settings) -> int:
    from llmplay.engine import GenerationParams, GenerationRequest

    prompt = args.prompt if args.prompt != "-" else sys.stdin.read()
    # The flags arrive as text and are read by the same checks as the UI's (llmplay/limits.py).
    default_tokens = min(128, settings.max_new_tokens_limit)
    params = GenerationParams(
        max_new_tokens=check_number("max_new_tokens", args.max_new_tokens, settings=settings, blank=default_tokens),
        temperature=check_number("temperature", args.temperature),
        top_p=check_number("top_p", args.top_p),
        top_k=check_number("top_k", args.top_k),
        repetition_penalty=check_number("repetition_penalty", args.repetition_penalty),
        stop=check_stop(args.stop or []),
        seed=check_number("seed", args.seed, blank=None),
    )
    messages = ([{"role": "system", "content": args.system}] if args.system else []) + [
        {"role": "user", "content": prompt}
    ]
    request = GenerationRequest.of(messages if args.system else prompt, params)
    engine = _engine(settings)
    model = args.model or settings.default_model
    # Bad input (unknown model, empty prompt, a value out of range) exits BAD_INPUT before anything loads;
    # an error result after this point is the model failing: RUN_FAILED.
    engine.provider(model, args.dtype).check_request(request)
    result = None
    # One streamed reply either way, so --json reports the backend the text output would use.
    for event in engine.stream(model, request, dtype=args.dtype, backend=args.backend):
        if event.status:
            print(f"[{event.status}]", file=sys.stderr, flush=True)
        if not args.json:
            print(event.delta, end="", flush=True)
        result = event.result if event.done else result
    if args.json and result is not None:
        print(json.dumps(result.to_dict(), ensure_ascii=False))
    elif not args.json:
        print()
    if result is None or result.error:
        print(f"error: {result.error if result else 'no result'}", file=sys.stderr)
        return exitcodes.RUN_FAILED
    return exitcodes.OK


def cmd_serve(args, settings: Settings) -> int:
    from llmplay import backup_schedule
    from llmplay.ui.app import launch

    backup_schedule.restore_at_start(settings)  # LLMPLAY_BACKUP_DIR: a Space restarted with an empty disk
    with backup_schedule.scheduled_backups(settings):  # a backup every LLMPLAY_BACKUP_INTERVAL_S, and one at shutdown
        launch(_engine(settings))
    return 0


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="llmplay", description="Work with language models hands-on.")
    ap.add_argument("--data-dir", type=cliargs.path, help="data folder (default ./data or $LLMPLAY_DATA_DIR)")
    sub = ap.add_subparsers(dest="command", required=True)

    m = sub.add_parser("models", help="list or add models")
    m.add_argument("action", nargs="?", choices=["list", "add", "remove", "prepare"], default="list")
    m.add_argument("name", nargs="?", help="model name (add/remove/prepare)")
    m.add_argument("--hub", help="Hugging Face Hub id, e.g. HuggingFaceTB/SmolLM2-360M-Instruct")
    m.add_argument("--path", help="local model folder or .gguf file")
    m.add_argument("--endpoint", help="OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1")
    m.add_argument("--kind", choices=["chat", "base"], default="chat")
    m.add_argument("--gguf-file", help="GGUF file inside the folder or Hub repo")
    m.add_argument("--api-model", help="model name the endpoint expects")
    m.add_argument("--api-key-env", help="environment variable holding the endpoint's API key")
    m.add_argument("--context-length", type=cliargs.whole("context_length"))
    m.add_argument("--json", action="store_true", help="print the list as JSON")

    g = sub.add_parser("generate", help="generate a reply")
    g.add_argument("prompt", help="the prompt, or - to read stdin")
    g.add_argument("-m", "--model", help="model name (see `llmplay models`)")
    g.add_argument("--system", help="system message (chat models)")
    g.add_argument("--max-new-tokens", help="1 to the max_new_tokens limit (default 128, or the limit if lower)")
    from llmplay.backend_names import CHOICES as backend_choices

    g.add_argument("--temperature", default="0", help=f"{span('temperature')}; 0 = greedy (default)")
    g.add_argument("--top-p", default="1", help=span("top_p"))
    g.add_argument("--top-k", default="0", help=f"{span('top_k')}; 0 = off")
    g.add_argument("--repetition-penalty", default="1", help=span("repetition_penalty"))
    g.add_argument("--stop", action="append", help=f"stop string (repeatable, at most {MAX_STOP_STRINGS})")
    g.add_argument("--seed", help=f"{span('seed')} (default: random)")
    g.add_argument("--dtype", choices=DTYPES, help="weights dtype for local models (transformers backend)")
    g.add_argument(
        "--backend",
        choices=backend_choices,
        help="how the reply decodes: auto (default: ONNX Runtime int8 where it runs the model, else the fast "
        "decoder), transformers (the reference), fast/<precision> or onnx/<precision>; LLMPLAY_BACKEND sets the "
        "default",
    )
    g.add_argument("--json", action="store_true", help="print text, tokens and latency as JSON")

    add_template_commands(sub)
    add_eval_commands(sub)
    add_train_commands(sub)
    add_feedback_commands(sub)
    add_loop_commands(sub)
    add_optimize_commands(sub)
    add_users_commands(sub)
    add_backup_commands(sub)
    add_traces_commands(sub)
    sub.add_parser("serve", help="start the web app (host/port from GRADIO_SERVER_NAME/PORT)")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        settings = Settings.from_env(data_dir=args.data_dir)
        if args.command == "models" and args.action in ("add", "remove") and not args.name:
            raise LlmplayError(f"`llmplay models {args.action}` needs a model name.")
        handlers = {"models": cmd_models, "generate": cmd_generate, "templates": cmd_templates, "serve": cmd_serve}
        handlers.update(eval=cmd_eval, train=cmd_train, versions=cmd_versions, feedback=cmd_feedback, loop=cmd_loop)
        handlers.update(users=cmd_users, optimize=cmd_optimize)
        handlers.update(backup=cmd_backup, restore=cmd_restore, traces=cmd_traces)
        handler = handlers[args.command]
        return handler(args, settings)
    except LlmplayError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exitcodes.for_error(exc)
    except KeyboardInterrupt:
        return exitcodes.INTERRUPTED
    except Exception as exc:  # a bug: Python's default exit 1 would read as "a check failed"
        traceback.print_exc()
        print(f"error: unexpected {type(exc).__name__}: {exc}", file=sys.stderr)
        return exitcodes.RUN_FAILED


if __name__ == "__main__":
    sys.exit(main())
