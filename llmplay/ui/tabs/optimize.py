"""The Optimize tab (admins): search variants of a template for one model on a dataset (llmplay/optimize/), watch
the candidates being scored, and save the winner as a new version once its gain is proven on held-out rows.

The search is a background job of the app (``Services.optimize``): it goes on when the page is closed, a reloaded
page follows it again, and one model runs one search at a time. Handlers never raise: problems come back as the
error line in the status output.

API endpoints (gradio_client and scripts)
- ``/optimize_start``: ``(template, dataset, model, pool, dev, test, seed, minutes, calls, few_shot,
  instruction_edits, answer_modes, max_examples, proposer, retrieved) -> (message, search_id)``: ``test`` 0 = every row
  left over; ``minutes`` / ``calls`` 0 = no limit of that kind; ``answer_modes``: some of generate, likelihood;
  ``proposer``: a catalog model proposing instructions (``""`` = none); ``retrieved``: per-row retrieved examples
  from the pool (optional, default on). ``search_id`` is None when it did not start.
- ``/optimize_progress``: ``(search_id) -> dict``: status, calls_done, calls_planned, elapsed_s, eta_s,
  candidates (best first: id, changed, mode, examples, dev_rows, score, low, high, calls, status), log, result
  (winner, test report, model calls, seconds: the shape of ``llmplay optimize --json``), saved_version, error.
- ``/optimize_cancel``: ``(search_id) -> message``. ``/optimize_save``: ``(search_id) -> message``: the winner as
  the next version of the start template, its lineage (start version, settings, dev and test scores) in the
  version's message.
"""

from __future__ import annotations

import difflib
from dataclasses import asdict

import gradio as gr
import pandas as pd

from llmplay import eta
from llmplay.datasets import list_datasets
from llmplay.errors import InvalidRequestError, LlmplayError
from llmplay.optimize.config import ANSWER_MODES, OptimizeConfig
from llmplay.optimize.jobs import OptimizeJobs, SearchView
from llmplay.services import Services
from llmplay.textdiff import unified_diff_html
from llmplay.ui.access import Guard, declare, needs
from llmplay.ui.common import error_message, format_error
from llmplay.ui.models_panel import default_model, generative_names
from llmplay.ui.template_picks import template_choices

PRIVATE = {"api_visibility": "private"}
PICK = {"allow_custom_value": True}
HEADERS = ["#", "what changed", "mode", "shots", "dev rows", "score", "95% CI", "calls", "status"]
SEARCH_HEADERS = ["id", "status", "template", "model", "dataset", "started", "test gain"]
INTRO = (
    "Search variants of a template (label lists, an output-format line, input before the instruction, "
    "instructions proposed by a model, few-shot examples from your rows, fixed or retrieved per row, generate vs "
    "likelihood) for one model. Candidates are scored on a **dev** split with "
    "successive halving; the best is then scored against the start on a **test** split the search never saw, "
    "with a paired bootstrap interval of the gain. Same search from the shell: `llmplay optimize CONFIG.yaml`."
)


def candidates_frame(rows: list[dict]) -> pd.DataFrame:
    out = []
    for r in rows:
        scored = r.get("score") is not None
        ci = f"{r['low']:.3f} – {r['high']:.3f}" if scored else ""
        score = round(r["score"], 3) if scored else None
        out.append([r["id"], r["changed"], r["mode"], r["examples"], r["dev_rows"], score, ci, r["calls"], r["status"]])
    return pd.DataFrame(out, columns=HEADERS)


def searches_frame(rows: list[dict]) -> pd.DataFrame:
    def gain(g):
        return f"{100 * g['score']:+.1f} pts [{100 * g['low']:+.1f}, {100 * g['high']:+.1f}]" if g else ""

    data = [
        [r["id"], r["status"], r["template"], r["model"], r["dataset"], r["created_at"], gain(r["gain"])] for r in rows
    ]
    return pd.DataFrame(data, columns=SEARCH_HEADERS)


def bar_html(view: SearchView) -> str:
    percent = 100 * min(1.0, view.fraction)
    colour = {"failed": "#dc2626", "cancelled": "#a3a3a3", "interrupted": "#a3a3a3"}.get(view.status, "#6366f1")
    left = f" · {eta.describe(view.eta_s)}" if view.running and view.eta_s is not None else ""
    return (
        f'<div role="progressbar" aria-valuenow="{percent:.0f}" style="height:10px;border-radius:5px;'
        f'background:#e5e7eb;overflow:hidden"><div style="height:100%;width:{percent:.1f}%;background:{colour}">'
        f"</div></div><small class='optimize-progress'>{percent:.0f}% · {view.calls_done}/{view.calls_planned} "
        f"model calls{left}</small>"
    )


