"""The Loop tab: the continual-learning loop of model lines (llmplay/loop/) for an admin.

Pick a line or create one (name, base model, template, feedback queues); change its settings (trigger,
where an update starts from, replay, held-out share, gates, training); read the status line (active version,
candidate, what the trigger waits for, the running update's stage: a timer refreshes it), run an update now,
read the versions timeline with each gate's figures and 95% interval, the forgetting chart (the general probe
per update, candidate vs base), the feedback volume and the events log; promote a rejected candidate by hand or
roll back to any earlier version (one click each, behind an "I am sure" tick); and for a gate's evaluation
run, the paired comparison of the two versions' outputs with the rows that got worse.

No logins yet: the admin names themselves ("Your name"); the name is recorded with every change.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from pathlib import Path

import gradio as gr
import pandas as pd

from llmplay.engine import Engine
from llmplay.errors import LlmplayError
from llmplay.feedback import dashboard
from llmplay.feedback import store as fb
from llmplay.loop import lines as loop_lines
from llmplay.loop import online as online_eval
from llmplay.loop.scheduler import Scheduler, status
from llmplay.loop.update import list_updates, promote_candidate, run_update
from llmplay.models import registry
from llmplay.services import Services
from llmplay.store import connect
from llmplay.templates import TemplateLibrary
from llmplay.ui.access import Guard, declare, declared
from llmplay.ui.tabs.loop import view
from llmplay.ui.template_picks import template_choices

log = logging.getLogger(__name__)
PRIVATE = {"api_visibility": "private"}
BASE_CHOICE = 0  # the rollback picker's value for "the base model"
NO_LINE = "Pick a line, or create one below."


def error(exc: Exception) -> str:
    if isinstance(exc, LlmplayError):
        return f"⚠️ Error: {exc}"
    log.exception("Loop tab handler failed")
    return f"⚠️ Error: {type(exc).__name__}: {exc}"


@dataclass
class LoopView:
    """Everything the tab shows for one line (or an empty tab when there is none)."""

    status: str = NO_LINE  # or the error that kept the line from showing
    queues: list[str] = field(default_factory=list)
    settings: list = field(default_factory=lambda: view.settings_values(loop_lines.LineSettings()))
    timeline: list[list] = field(default_factory=list)
    probe_task: pd.DataFrame = field(default_factory=lambda: view.forgetting_frames([])[0])
    probe_ppl: pd.DataFrame = field(default_factory=lambda: view.forgetting_frames([])[1])
    volume: pd.DataFrame = field(default_factory=lambda: dashboard.volume_long(pd.DataFrame()))
    events: list[list] = field(default_factory=list)
    versions: list[tuple[str, int]] = field(default_factory=list)  # rollback targets
    rejected: list[tuple[str, int]] = field(default_factory=list)  # updates whose candidate can be promoted
    runs: list[tuple[str, int]] = field(default_factory=list)  # gate evaluation runs
    online: pd.DataFrame = field(default_factory=pd.DataFrame)  # live traffic's online scores per version and day
    tasks: pd.DataFrame = field(default_factory=lambda: view.task_matrix([])[0])  # task x update accuracy
    tasks_note: str = view.TASKS_EMPTY
    protection: str = ""  # which protection against forgetting is on, and what it cost


class LoopTab:
    """The tab's handlers: plain values in, plain values out; exceptions never escape."""

    def __init__(self, engine: Engine, library: TemplateLibrary, scheduler: Scheduler | None = None):
        self.engine, self.library, self.scheduler = engine, library, scheduler
        self.threads: dict[str, threading.Thread] = {}  # line -> its "Run an update now" thread

    @property
    def db_path(self) -> Path:
        return self.engine.settings.db_path

    # ---- choices ------------------------------------------------------------------------------------------
    def line_names(self) -> list[str]:
        with connect(self.db_path) as db:
            return [line.name for line in loop_lines.list_lines(db)]

    def base_models(self) -> list[str]:
        return [s.name for s in self.engine.catalog.generative() if s.kind in ("chat", "base")]

    def template_names(self) -> list[str]:
        try:
            return self.library.names()
        except LlmplayError:
            return []

    def queue_names(self) -> list[str]:
        with connect(self.db_path) as db:
            return [q.name for q in fb.list_queues(db)]

    def dataset_names(self) -> list[str]:
        from llmplay.datasets import list_datasets

        return [d.name for d in list_datasets(self.engine.settings)]

    # ---- reading ------------------------------------------------------------------------------------------
    def _labels(self) -> dict[int, str]:
        return {v.id: v.label for v in registry.list_versions(self.db_path, include_deleted=True)}

    def show(self, line_name: str | None) -> LoopView:
        if not line_name:
            return LoopView()
        try:
            with connect(self.db_path) as db:
                line = loop_lines.get_line(db, line_name)
                updates = list_updates(db, line)
                events = loop_lines.events(db, line)
                volume = self._volume(db, line)
            labels = self._labels()
            tasks, ppl = view.forgetting_frames(updates)
            matrix, matrix_note = view.task_matrix(updates)
            return LoopView(
                status=self.status_line(line_name),
                queues=list(line.settings.queues),
                settings=view.settings_values(line.settings),
                timeline=view.timeline_rows(updates, labels),
                probe_task=tasks,
                probe_ppl=ppl,
                volume=volume,
                events=view.event_rows(events, labels),
                versions=self._rollback_choices(line),
                rejected=view.rejected_choices(updates),
                runs=view.run_choices(updates),
                online=_online_frame(self.engine.settings, line.name),
                tasks=matrix,
                tasks_note=matrix_note,
                protection=view.protection_markdown(line.settings, updates),
            )
        except Exception as exc:
            return LoopView(status=error(exc))

    def status_line(self, line_name: str | None) -> str:
        if not line_name:
            return NO_LINE
        try:
            state = {s.name: s for s in status(self.db_path)}  # also marks an update whose process died
            with connect(self.db_path) as db:
                line = loop_lines.get_line(db, line_name)
                running = next((u for u in list_updates(db, line, limit=5) if u.status == "running"), None)
            why = state[line.name].why if line.name in state else ""
            note = ""
            if self.scheduler is not None:
                note = f"checks every {self.scheduler.check_s:g} s"
                if line.name in self.scheduler.last:
                    note += f"; last check: {self.scheduler.last[line.name]}"
            return view.status_markdown(line, self._labels(), why, running, note)
        except Exception as exc:
            return error(exc)

    def _volume(self, db, line) -> pd.DataFrame:
        """Feedback volume of the line's queues (every queue when it learns from its template's items)."""
        known = {q.name for q in fb.list_queues(db, include_archived=True)}
        queues = [q for q in line.settings.queues if q in known] or [None]
        frames = [dashboard.volume(db, q) for q in queues]
        frame = pd.concat(frames).groupby("period", as_index=False)[["items", "responses"]].sum()
        return dashboard.volume_long(frame if len(frame) else pd.DataFrame())

    def _rollback_choices(self, line) -> list[tuple[str, int]]:
        versions = [v for v in registry.list_versions(self.db_path) if v.name == line.name and v.kind == "adapter"]
        return view.rollback_choices(line, [v for v in versions if v.base_model == line.base_model], BASE_CHOICE)

    # ---- writing ------------------------------------------------------------------------------------------
    @staticmethod
    def _user(name: str | None) -> str:
        user = (name or "").strip()
        if not user:
            raise loop_lines.LoopError("Enter your name first: it is recorded with every change to a line.")
        if len(user) > 100:
            raise loop_lines.LoopError("A name has at most 100 characters.")
        return user

    @staticmethod
    def _form(queues, values) -> dict:
        data = view.form_settings(dict(zip(view.FORM_FIELDS, values, strict=True)))
        return data | {"queues": list(queues or [])}

    def create(self, user, name, base_model, template, queues, *values) -> tuple[str, str | None]:
        """A new line with these settings; (message, the new line's name or None)."""
        try:
            with connect(self.db_path) as db:
                line = loop_lines.create_line(
                    db, (name or "").strip(), base_model or "", template or "", user=self._user(user),
                    settings=self._form(queues, values), known_models=self.base_models(),
                    known_templates=self.template_names(),
                )  # fmt: skip
            return f"✓ Created line **{line.name}** ({line.base_model}); the base model is active.", line.name
        except Exception as exc:
            return error(exc), None

    def save_settings(self, user, line_name, queues, *values) -> str:
        try:
            if not line_name:
                raise loop_lines.LoopError(NO_LINE)
            with connect(self.db_path) as db:
                loop_lines.update_settings(db, line_name, self._form(queues, values), user=self._user(user))
            return f"✓ Saved the settings of **{line_name}**."
        except Exception as exc:
            return error(exc)

    def run_now(self, user, line_name) -> str:
        """Start an update of the line in a background thread (the status line follows it)."""
        try:
            user = self._user(user)
            if not line_name:
                raise loop_lines.LoopError(NO_LINE)
            if self.scheduler is None:
                raise loop_lines.LoopError("This app has no loop scheduler, so it cannot train; use `llmplay loop`.")
            running = self.threads.get(line_name)
            if running is not None and running.is_alive():
                return f"ℹ️ An update of **{line_name}** started here is still running."
            with connect(self.db_path) as db:
                loop_lines.get_line(db, line_name)  # a clear message for a line that is gone

            def work() -> None:
                try:
                    s = self.scheduler
                    run_update(
                        s.engine, line_name, jobs=s.jobs, runner=s.runner, trigger="manual", force=True, user=user
                    )
                except Exception:  # stored on the update row by run_update; this is only a safety net
                    log.exception("Manual loop update of %s failed", line_name)

            thread = threading.Thread(target=work, name=f"loop-update-{line_name}", daemon=True)
            self.threads[line_name] = thread
            thread.start()
            return f"▶️ Started an update of **{line_name}**: the status line shows its stage."
        except Exception as exc:
            return error(exc)

    def promote(self, user, line_name, update_id, confirm) -> str:
        try:
            user = self._user(user)
            if update_id in (None, ""):
                raise loop_lines.LoopError("Pick a rejected update whose candidate should become active.")
            if not confirm:
                raise loop_lines.LoopError("Tick 'I am sure' first: promoting changes what every picker serves.")
            with connect(self.db_path) as db:
                if line_name and promote_line(db, int(update_id)) != loop_lines.get_line(db, line_name).id:
                    raise loop_lines.LoopError(f"Update #{update_id} is not an update of line {line_name!r}.")
                line = promote_candidate(db, int(update_id), user=user)
                active = loop_lines.active_label(db, line)
            return f"✓ Promoted update #{update_id}'s candidate: **{line.name}** serves {active} now."
        except Exception as exc:
            return error(exc)

    def rollback(self, user, line_name, version_id, confirm) -> str:
        try:
            user = self._user(user)
            if not line_name:
                raise loop_lines.LoopError(NO_LINE)
            if version_id in (None, ""):
                raise loop_lines.LoopError("Pick the version to roll back to.")
            if not confirm:
                raise loop_lines.LoopError("Tick 'I am sure' first: a rollback changes what every picker serves.")
            target = None if int(version_id) == BASE_CHOICE else int(version_id)
            with connect(self.db_path) as db:
                line = loop_lines.get_line(db, line_name)
                if target == line.active_version_id:
                    raise loop_lines.LoopError("That version is active already.")
                line = loop_lines.set_active(db, line, target, user=user, action="rollback")
                active = loop_lines.active_label(db, line)
            return f"✓ Rolled back: **{line.name}** serves {active} now."
        except Exception as exc:
            return error(exc)

    @declare("admin", "see model lines", read=True)
    def compare_run(self, run_id) -> tuple[str, list[list]]:
        """A gate run's paired comparison (candidate - baseline) and the rows where the candidate did worse."""
        from llmplay.evaluation.results import compare_columns, load_results

        try:
            if run_id in (None, ""):
                return "", []
            results = load_results(self.engine.settings, int(run_id))
            metric = next(iter(results.info.metrics), None)
            if metric is None or len(results.titles) < 2:
                raise loop_lines.LoopError(f"Run #{run_id} has no scored baseline and candidate to compare.")
            cmp = compare_columns(results, 0, 1, metric)
            rows = view.regressed_rows(results, cmp.difference.worse, metric)
            text = f"{cmp.describe()}\n\nOpen run **#{run_id}** in the Evaluate tab to read every row."
            return text, rows
        except Exception as exc:
            return error(exc), []


