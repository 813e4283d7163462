"""Roles on a real server with users: Gradio's login, the guards on its endpoints, HTTP Basic on the REST API,
and the audit log. One server for the module (building the app takes a few seconds); no model loads."""

from __future__ import annotations

import sqlite3

import httpx
import pytest
from gradio_client import Client

from llmplay.auth.access import audit_rows
from tests.auth.team import QUEUE, add_queue, add_team, make_settings, start


@pytest.fixture(scope="module")
def team(tmp_path_factory, model_cache_dir):
    settings = make_settings(tmp_path_factory.mktemp("team") / "data", model_cache_dir)
    add_team(settings)
    running = start(settings)
    running.items = add_queue(settings)
    yield running
    running.served.close()


@pytest.fixture(scope="module")
def clients(team):
    made = {name: Client(team.url, auth=team.auth(name), verbose=False) for name in ("ada", "lab", "vic")}
    yield made
    for c in made.values():
        c.close()


def responses(team, labeler: str) -> list[tuple]:
    with sqlite3.connect(team.settings.db_path) as con:
        return con.execute("select item_id, value from feedback_responses where labeler = ?", [labeler]).fetchall()


def refusals(team, user: str, action: str) -> list[dict]:
    return [
        r for r in audit_rows(team.settings, 200) if r["user"] == user and r["action"] == action and not r["allowed"]
    ]


def test_unauthenticated_callers_are_refused(team):
    assert httpx.get(team.url + "config").status_code == 401
    assert httpx.get(team.url + "gradio_api/info").status_code == 401
    with pytest.raises(Exception, match="401|[Uu]nauthorized|[Ll]ogin"):
        Client(team.url, verbose=False)
    with pytest.raises(ValueError):  # a wrong password does not log in either
        Client(team.url, auth=("lab", "not-the-password"), verbose=False)
    assert httpx.get(team.url + "health").status_code == 200  # the health check stays open


def test_a_labeler_calling_an_admin_endpoint_is_refused_and_audited(team, clients):
    before = len(refusals(team, "lab", "save templates"))
    with pytest.raises(Exception, match=r"'lab' \(labeler\) may not save templates: needs the admin role"):
        clients["lab"].predict("name: sneaky\n", "by a labeler", api_name="/save_template")
    assert len(refusals(team, "lab", "save templates")) == before + 1
    assert not any((d / "sneaky.yaml").exists() for d in (team.settings.prompts_dir, team.settings.templates_dir))


def test_admin_actions_are_allowed_and_audited(team, clients):
    clients["ada"].predict("no-such-added-model", api_name="/remove_model")  # the handler answers; not refused
    rows = [r for r in audit_rows(team.settings, 200) if r["user"] == "ada" and r["action"] == "remove models"]
    assert rows and rows[0]["allowed"] == 1 and rows[0]["role"] == "admin"


def test_a_viewer_cannot_submit_labels(team, clients):
    item = team.items[0]
    answer = clients["vic"].predict(QUEUE, "vic", item, "good", "vic-token", api_name="/labeling_submit")
    assert "'vic' (viewer) may not label items: needs the labeler role" in answer
    assert "error" in clients["vic"].predict(QUEUE, "vic", api_name="/labeling_next")
    body = {"queue": QUEUE, "labeler": "vic", "item_id": item, "value": "good", "client_token": "vic-rest"}
    refused = httpx.post(team.url + "api/labeling/submit", json=body, auth=team.auth("vic"))
    assert refused.status_code == 403 and "needs the labeler role" in refused.json()["error"]
    assert responses(team, "vic") == []
    assert len(refusals(team, "vic", "label items")) >= 3


def test_labelers_label_under_their_own_login_name(team, clients):
    # Through Gradio the labeler field is replaced by the login name: a labeler cannot act as someone else.
    item = clients["lab"].predict(QUEUE, "someone-else", api_name="/labeling_next")["item_id"]
    answer = clients["lab"].predict(QUEUE, "someone-else", item, "bad", "lab-token", api_name="/labeling_submit")
    assert answer.startswith("✅")
    assert (item, '"bad"') in responses(team, "lab") and responses(team, "someone-else") == []


def test_rest_labeling_needs_credentials_of_that_labeler(team):
    url = team.url + "api/labeling/submit"
    body = {"queue": QUEUE, "labeler": "ada", "item_id": team.items[1], "value": "good", "client_token": "t1"}
    missing = httpx.post(url, json=body)
    assert missing.status_code == 401 and "credentials" in missing.json()["error"]
    assert missing.headers["www-authenticate"].startswith("Basic")
    assert httpx.post(url, json=body, auth=("ada", "wrong password")).status_code == 401
    as_other = httpx.post(url, json=body, auth=team.auth("lab"))  # lab submitting as ada
    assert as_other.status_code == 403 and "label items as 'ada'" in as_other.json()["error"]
    admin = httpx.post(url, json=body, auth=team.auth("ada"))
    assert admin.status_code == 200, admin.text
    assert (team.items[1], '"good"') in responses(team, "ada")


def test_only_admins_read_the_audit_log(team, clients):
    with pytest.raises(Exception, match=r"'lab' \(labeler\) may not view the audit log"):
        clients["lab"].predict(50, api_name="/audit_log")
    users, table = clients["ada"].predict(50, api_name="/audit_log")
    assert "ada (admin)" in users and "lab (labeler)" in users and "vic (viewer)" in users
    rows = [tuple(r) for r in table["data"]]
    assert any(r[1] == "lab" and r[3] == "view the audit log" and r[5] == "REFUSED" for r in rows)