def status_text(view: SearchView) -> str:
    icon = {"running": "⏳", "done": "✅", "cancelled": "⏹️", "failed": "⚠️", "interrupted": "⚠️"}[view.status]
    text = f"{icon} Search #{view.id} **{view.status}**: {view.template} · {view.model} · dataset {view.dataset}"
    if view.elapsed_s is not None:
        text += f" · {eta.duration(view.elapsed_s)}"
    if view.error:
        text += f" · {view.error}"
    return text


def result_text(view: SearchView) -> str:
    """The test report in words: what won, the held-out scores, the gain and its interval."""
    result = view.result
    if not result:
        return "" if view.running else "No test report: the search stopped before it."
    test = result.get("test")
    lines = [
        f"**Winner: #{result['winner']}** ({result['winner_changed']}) · {len(result['candidates'])} candidates · "
        f"{result['model_calls']} model calls · search {eta.duration(result['search_s'])} ({result['stopped']})"
    ]
    if test:
        s, w, g = test["start"], test["winner"], test["gain"]
        metric = result["metric"]
        verdict = "the gain is real" if g["low"] > 0 else "the interval includes no gain: keep the start"
        lines.append(
            f"**Test ({g['n']} held-out rows, evaluation run #{test['run_id']})**: {metric} start "
            f"{s['score']:.3f} [{s['low']:.3f}, {s['high']:.3f}] → winner {w['score']:.3f} "
            f"[{w['low']:.3f}, {w['high']:.3f}]; gain **{100 * g['score']:+.1f} points** (95% CI "
            f"{100 * g['low']:+.1f} to {100 * g['high']:+.1f}, paired bootstrap: {verdict}); "
            f"{test['better']} rows better, {test['worse']} worse."
        )
    lines += [f"- note: {n}" for n in result.get("notes", [])]
    if view.saved_version:
        lines.append(f"Saved as **v{view.saved_version}** of the start template.")
    return "\n\n".join(lines)


def diff_html(view: SearchView) -> str:
    if not view.winner_yaml:
        return ""
    diff = difflib.unified_diff(
        view.start_yaml.splitlines(), view.winner_yaml.splitlines(), "start", "winner", lineterm=""
    )
    return unified_diff_html("\n".join(diff))


def _pickers(templates, datasets, models, *values: dict) -> tuple:
    """The four pickers' new choices, each with its value when given (``{"value": v}``)."""
    lists = (templates, datasets, models, [("(none)", ""), *models])
    return tuple(gr.Dropdown(choices=c, **v) for c, v in zip(lists, values))