def promote_line(db, update_id: int) -> int:
    """The line id of an update (so a promotion picked under one line cannot move another)."""
    row = db.execute("select line_id from loop_updates where id = ?", [update_id]).fetchone()
    if row is None:
        raise loop_lines.LoopError(f"There is no update #{update_id}.")
    return row[0]


# ---- layout -----------------------------------------------------------------------------------------------
@dataclass
class LoopHandle:
    tab: LoopTab
    pickers: tuple  # model dropdowns the app's picker refresh must leave alone (the base model: catalog only)


def _form_components(tab: LoopTab) -> list:
    """The settings inputs, in loop_view.FORM_FIELDS order."""
    d = loop_lines.LineSettings()
    with gr.Row():
        min_rows = gr.Number(d.min_new_rows, label="Trigger: new accepted rows (0 = off)", precision=0)
        interval = gr.Number(d.interval_minutes, label="Trigger: every N minutes (0 = off)", precision=0)
        start_from = gr.Radio(
            list(loop_lines.START_FROM),
            value=d.start_from,
            label="An update starts from",
            info="active: continue its adapter · base: a fresh adapter · stacked: a new adapter on the frozen one",
        )
    with gr.Row():
        replay = gr.Number(d.replay_ratio, label="Replay of earlier feedback (share of new rows)")
        general = gr.Number(d.general_ratio, label="General instructions (share of new rows)")
        heldout = gr.Number(d.heldout_fraction, label="Held-out share (gate a; never trained on)")
    with gr.Row():
        gain = gr.Number(d.feedback_min_gain, label="(a) minimum gain on held-out feedback")
        # Custom values: a stored setting may name a dataset deleted since, or a pinned template "name@vN".
        dataset = gr.Dropdown(_dataset_choices(tab), value="", label="(b) regression dataset", allow_custom_value=True)
        template = gr.Dropdown(
            _template_choices(tab), value="", label="(b) regression template", allow_custom_value=True
        )
        margin = gr.Number(d.regression_margin, label="(b) allowed drop")
    with gr.Row():
        task_margin = gr.Number(d.probe_task_margin, label="(c) probe: allowed accuracy drop vs base")
        ppl_margin = gr.Number(d.probe_ppl_margin, label="(c) probe: allowed perplexity rise (relative)")
    with gr.Row():
        method = gr.Radio(["lora", "dora", "adalora"], value=d.method, label="Training method")
        epochs = gr.Number(d.epochs, label="Epochs")
        lr = gr.Number(d.learning_rate, label="Learning rate")
        batch = gr.Number(d.batch_size, label="Batch size", precision=0)
    form = [min_rows, interval, start_from, replay, general, heldout, gain, dataset, template, margin]
    return [*form, task_margin, ppl_margin, method, epochs, lr, batch]


