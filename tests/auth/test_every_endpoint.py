"""Deny by default, checked on a real server with users: every event handler the app serves (UI events and API
endpoints alike: Gradio lets a client call any of them by its index, "private" ones included) is called as
anonymous, viewer and labeler, and each call a role may not make is refused. No model loads: the default model
is not in the catalog, so the handlers that generate fail fast after their check."""

from __future__ import annotations

import contextlib
import json
import uuid
from concurrent.futures import ThreadPoolExecutor

import gradio as gr
import httpx
import pytest

from llmplay.auth.roles import PUBLIC, allows
from llmplay.models.catalog import Catalog, ModelSpec
from llmplay.ui.access import UndeclaredEndpoint, declare, secure_app
from tests.auth.team import QUEUE, ROLES, add_queue, add_team, make_settings, start

# What a select / like event carries; handlers that read it get plausible values, the rest ignore it.
EVENT_DATA = {"index": [0, 0], "value": None, "row_value": [], "col_value": [], "liked": True, "selected": True}
SKIP = {"__type__": "update"}
LOCAL_MODEL = "operators-model"


@pytest.fixture(scope="module")
def team(tmp_path_factory, model_cache_dir):
    settings = make_settings(tmp_path_factory.mktemp("every-endpoint") / "data", model_cache_dir)
    add_team(settings)
    items = add_queue(settings)  # before the start: the Review sub-tab's queue picker offers it
    # an operator's model in a server folder: its path is for admins' eyes only
    folder = settings.data_dir / "models" / "private-folder"
    folder.mkdir(parents=True)
    Catalog(settings.models_file, settings=settings).add(
        ModelSpec(name=LOCAL_MODEL, kind="chat", source="local", location=str(folder))
    )
    running = start(settings)
    running.items = items
    yield running
    running.served.close()


@contextlib.contextmanager
def logged_in(team, name: str | None):
    """An HTTP client with ``name``'s session cookie (none for None), as a browser has after the login page."""
    with httpx.Client(base_url=team.url, timeout=60) as client:
        if name is not None:
            user, password = team.auth(name)
            assert client.post("login", data={"username": user, "password": password}).status_code == 200
        yield client


@pytest.fixture(scope="module")
def config(team) -> dict:
    with logged_in(team, "ada") as admin:
        answer = admin.get("config")
        assert answer.status_code == 200
        return answer.json()


def defaults(config: dict) -> dict[int, object]:
    return {c["id"]: c.get("props", {}).get("value") for c in config["components"]}


def call(client: httpx.Client, dependency: dict, values: dict, session: str | None = None) -> dict:
    """Call one event handler the way the page does, in ``session`` (a new one if None); the finished message,
    or {"http": status} when refused before it ran."""
    index = dependency["id"]
    body = {
        "data": [values.get(i) for i in dependency["inputs"]],
        "fn_index": index,
        "session_hash": session or uuid.uuid4().hex,
        "event_data": EVENT_DATA,
        "trigger_id": None,
    }
    if not dependency.get("queue", True):
        answer = client.post("gradio_api/run/predict", json=body)
        return {"http": answer.status_code, "text": answer.text}
    joined = client.post("gradio_api/queue/join", json=body)
    if joined.status_code != 200:
        return {"http": joined.status_code, "text": joined.text}
    event = joined.json()["event_id"]
    with client.stream("GET", "gradio_api/queue/data", params={"session_hash": body["session_hash"]}) as stream:
        for line in stream.iter_lines():
            if line.startswith("data:"):
                message = json.loads(line[5:])
                if message.get("msg") == "process_completed" and message.get("event_id") == event:
                    return message
    raise AssertionError(f"handler {index} never completed")


def call_all(client: httpx.Client, dependencies: list[dict], values: dict) -> list[tuple[dict, dict]]:
    """Each handler called once, four at a time, as four open pages would: one session each, its calls one after
    another. (A new session per call costs the server a copy of the whole page's config, ~0.2 s: most of this
    module's time.)"""
    sessions = [uuid.uuid4().hex for _ in range(4)]
    shares = [dependencies[i :: len(sessions)] for i in range(len(sessions))]
    with ThreadPoolExecutor(len(sessions)) as pool:
        done = pool.map(lambda share, s: [(d, call(client, d, values, s)) for d in share], shares, sessions)
        answers = {d["id"]: (d, m) for share in done for d, m in share}
    return [answers[d["id"]] for d in dependencies]