class OptimizeTab:
    """The handlers (plain methods: tests call them without a browser)."""

    def __init__(self, services: Services):
        self.services, self.settings = services, services.settings
        self.jobs: OptimizeJobs = services.optimize

    def start(
        self, template, dataset, model, pool, dev, test, seed, minutes, calls, few_shot, instruction_edits,
        answer_modes, max_examples, proposer, retrieved=True, user: str = "",
    ) -> tuple[str, int | None]:  # fmt: skip
        try:
            data = {
                "template": template or "",
                "dataset": dataset or "",
                "model": model or "",
                "seed": seed,
                "splits": {"pool": pool, "dev": dev, "test": None if test in (0, None, "") else test},
                "budget": {
                    "minutes": None if minutes in (0, None, "") else minutes,
                    "calls": None if calls in (0, None, "") else calls,
                },
                "search": {
                    "few_shot": bool(few_shot),
                    "retrieved": bool(retrieved) and pool not in (0, None, ""),
                    "instruction_edits": bool(instruction_edits),
                    "answer_modes": list(answer_modes or []),
                    "max_examples": max_examples,
                    "proposer": proposer or None,
                },
            }
            search_id = self.jobs.start(OptimizeConfig.from_dict(data), user=user)
        except Exception as exc:
            return format_error(error_message(exc, "Optimize tab")), None
        return f"⏳ Search #{search_id} started: candidates appear below as they are scored.", search_id

    @declare("view", read=True)
    def progress(self, search_id: int) -> dict:
        try:
            view = self.jobs.view(search_id)
        except LlmplayError as exc:
            return {"error": str(exc)}
        return {k: v for k, v in asdict(view).items() if k not in ("start_yaml", "winner_yaml")}

    @declare("view", read=True)
    def poll(self, search_id) -> tuple:
        """Timer tick / a search picked: status, bar, candidates, log, result, diff; the timer stops at the end."""
        if search_id in (None, ""):
            return "", "", candidates_frame([]), "", "", "", gr.Timer(active=False)
        try:
            view = self.jobs.view(search_id)
        except Exception as exc:
            error = format_error(error_message(exc, "Optimize tab"))
            return error, "", gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.Timer(active=False)
        log = "\n".join(view.log[-40:])
        return (
            status_text(view),
            bar_html(view),
            candidates_frame(view.candidates),
            log,
            result_text(view),
            diff_html(view),
            gr.Timer(active=view.running),
        )

    def cancel(self, search_id) -> str:
        try:
            if search_id in (None, ""):
                raise InvalidRequestError("No search to cancel: start one or pick one first.")
            stopping = self.jobs.cancel(search_id)
        except Exception as exc:
            return format_error(error_message(exc, "Optimize tab"))
        return (
            "⏹️ Cancelling: the search stops after the rows in progress." if stopping else "That search is not running."
        )

    def save(self, search_id, author: str = "") -> str:
        try:
            if search_id in (None, ""):
                raise InvalidRequestError("No search to save from: pick a finished search first.")
            saved = self.jobs.save(search_id, author=author)
        except Exception as exc:
            return format_error(error_message(exc, "Optimize tab"))
        v = saved.version
        return f"✅ Saved **{v.template} v{v.number}**: its message records the search's lineage and scores."

    @declare("view", read=True)
    def searches(self, selected=None) -> tuple[pd.DataFrame, gr.Dropdown]:
        rows = self.jobs.searches()
        choices = [(f"#{r['id']} {r['template']} · {r['model']} ({r['status']})", r["id"]) for r in rows]
        keep = selected if selected in [c[1] for c in choices] else (choices[0][1] if choices else None)
        return searches_frame(rows), gr.Dropdown(choices=choices, value=keep)

    @declare("view", read=True)
    def form(self, search_id) -> tuple:
        """The form as the shown search was started (a search picked from the list)."""
        try:
            c = self.jobs.view(search_id).config
        except Exception:  # nothing to show (no search yet, or a bad id): the form stays as it is
            return tuple(gr.skip() for _ in range(15))
        modes = [m for m in ANSWER_MODES if m in (c.get("answer_modes") or ())]
        return (
            c["template"], c["dataset"], c["model"], c.get("proposer") or "", c["pool"], c["dev"], c["test"] or 0,
            c["seed"], c["budget_minutes"] or 0, c["budget_calls"] or 0, c["few_shot"], c["instruction_edits"],
            modes, c["max_examples"], bool(c.get("retrieved")),
        )  # fmt: skip

    @declare("view", read=True)
    def restore(self) -> tuple:
        """Page load: fresh template, dataset and model choices (saved or added since the page was built), and the
        form as the followed search was started (the running one, else the newest), in one update so that
        neither overwrites the other."""
        models = generative_names(self.services.engine)
        templates = template_choices(self.services.templates)
        datasets = [d.name for d in list_datasets(self.settings)]
        shown = self.attach()[0]
        values = self.form(shown) if shown is not None else ()
        if len(values) != 15 or isinstance(values[0], dict):  # no search to show: choices only
            return (*_pickers(templates, datasets, models, {}, {}, {}, {}), *(gr.skip() for _ in range(11)))
        kept = [{"value": v} for v in values[:4]]
        return (*_pickers(templates, datasets, models, *kept), *values[4:])

    @declare("view", read=True)
    def attach(self) -> tuple:
        """Page load: follow the running search (the newest), else show the newest finished one."""
        active = self.jobs.active()
        if active:
            return active[-1], gr.Timer(active=True)
        rows = self.jobs.searches(limit=1)
        return (rows[0]["id"] if rows else None), gr.Timer(active=False)