def _dataset_choices(tab: LoopTab) -> list[tuple[str, str]]:
    return [("(none)", ""), *((n, n) for n in tab.dataset_names())]


def _template_choices(tab: LoopTab) -> list[tuple[str, str]]:
    return template_choices(tab.library, "(the line's template)")


def _with_choices(tab: LoopTab, values: list) -> list:
    """The form's values, the two dataset / template pickers with their current choices."""
    out = list(values)
    i, j = view.FORM_FIELDS.index("regression_dataset"), view.FORM_FIELDS.index("regression_template")
    out[i] = gr.Dropdown(choices=_dataset_choices(tab), value=out[i])
    out[j] = gr.Dropdown(choices=_template_choices(tab), value=out[j])
    return out


def _tick(tab: LoopTab, name: str | None) -> tuple[str, list, str]:
    """The status line, the timeline and its empty-state note, as a running update moves them."""
    rows = tab.show(name).timeline if name else []
    return tab.status_line(name), rows, view.empty_note(name, bool(rows))


def build_loop_tab(services: Services, demo: gr.Blocks):
    """Lay out the tab inside the current Blocks context and wire its events."""
    engine = services.engine
    tab = LoopTab(engine, services.templates, services.scheduler)
    with gr.Row():
        user = gr.Textbox("", label="Your name (recorded with every change)", max_lines=1, elem_id="loop-user")
        line = gr.Dropdown(tab.line_names(), value=None, label="Model line", elem_id="loop-line")
        refresh = gr.Button("Refresh", size="sm", elem_id="loop-refresh")
    status_md = gr.Markdown(NO_LINE, elem_id="loop-status")
    message = gr.Markdown(elem_id="loop-message")
    with gr.Accordion("Create a line", open=False):
        with gr.Row():
            new_name = gr.Textbox(label="Name", placeholder="letters, digits, . _ -", elem_id="loop-new-name")
            bases = tab.base_models()
            new_base = gr.Dropdown(bases, value=bases[0] if bases else None, label="Base model")
            new_template = gr.Dropdown(
                template_choices(tab.library), value=None, label="Template (the line's task)", allow_custom_value=True
            )
        create = gr.Button("Create line", elem_id="loop-create")
    queues = gr.Dropdown(
        tab.queue_names(), value=[], multiselect=True, label="Feedback queues (none: items of the line's template)"
    )
    with gr.Accordion("Settings: trigger, replay, gates, training", open=False):
        protection = gr.Markdown("", elem_id="loop-protection")
        form = _form_components(tab)
        save = gr.Button("Save settings", elem_id="loop-save")
    run_now = gr.Button("Run an update now", variant="primary", elem_id="loop-run-now")
    empty = gr.Markdown(view.empty_note(None, False), elem_id="loop-empty")
    timeline = gr.Dataframe(
        headers=view.TIMELINE_HEADERS,
        interactive=False,
        wrap=True,
        label="Versions timeline",
        elem_id="loop-timeline",
        column_widths=view.TIMELINE_WIDTHS,
    )
    # Plots start with no value: one built on an empty frame with a colour column draws no lines once filled
    # (Gradio 6), and an empty frame is sent as None for the same reason. An empty plot is hidden; its heading
    # says what fills it in.
    headings, plots = [], []
    with gr.Row():
        for chart, x, y in (
            ("probe_task", "update", "value"),
            ("probe_ppl", "update", "value"),
            ("volume", "period", "count"),
        ):
            with gr.Column(min_width=240):
                headings.append(gr.Markdown(view.chart_heading(chart, None, True), elem_id=f"loop-{chart}-title"))
                plots.append(gr.LinePlot(None, x=x, y=y, color="series", show_label=False, height=240, visible=False))
    probe_task, probe_ppl, volume = plots
    with gr.Row():
        with gr.Column():
            rejected = gr.Dropdown(
                [],
                value=None,
                label="Rejected update to promote by hand",
                info="Offered once an update's candidate failed a gate (see the timeline).",
                elem_id="loop-promote-update",
            )
            promote_sure = gr.Checkbox(False, label="I am sure", elem_id="loop-promote-confirm")
            promote = gr.Button("Promote its candidate", elem_id="loop-promote")
        with gr.Column():
            versions = gr.Dropdown([], value=None, label="Roll back to", elem_id="loop-rollback-version")
            rollback_sure = gr.Checkbox(False, label="I am sure", elem_id="loop-rollback-confirm")
            rollback = gr.Button("Roll back", elem_id="loop-rollback")
    events = gr.Dataframe(
        headers=view.EVENT_HEADERS, interactive=False, wrap=True, label="Events", elem_id="loop-events"
    )
    with gr.Accordion("Tasks the line has learned: each task's score, version after version", open=False):
        tasks_note = gr.Markdown(view.TASKS_EMPTY, elem_id="loop-tasks-note")
        task_matrix = gr.Dataframe(interactive=False, wrap=True, elem_id="loop-tasks")
    with gr.Accordion("Live traffic: online scores per version and day", open=False):
        gr.Markdown(
            "The line's sampled API traces, scored in the background by the checks its `online` setting names "
            "(`llmplay loop set NAME 'online={sample: 0.2, checks: [{check: regex, value: ...}], judge: {}}'`). "
            "A promotion shows as a new version's rows."
        )
        online = gr.Dataframe(interactive=False, wrap=True, elem_id="loop-online")
    with gr.Accordion("Two versions' outputs on a gate's evaluation run", open=False):
        runs = gr.Dropdown([], value=None, label="Gate run", elem_id="loop-compare-run")
        compare_text = gr.Markdown(
            "Pick a gate run (an update's evaluation of the candidate against the version before it) to see what "
            "changed and the rows that got worse.",
            elem_id="loop-compare",
        )
        regressed = gr.Dataframe(
            headers=view.REGRESSED_HEADERS, interactive=False, wrap=True, label="Rows where the candidate did worse"
        )

    view_outputs = [status_md, queues, *form, timeline, probe_task, probe_ppl, volume, events]
    view_outputs += [versions, rejected, runs, promote_sure, rollback_sure, empty, *headings, online]
    view_outputs += [task_matrix, tasks_note, protection]

    @declare("admin", "see model lines", read=True)
    def shown(line_name):
        v = tab.show(line_name)
        frames = {"probe_task": v.probe_task, "probe_ppl": v.probe_ppl, "volume": v.volume}
        failed = v.status.startswith("⚠️")
        return [
            v.status,
            gr.Dropdown(choices=tab.queue_names(), value=v.queues),
            *_with_choices(tab, v.settings),
            v.timeline,
            *(gr.LinePlot(None if f.empty else f, visible=not f.empty) for f in frames.values()),
            v.events,
            gr.Dropdown(choices=v.versions, value=None),
            gr.Dropdown(choices=v.rejected, value=None),
            gr.Dropdown(choices=v.runs, value=None),
            False,
            False,
            view.empty_note(line_name, bool(v.timeline), failed),
            *(view.chart_heading(c, line_name, f.empty) for c, f in frames.items()),
            v.online,
            v.tasks,
            v.tasks_note,
            v.protection,
        ]

    @declare("admin", "see model lines", read=True)
    def lines_dropdown(name, current):
        return gr.Dropdown(choices=tab.line_names(), value=name or current)

    line.change(shown, line, view_outputs, **PRIVATE)
    # A template (or version) saved meanwhile is offered as soon as the picker opens.
    new_template.focus(
        declared("admin", lambda: gr.Dropdown(choices=template_choices(tab.library)), "see model lines", read=True),
        None,
        new_template,
        **PRIVATE,
    )
    refresh.click(lines_dropdown, [gr.State(None), line], line, **PRIVATE).then(shown, line, view_outputs, **PRIVATE)
    created = gr.State(None)
    guard = Guard(engine.settings)  # every loop action is admin's (the tab is hidden from other roles too)
    admin = lambda action, fn: guard("admin", action, fn, user_param="user")  # noqa: E731
    create.click(
        admin("create model lines", tab.create),
        [user, new_name, new_base, new_template, queues, *form],
        [message, created],
        **PRIVATE,
    ).then(lines_dropdown, [created, line], line, **PRIVATE)
    save.click(admin("change loop settings", tab.save_settings), [user, line, queues, *form], message, **PRIVATE).then(
        shown, line, view_outputs, **PRIVATE
    )
    run_now.click(admin("run loop updates", tab.run_now), [user, line], message, **PRIVATE)
    promote.click(
        admin("promote versions", tab.promote), [user, line, rejected, promote_sure], message, **PRIVATE
    ).then(shown, line, view_outputs, **PRIVATE)
    rollback.click(
        admin("roll back versions", tab.rollback), [user, line, versions, rollback_sure], message, **PRIVATE
    ).then(shown, line, view_outputs, **PRIVATE)
    runs.change(tab.compare_run, runs, [compare_text, regressed], **PRIVATE)
    # The status line and timeline follow a running update (cheap: a few SQLite reads).
    timer = gr.Timer(5.0)
    timer.tick(
        declared(
            "admin",
            lambda name: _tick(tab, name),
            "see model lines",
            read=True,
        ),
        line,
        [status_md, timeline, empty],
        show_progress="hidden",
        **PRIVATE,
    )
    demo.load(
        declared("admin", lambda current: lines_dropdown(None, current), "see model lines", read=True),
        line,
        line,
        **PRIVATE,
    )
    return LoopHandle(tab, (new_base,))


def _online_frame(settings, line_name: str) -> pd.DataFrame:
    headers, rows = online_eval.summary_rows(online_eval.summary(settings, line_name))
    return pd.DataFrame(rows, columns=headers)