def without_files(value):
    """``value`` less the server paths of files handed out for download (Gradio names them so; they are
    served only to the session they were made for)."""
    if isinstance(value, dict):
        if (value.get("meta") or {}).get("_type") == "gradio.FileData":
            return {k: v for k, v in value.items() if k not in ("path", "url")}
        return {k: without_files(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_files(v) for v in value]
    return value


def refused(message: dict, quiet: bool) -> bool:
    """A refusal: the guard's message ("'vic' (viewer) may not ...") in the error or the output, or, for a page
    load of an admins' tab (``quiet``), nothing changed at all."""
    text = json.dumps(message)
    if "may not" in text and "needs the" in text:
        return True
    data = (message.get("output") or {}).get("data")
    return quiet and bool(data) and all(d == SKIP for d in data)


def test_every_handler_declares_a_permission_and_every_listed_endpoint_is_one_of_them(team, config):
    permissions = team.served.demo.llmplay_permissions
    backend = {d["id"] for d in config["dependencies"] if d.get("backend_fn")}
    assert backend and backend == set(permissions), "the page's handlers are exactly the declared ones"
    with logged_in(team, "ada") as admin:
        info = admin.get("gradio_api/info").json()
    named = {d["api_name"]: d["id"] for d in config["dependencies"] if d.get("api_name")}
    for endpoint in info["named_endpoints"]:
        assert named[endpoint.lstrip("/")] in permissions, endpoint
    # The sensitive reads named in the issue need their roles.
    by_name = {d.get("api_name"): permissions.get(d["id"]) for d in config["dependencies"]}
    assert by_name["train_preview"] == "admin" and by_name["train_yaml"] == "admin"
    review = [i for i, d in enumerate(config["dependencies"]) if "show_all" in (d.get("api_name") or "")]
    assert review and all(permissions[config["dependencies"][i]["id"]] == "admin" for i in review)


@pytest.mark.parametrize("name", ["vic", "lab"])
def test_each_handler_refuses_a_role_without_its_permission(team, config, name):
    role = ROLES[name]
    permissions = team.served.demo.llmplay_permissions
    values = defaults(config)
    loads = {d["id"] for d in config["dependencies"] if {t[1] for t in d["targets"]} == {"load"}}
    denied = [d for d in config["dependencies"] if d["id"] in permissions and not allows(role, permissions[d["id"]])]
    denied = [d for d in denied if permissions[d["id"]] != PUBLIC]
    assert len(denied) > 40  # admins' tabs and the labeling handlers

    with logged_in(team, name) as client:
        results = call_all(client, denied, values)
    let_through = [
        (d["id"], d.get("api_name"), permissions[d["id"]], json.dumps(m)[:300])
        for d, m in results
        if not refused(m, d["id"] in loads)
    ]
    assert let_through == [], f"{name} ({role}) was not refused by these handlers"


def test_a_viewer_is_not_refused_what_viewers_may_do_and_reads_no_server_path(team, config):
    permissions = team.served.demo.llmplay_permissions
    values = defaults(config)
    for component in config["components"]:  # model pickers name the operator's local model
        choices = [c[1] if isinstance(c, list) else c for c in component.get("props", {}).get("choices") or []]
        if LOCAL_MODEL in choices:
            values[component["id"]] = LOCAL_MODEL
    allowed = [d for d in config["dependencies"] if permissions.get(d["id"]) in ("view", PUBLIC)]
    with logged_in(team, "vic") as client:
        answers = call_all(client, allowed, values)
        page = client.get("config").text
    wrongly = [d.get("api_name") for d, answer in answers if refused(answer, False)]
    assert wrongly == []
    # After all these events Gradio has not summarised them for its monitoring page (a pandas groupby of the
    # last 10,000 events after each one: 40-90 ms of CPU an event, most of this module's time before).
    assert team.served.demo._queue.cached_event_analytics_summary == {"functions": {}}
    described = [a for _, a in answers if LOCAL_MODEL in json.dumps(a)]
    assert described, "a handler describes the picked model"
    server_path = str(team.settings.data_dir.resolve())
    leaks = [(d.get("api_name"), d["id"]) for d, answer in answers if server_path in json.dumps(without_files(answer))]
    assert leaks == [] and server_path not in page


def test_anonymous_callers_reach_no_handler(team, config):
    with logged_in(team, None) as anonymous:
        answers = {call(anonymous, d, {}).get("http") for d in config["dependencies"] if d.get("backend_fn")}
        assert answers == {401}
        assert anonymous.get("gradio_api/info").status_code == 401


def test_a_labeler_cannot_read_other_labelers_answers_of_an_item(team, config):
    """The Review sub-tab's reads (every answer of an item) are admins': k answers stay independent."""
    permissions = team.served.demo.llmplay_permissions
    detail = [d for d in config["dependencies"] if "show_detail" in (d.get("api_name") or "")]
    assert detail and all(permissions[d["id"]] == "admin" for d in detail)
    with logged_in(team, "lab") as client:
        values = defaults(config) | {detail[0]["inputs"][0]: QUEUE, detail[0]["inputs"][1]: team.items[0]}
        assert refused(call(client, detail[0], values), False)


def test_an_app_with_an_undeclared_handler_refuses_to_start(settings):
    with gr.Blocks() as demo:
        box = gr.Textbox()
        box.change(lambda text: text.upper(), box, box)
    with pytest.raises(UndeclaredEndpoint, match="declare no permission"):
        secure_app(demo, settings)
    with gr.Blocks() as fine:
        box = gr.Textbox()
        box.change(declare("view")(lambda text: text.upper()), box, box)
    assert set(secure_app(fine, settings).values()) == {"view"}


def test_a_server_with_an_undeclared_route_refuses_to_start(settings):
    from fastapi import FastAPI

    from llmplay.api.rest import UndeclaredRoute, check_declared, router

    with pytest.raises(UndeclaredRoute, match="/docs"):  # generated docs would list every route to anyone
        check_declared(FastAPI())
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.include_router(router(settings))
    check_declared(app)  # llmplay's own routes all declare theirs

    @app.get("/open-door")
    def open_door():
        return {}

    with pytest.raises(UndeclaredRoute, match="/open-door"):
        check_declared(app)

    from fastapi import APIRouter

    app, side = FastAPI(docs_url=None, redoc_url=None, openapi_url=None), APIRouter()

    @side.post("/side-door")
    def side_door():
        return {}

    app.include_router(side)  # routes of an included router are found too
    with pytest.raises(UndeclaredRoute, match="/side-door"):
        check_declared(app)
