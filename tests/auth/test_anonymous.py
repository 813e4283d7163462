"""What a server with users shows to someone who is not signed in: the login page and nothing that names the
team's endpoints, models, datasets, templates or queues; no generated API docs; and security headers on every
answer. Names are seeded (a queue, a dataset) or read from what the admin sees, so the test knows what a leak
would look like; no model loads."""

from __future__ import annotations

import httpx
import pandas as pd
import pytest

from llmplay.datasets import save_dataset
from tests.auth.team import QUEUE, add_queue, add_team, make_settings, start

DATASET = "team-dataset-7"
PATHS = [
    "",
    "?view=api",
    "config",
    "gradio_api/info",
    "gradio_api/openapi.json",
    "gradio_api/runs",
    "gradio_api/runs/",
    "gradio_api/queue/status",
    "gradio_api/upload_progress?upload_id=x",
    "gradio_api/heartbeat/anonymous",
    "gradio_api/file=README.md",
    "gradio_api/token",
    "gradio_api/user",
    "gradio_api/app_id",
    "gradio_api/startup-events",
    "monitoring",
    "theme.css",
    "gradio_api/theme.css",
    "manifest.json",
    "docs",
    "redoc",
    "openapi.json",
    "docs/oauth2-redirect",
]
DOCS = ["docs", "redoc", "openapi.json", "gradio_api/openapi.json"]


@pytest.fixture(scope="module")
def team(tmp_path_factory, model_cache_dir):
    settings = make_settings(tmp_path_factory.mktemp("anonymous") / "data", model_cache_dir)
    add_team(settings)
    add_queue(settings)
    save_dataset(settings, DATASET, pd.DataFrame({"prompt": ["one", "two"]}))
    running = start(settings)
    yield running
    running.served.close()


@pytest.fixture(scope="module")
def admin(team):
    with httpx.Client(base_url=team.url) as client:
        assert client.post("login", data={"username": "ada", "password": "ada-password"}).status_code == 200
        yield client


@pytest.fixture(scope="module")
def names(team, admin) -> set[str]:
    """What must not leak: the seeded queue and dataset, every endpoint's name, the models and templates the
    admin's page offers (each checked to be on that page, so their absence elsewhere means something)."""
    page = admin.get("").text
    info = admin.get("gradio_api/info").json()
    endpoints = {name.strip("/") for name in info["named_endpoints"]}
    found = {QUEUE, DATASET, "smollm2-135m-instruct", *endpoints}
    assert all(name in page for name in found), [name for name in found if name not in page]
    assert {"save_template", "labeling_submit", "chat"} <= endpoints
    templates = {path.stem for path in team.settings.prompts_dir.glob("*.yaml") if f'"{path.stem}"' in page}
    assert templates
    return found | templates


def test_anonymous_requests_show_no_api_description_nor_team_data(team, names):
    leaks = {}
    for path in PATHS:
        try:
            answer = httpx.get(team.url + path, timeout=10)
        except httpx.ReadTimeout:  # an endless stream that was opened to an anonymous caller
            leaks[path] = "streams to anyone"
            continue
        found = sorted(name for name in names if f'"{name}"' in answer.text or f'"/{name}"' in answer.text)
        if found:
            leaks[path] = found
    assert not leaks, leaks


def test_anonymous_root_is_the_login_form_and_the_rest_is_refused(team):
    page = httpx.get(team.url)
    assert page.status_code == 200 and '"auth_required":true' in page.text
    assert 'window.gradio_api_info = {"named_endpoints":{},"unnamed_endpoints":{}}' in page.text
    for path in ["config", "gradio_api/info", "gradio_api/runs", "gradio_api/heartbeat/anonymous"]:
        assert httpx.get(team.url + path, timeout=10).status_code == 401, path
    for path in DOCS:
        assert httpx.get(team.url + path).status_code in (401, 404), path


def test_signed_in_users_get_the_app_but_no_generated_docs(admin):
    page = admin.get("")
    assert page.status_code == 200 and '"auth_required":true' not in page.text
    assert admin.get("config").status_code == 200
    for path in DOCS[:3]:
        assert admin.get(path).status_code == 404, path


SECURITY_HEADERS = {
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}


@pytest.mark.parametrize("signed_in", [False, True])
def test_every_answer_carries_security_headers(team, admin, signed_in):
    client = admin if signed_in else httpx.Client(base_url=team.url)
    page = client.get("")
    asset = page.text.split('src="./assets/', 1)[1].split('"', 1)[0]
    answers = [
        page,
        client.get("config"),
        client.get("health"),
        client.get("assets/" + asset),
        client.get("no-such-page"),
        client.post("api/labeling/next", json={"queue": QUEUE, "labeler": "lab"}),
        client.post("login", data={"username": "nobody", "password": "wrong-password"}),
    ]
    for answer in answers:
        for name, value in SECURITY_HEADERS.items():
            assert answer.headers.get(name) == value, (answer.url, name, answer.headers)
        policy = answer.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy and "img-src 'self' data: blob:;" in policy, answer.url
        assert "default-src 'self'" in policy and "connect-src 'self'" in policy
