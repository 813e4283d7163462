"""Assemble the web app from its tabs (one module per tab) and serve it.

Each tab module exposes ``build_<tab>(services, demo)``, which lays out the tab inside the current Blocks
context and wires its events to the app's long-lived objects (llmplay/services.py: engine, template library,
evaluation and job runners, loop scheduler), built once in ``launch`` and passed in, so tabs share no module
state and build none of their own. Events that cross tabs are wired here, the one place that knows both: the
Evaluate tab's "Open row in Compare"; and every handler's permission is enforced here (``secure_app``).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
import time
from functools import partial

import gradio as gr

from llmplay.api.security_headers import add_security_headers
from llmplay.engine import Engine, backends
from llmplay.services import Services
from llmplay.tempfiles import claim_upload_dir, exports_dir
from llmplay.ui import refresh
from llmplay.ui.access import (
    PUBLIC,
    build_audit_panel,
    declare,
    header_text,
    oauth_enabled,
    role_of_request,
    secure_app,
    visible_for,
)
from llmplay.ui.login import MESSAGE as LOGIN_MESSAGE
from llmplay.ui.login import PasswordLogin, refuse_gradio_login
from llmplay.ui.markers import marker_style
from llmplay.ui.models_panel import model_pickers, refresh_model_pickers
from llmplay.ui.progress import quiet_progress
from llmplay.ui.queueing import QUEUE_MAX
from llmplay.ui.tabs.arena import build_arena_tab
from llmplay.ui.tabs.compare.tab import CompareHandle, build_compare_tab
from llmplay.ui.tabs.evaluate.feedback import QUEUE_PICKER as EVAL_QUEUE_PICKER
from llmplay.ui.tabs.evaluate.tab import EvaluateHandle, build_evaluate_tab
from llmplay.ui.tabs.labeling.tab import build_labeling_tab
from llmplay.ui.tabs.leaderboard import build_leaderboard_tab
from llmplay.ui.tabs.loop.tab import build_loop_tab
from llmplay.ui.tabs.optimize import build_optimize_tab
from llmplay.ui.tabs.playground import build_playground
from llmplay.ui.tabs.templates import build_templates_tab
from llmplay.ui.tabs.traces import TracesHandle, build_traces_tab
from llmplay.ui.tabs.train.tab import build_train_tab

TITLE = "llmplay"
SWITCH_INTERVAL_S = 0.0005
log = logging.getLogger(__name__)


def warm_default_model(engine: Engine) -> threading.Thread:
    """Load (and on a first run convert) the default model and its fast-decoder weights in the background
    while the server starts, so the first visitor does not wait for them. A request that arrives meanwhile
    waits on the same load."""

    def load() -> None:
        try:
            spec = engine.catalog.get(engine.settings.default_model)
            if spec.provider == "local":
                loaded = engine.models.get(spec)
                # and its stream backend's copy of the weights (the ONNX export, the fast decoder's), so the
                # first reply does not convert them
                settings = engine.settings
                backends.plan(loaded, settings.backend, settings.fast_precision, settings.cache_dir)
        except Exception as exc:  # the Playground reports load errors to the user when they pick the model
            log.warning("Could not preload %s: %s", engine.settings.default_model, exc)

    thread = threading.Thread(target=load, name="preload-default-model", daemon=True)
    thread.start()
    return thread


def build_app(services: Services) -> gr.Blocks:
    """The page, every tab built on the app's ``services`` (llmplay/services.py: its ``prompts_dir`` is the
    shipped template library, only read; every tab saves to the data dir's templates). ``demo.llmplay_services``
    keeps them for the server (/health reports the scheduler) and for closing."""
    # Gradio recomputes its monitoring summary (a pandas groupby over the last 10,000 events) after every event:
    # 40-90 ms of CPU per timer tick or click on this app's ~300 handlers, for a dashboard llmplay never opens.
    # Read when a queue is made (gr.Blocks() makes one); a value the operator set wins.
    os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", str(2**31))
    engine = services.engine
    with gr.Blocks(title=TITLE) as demo:
        demo.llmplay_services = services
        refresh.install_signals(demo)  # the change signals tabs bump and views reload on (llmplay/ui/refresh.py)
        gr.Markdown(f"# {TITLE}\nWrite prompts, try language models, and measure them.")
        with gr.Row():
            signed_in = gr.Markdown(elem_id="signed-in")
            if oauth_enabled():
                gr.LoginButton(scale=0)
        role_css = gr.HTML("", padding=False, elem_id="role-css")  # hides the tabs the role cannot use
        gr.HTML(marker_style(), padding=False, elem_id="marker-font")  # status emoji never draw as empty boxes
        with gr.Tabs(elem_id="main-tabs") as tabs:
            with gr.Tab("Playground", id="playground"):
                build_playground(services, demo)
            with gr.Tab("Templates", id="templates"):
                build_templates_tab(services, demo)
            with gr.Tab("Evaluate", id="evaluate") as evaluate_tab:
                evaluate = build_evaluate_tab(services, demo)
            with gr.Tab("Compare", id="compare"):
                compare = build_compare_tab(services, demo)
            with gr.Tab("Arena", id="arena"):
                build_arena_tab(services, demo)
            with gr.Tab("Leaderboard", id="leaderboard") as leaderboard_tab:
                leaderboard = build_leaderboard_tab(services, demo)
            with gr.Tab("Train", id="train") as train_tab:
                train = build_train_tab(services, demo)
            with gr.Tab("Labeling", id="labeling") as labeling_tab:
                labeling = build_labeling_tab(services, demo)
            with gr.Tab("Loop", id="loop") as loop_tab:
                loop = build_loop_tab(services, demo)
            with gr.Tab("Traces", id="traces") as traces_tab:  # the API's requests (admins)
                traces = build_traces_tab(services, demo)
            with gr.Tab("Optimize", id="optimize") as optimize_tab:  # prompt search (admins: it saves versions)
                build_optimize_tab(services, demo)
            # Next tabs go here, each a module in llmplay/ui/ built the same way, in this order: Feedback.
        _wire_open_in_compare(evaluate, compare, tabs)
        _wire_trace_to_compare(traces, compare, tabs)
        build_audit_panel(engine.settings)  # admins only; before the role view, which hides it from others
        # After every tab: the role's view of the page (the guards on the handlers are what enforce it).
        # the Labeling tab's Review sub-tab shows every labeler's answers: admins' only (k answers stay independent)
        tab_needs = {train_tab.id: "admin", loop_tab.id: "admin", labeling_tab.id: "label", "labeling-review": "admin"}
        tab_needs[traces_tab.id] = tab_needs[optimize_tab.id] = "admin"
        refresh.reload_on(traces.view, traces_tab.select)
        _wire_role_view(engine, demo, signed_in, role_css, tab_needs, labeling.name)
        opened = {"leaderboard": leaderboard_tab, "labeling": labeling_tab, "evaluate": evaluate_tab}
        opened["train"] = train_tab
        _wire_fresh_views(demo, opened, leaderboard, labeling, train)
        # the open tab and sub-tab in the URL: a reload or a shared link opens them (where the role may)
        refresh.wire_tab_url(demo, tabs, partial(_may_open, engine.settings, tab_needs))
        # Trained versions join every model picker as soon as a job registers them: on page load, on switching
        # tabs, and when the Train tab sees a job finish.
        pickers = model_pickers(demo, engine, exclude=(*train.pickers, *loop.pickers))
        refresh_model_pickers(engine, pickers, demo.load, tabs.change, train.versions_changed.change)
    quiet_progress(demo)  # after every event: automatic and hidden progress stays off the page's status walk
    # Deny by default: every handler is checked against its declared permission; one without refuses the start.
    demo.llmplay_permissions = secure_app(demo, engine.settings)
    return demo


def _wire_role_view(engine: Engine, demo: gr.Blocks, signed_in, role_css, tab_needs: dict, labeler_name) -> None:
    """On page load: the header line, the tabs and controls the caller's role may use (others hidden), and
    with users the labeler name fixed to the login name. Tabs are hidden by a style rule: Gradio 6.31 ignores
    a ``visible`` update of a gr.Tab (its button stays)."""
    settings = engine.settings
    # Components the tabs marked with ui.access.needs(), e.g. the model panel or the template writes.
    marked = {block: block.llmplay_needs for block in demo.blocks.values() if hasattr(block, "llmplay_needs")}
    targets = list(marked)

    @declare(PUBLIC)  # tells a caller who is not signed in just that
    def role_view(request: gr.Request):
        role = role_of_request(settings, request)
        shown = [gr.update(visible=visible_for(role, marked[t])) for t in targets]
        hidden = [f'button[data-tab-id="{tab}"]' for tab, need in tab_needs.items() if not visible_for(role, need)]
        css = f"<style>{', '.join(hidden)} {{display: none !important}}</style>" if hidden else ""
        name = getattr(request, "username", None)
        fixed = gr.Textbox(value=name, interactive=False) if name else gr.skip()
        return [header_text(settings, request), css, *shown, fixed]

    demo.load(role_view, None, [signed_in, role_css, *targets, labeler_name], api_visibility="private")


def _may_open(settings, tab_needs: dict, request: gr.Request, tab_id: str) -> bool:
    return visible_for(role_of_request(settings, request), tab_needs.get(tab_id, "view"))


def _wire_fresh_views(demo: gr.Blocks, opened: dict, leaderboard, labeling, train) -> None:
    """Views of stored state that another tab changes re-read it when their tab opens (and on the change signals
    they follow): the Leaderboard after a vote, the queue pickers after a queue is made, the Train job picker."""
    refresh.reload_on(leaderboard.view, opened["leaderboard"].select, *refresh.changed(demo, refresh.VOTES))
    refresh.reload_on(labeling.queues, opened["labeling"].select)

    @declare("view")
    def queue_picker(current: str | None):
        return gr.Dropdown(choices=labeling.tab.queue_names(), value=current)  # typed new names stay

    picker = refresh.block_by_elem_id(demo, EVAL_QUEUE_PICKER)
    if picker is not None:
        view = refresh.View(queue_picker, [picker], [picker])
        refresh.reload_on(view, opened["evaluate"].select, *refresh.changed(demo, refresh.QUEUES))

    @declare("admin", "see training jobs", read=True)  # job names are admins' (the Train tab is theirs)
    def job_picker(current):
        if current in (None, ""):  # opened before the page load's attach landed: follow the running job as it does
            return train.tab.attach()[0]
        return gr.Dropdown(choices=train.tab.job_choices(), value=current)

    jobs = refresh.block_by_elem_id(demo, "train-job")
    if jobs is not None:
        refresh.reload_on(refresh.View(job_picker, [jobs], [jobs]), opened["train"].select)


def _wire_open_in_compare(evaluate: EvaluateHandle, compare: CompareHandle, tabs: gr.Tabs) -> None:
    """The Evaluate tab's "Open row in Compare": fill the Compare form with the row and switch to it; the user
    presses Compare (a rerun costs model time, and they may change a column first). Problems stay in Evaluate."""

    @declare("view")
    def open_row(run_id, row) -> dict:
        handoff = compare.tab.open_eval_row(run_id, row)
        if handoff["error"]:
            return {evaluate.status: handoff["error"]}
        opened = f"Opened row {handoff['row']} of run #{handoff['run_id']} in the Compare tab."
        return compare.fill(handoff) | {evaluate.status: opened, tabs: gr.Tabs(selected="compare")}

    outputs = [*compare.outputs, evaluate.status, tabs]
    evaluate.open_in_compare.click(open_row, [evaluate.run, evaluate.row], outputs, api_visibility="private")


def _wire_trace_to_compare(traces: TracesHandle, compare: CompareHandle, tabs: gr.Tabs) -> None:
    """The Traces tab's "Open in Compare": the first picked trace's message in the Compare form, to the version that
    answered it and its line's other versions; the user presses Compare. Problems stay in Traces."""

    @declare("admin", "see API traces", read=True)
    def open_trace(ids: str) -> dict:
        first = next((i.strip() for i in (ids or "").split(",") if i.strip()), "")
        handoff = compare.tab.open_trace(first)
        if handoff["error"]:
            return {traces.status: handoff["error"]}
        opened = f"Opened trace {handoff['trace_id']} in the Compare tab."
        return compare.fill(handoff) | {traces.status: opened, tabs: gr.Tabs(selected="compare")}

    outputs = [*compare.outputs, traces.status, tabs]
    traces.open_in_compare.click(open_trace, [traces.picked], outputs, api_visibility="private")