def build_optimize_tab(services: Services, demo: gr.Blocks) -> OptimizeTab:
    tab, engine, settings = OptimizeTab(services), services.engine, services.settings
    models = generative_names(engine)
    datasets = [d.name for d in list_datasets(settings)]
    gr.Markdown(INTRO)
    with gr.Row(equal_height=False):
        with gr.Column(scale=3):
            with gr.Row():
                template = gr.Dropdown(
                    template_choices(services.templates), label="Start template (name or name@vN)",
                    elem_id="optimize-template", **PICK,
                )  # fmt: skip
                dataset = gr.Dropdown(
                    datasets, label="Dataset (with a reference column)", elem_id="optimize-dataset", **PICK
                )
                model = gr.Dropdown(
                    models, value=default_model(engine), label="Model", elem_id="optimize-model", **PICK
                )
            with gr.Row():
                pool = gr.Number(
                    100, label="Pool rows (few-shot examples)", precision=0, minimum=0, elem_id="optimize-pool"
                )
                dev = gr.Number(
                    100, label="Dev rows (scored by the search)", precision=0, minimum=10, elem_id="optimize-dev"
                )
                test = gr.Number(
                    0, label="Test rows (0 = every row left)", precision=0, minimum=0, elem_id="optimize-test"
                )
                seed = gr.Number(0, label="Seed", precision=0, minimum=0)
            with gr.Row():
                minutes = gr.Number(20, label="Budget: minutes (0 = none)", minimum=0)
                calls = gr.Number(0, label="Budget: model calls (0 = none)", precision=0, minimum=0)
                max_examples = gr.Number(4, label="Max examples", precision=0, minimum=0, maximum=32)
        with gr.Column(scale=2, min_width=300):
            few_shot = gr.Checkbox(True, label="Few-shot examples from the pool", elem_id="optimize-few-shot")
            retrieved = gr.Checkbox(
                True, label="Retrieved examples (the pool rows nearest each row)", elem_id="optimize-retrieved"
            )
            edits = gr.Checkbox(
                True, label="Instruction edits (labels, output format, order)", elem_id="optimize-edits"
            )
            modes = gr.CheckboxGroup(
                list(ANSWER_MODES), value=list(ANSWER_MODES), label="Answer modes", elem_id="optimize-modes"
            )
            proposer = gr.Dropdown([("(none)", ""), *models], value="", label="Proposer model (optional)", **PICK)
            with gr.Row():
                start = gr.Button("Optimize", variant="primary", elem_id="optimize-start")
                cancel = gr.Button("Cancel", variant="stop", elem_id="optimize-cancel")
    status = gr.Markdown(elem_id="optimize-status")
    bar = gr.HTML(elem_id="optimize-bar")
    search_id = gr.Number(None, visible=False, precision=0)
    table = gr.Dataframe(
        candidates_frame([]), label="Candidates (best first; dev score with 95% interval)", interactive=False,
        wrap=True, max_height=420, elem_id="optimize-candidates",
    )  # fmt: skip
    result = gr.Markdown(elem_id="optimize-result")
    with gr.Accordion("What changed: the winner against the start", open=True):
        diff = gr.HTML(elem_id="optimize-diff")
    with gr.Row():
        save = gr.Button("Save as new version", variant="primary", elem_id="optimize-save", scale=0)
        saved = gr.Markdown(elem_id="optimize-saved")
    with gr.Accordion("Progress log", open=False):
        log = gr.Textbox(lines=8, max_lines=20, interactive=False, show_label=False, elem_id="optimize-log")
    with gr.Accordion("Searches", open=False):
        picked = gr.Dropdown([], label="Show search", elem_id="optimize-pick", **PICK)
        history = gr.Dataframe(headers=SEARCH_HEADERS, interactive=False, max_height=260)
    timer = gr.Timer(1.0, active=False)

    guard = Guard(settings)  # a search spends model time and saves template versions: admin's
    needs("admin", start, cancel, save)
    form = [template, dataset, model, pool, dev, test, seed, minutes, calls, few_shot, edits, modes, max_examples]
    form += [proposer, retrieved]
    shown = [status, bar, table, log, result, diff, timer]

    started = start.click(
        guard("admin", "start prompt searches", tab.start, user_param="user"),
        form,
        [status, search_id],
        api_name="optimize_start",
    )
    started.then(declare("view", read=True)(lambda i: gr.Timer(active=i is not None)), search_id, timer, **PRIVATE)
    started.then(tab.searches, search_id, [history, picked], **PRIVATE)
    timer.tick(tab.poll, search_id, shown, show_progress="hidden", **PRIVATE)
    # a search shown (started, followed after a reload, picked, or just ended): its view, and the list of searches
    search_id.change(tab.poll, search_id, shown, **PRIVATE).then(tab.searches, search_id, [history, picked], **PRIVATE)
    filled = [template, dataset, model, proposer, pool, dev, test, seed, minutes, calls, few_shot, edits, modes]
    filled += [max_examples, retrieved]
    chosen = picked.input(declare("view", read=True)(lambda i: i), picked, search_id, **PRIVATE)
    chosen.then(tab.form, search_id, filled, **PRIVATE)
    cancel.click(guard("admin", "cancel prompt searches", tab.cancel), search_id, status, api_name="optimize_cancel")
    save.click(
        guard("admin", "save optimised templates", tab.save, user_param="author"),
        search_id,
        saved,
        api_name="optimize_save",
    )
    gr.api(tab.progress, api_name="optimize_progress")
    demo.load(tab.attach, None, [search_id, timer], **PRIVATE)
    demo.load(tab.searches, None, [history, picked], **PRIVATE)
    demo.load(tab.restore, None, filled, **PRIVATE)
    return tab