def launch(engine: Engine, host: str | None = None, port: int | None = None, concurrency: int = 2, **kwargs) -> Served:
    """Build and serve the app on ``host:port`` (default: from settings); extra kwargs go to
    ``gr.mount_gradio_app``. Returns a ``Served`` once the server stops (at once, with the server running in
    a thread, with ``prevent_thread_lock=True``).

    ``concurrency`` bounds how many runs of each event (e.g. chat replies) proceed at once; local models
    serialise generation anyway, so more mostly helps endpoint models.
    """
    settings = engine.settings
    # A streaming reply's Python code holds the GIL between torch calls; with the default 5 ms switch interval
    # every step of a cheap request (a labeling submit) waits that long for it (bench/load.py).
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    # Uploads and served files under <data dir>/tmp/gradio, stale ones swept; before build_app, because each
    # component reads Gradio's temp dir when it is created.
    claim_upload_dir(settings)
    warm_default_model(engine)
    demo = build_app(Services.build(engine))
    # Model-running events share one limit (llmplay/ui/queueing.py); a full queue answers "busy, try again".
    demo.queue(default_concurrency_limit=concurrency, max_size=QUEUE_MAX)
    kwargs["share"] = False  # never open a public tunnel: the app may hold keys and private models
    kwargs.setdefault("max_file_size", settings.upload_max_bytes)
    # Without it, what Gradio rejects before a handler runs (a payload of the wrong shape, a value a component
    # refuses) comes back as {"error": null}; the handlers' own messages are meant for users anyway.
    kwargs.setdefault("show_error", True)
    # Export downloads are written under <data dir>/tmp/exports, outside cwd and the system temp dir on a Space.
    kwargs["allowed_paths"] = [*kwargs.get("allowed_paths", []), str(exports_dir(settings))]
    from llmplay.ui.shutdown import app_server, sigterm_exits_cleanly

    background = kwargs.pop("prevent_thread_lock", False)
    quiet = kwargs.pop("quiet", False)
    app = server_app(engine, demo, **kwargs)
    host, port = host or settings.host, port or settings.port
    server = app_server(app, host, port)  # stops within seconds of SIGTERM, open pages or not
    served = Served(demo, server, f"http://{host}:{port}/")
    if not quiet:
        print(f"llmplay: {served.local_url}", flush=True)
    if not background:
        with sigterm_exits_cleanly():  # exit 0 once the server is down, through the caller's final backup
            server.run()
        return served
    served.thread = threading.Thread(target=server.run, name="llmplay-server", daemon=True)
    served.thread.start()
    deadline = time.monotonic() + 60
    while not server.started and served.thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    if not server.started:
        raise RuntimeError(f"the server did not start on {host}:{port}")
    return served


class Served:
    """A running server (``launch``): its URL and ``close()``; ``demo`` is the Gradio app it serves."""

    def __init__(self, demo: gr.Blocks, server, local_url: str):
        self.demo, self.server, self.local_url = demo, server, local_url
        self.thread: threading.Thread | None = None

    def close(self) -> None:
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=10)
        services = getattr(self.demo, "llmplay_services", None)
        if services is not None:  # the app's loop thread ends with its server
            services.close()


def _add_login(settings, kwargs: dict) -> PasswordLogin | None:
    """With users configured (and no Hugging Face OAuth), Gradio's login page, backed by llmplay's throttled
    login and sessions (llmplay/ui/login.py); without, single-user mode needs none. Decided at start: users
    added later take effect after a restart (until then the guards refuse every caller, who has no login name)."""
    from llmplay.auth.access import single_user_mode

    if "auth" in kwargs or oauth_enabled() or single_user_mode(settings):
        return None
    kwargs["auth"] = refuse_gradio_login  # makes Gradio require a login; PasswordLogin's /login checks them
    kwargs.setdefault("auth_message", LOGIN_MESSAGE)
    return PasswordLogin(settings)


def server_app(engine: Engine, demo: gr.Blocks, **kwargs):
    """The FastAPI app the server runs: llmplay's plain HTTP routes (llmplay/api/rest.py: labeling calls that
    skip Gradio's queue, /health) and the Gradio app mounted at /. ``kwargs``: mount options (allowed_paths,
    max_file_size, show_error, auth...)."""
    from fastapi import FastAPI
    from fastapi.exceptions import RequestValidationError

    from llmplay.api.openai_api import openai_router
    from llmplay.api.rest import bad_request, check_declared, router
    from llmplay.ui.upload_quota import add_upload_quota

    kwargs.pop("share", None)
    login = _add_login(engine.settings, kwargs)
    # no generated API docs: they would list every route to anyone
    app = FastAPI(title=TITLE, docs_url=None, redoc_url=None, openapi_url=None)
    if login is not None:
        login.add_routes(app)  # before Gradio's, which it shadows
    services = getattr(demo, "llmplay_services", None)
    scheduler = services.scheduler if services is not None else None
    app.include_router(router(engine.settings, {"scheduler": scheduler.health} if scheduler else None))
    app.include_router(openai_router(engine))  # /v1: the OpenAI-compatible API (llmplay/api/openai_api.py)
    app.add_exception_handler(RequestValidationError, bad_request)
    check_declared(app)  # deny by default: a route without a declared permission stops the start
    app_kwargs = {**kwargs.pop("app_kwargs", {}), "openapi_url": None}  # Gradio's app's docs: off too
    app = gr.mount_gradio_app(app, demo, path="/", app_kwargs=app_kwargs, **kwargs)
    if login is not None:
        login.install(app)
    add_upload_quota(app, engine.settings)  # per-user bytes and files where uploads land (/gradio_api/upload)
    add_security_headers(app)  # last: the outermost layer, so every answer carries them
    return app
