"""The roles table, caller resolution, the audit log, the Gradio guard's signature and the OAuth allow-lists
(real SQLite files in tmp_path; no server)."""

from __future__ import annotations

import inspect
from types import SimpleNamespace

import gradio as gr
import pytest
from gradio.utils import get_function_params

from llmplay.auth.access import AccessDenied, audit_rows, check, resolve_caller
from llmplay.auth.oauth import OAuthConfig
from llmplay.auth.roles import allows
from llmplay.auth.users import add_user
from llmplay.errors import LlmplayError
from llmplay.settings import Settings
from llmplay.ui.access import Guard, header_text


@pytest.fixture()
def settings(tmp_path, monkeypatch):
    monkeypatch.delenv("LLMPLAY_AUTH", raising=False)
    return Settings(data_dir=tmp_path)


@pytest.mark.parametrize(
    ("role", "granted"),
    [
        ("viewer", {"view", "generate", "vote"}),
        ("labeler", {"view", "generate", "vote", "label"}),
        ("admin", {"view", "generate", "vote", "label", "admin"}),
        ("intruder", set()),
    ],
)
def test_roles_are_a_ladder(role, granted):
    assert {p for p in ("view", "generate", "vote", "label", "admin") if allows(role, p)} == granted


def test_an_unknown_permission_is_a_wiring_bug_not_an_open_door():
    with pytest.raises(ValueError, match="unknown permission"):
        allows("admin", "promte")


def test_single_user_mode_is_admin_and_says_so(settings):
    caller = resolve_caller(settings, None)
    assert (caller.name, caller.role, caller.single_user) == ("local", "admin", True)
    check(settings, caller, "admin", "promote versions", "line-a")
    row = audit_rows(settings, 1)[0]
    assert (row["user"], row["action"], row["target"], row["allowed"]) == ("local", "promote versions", "line-a", 1)
    assert header_text(settings, None).startswith("single-user mode (no users configured: everyone is admin")


def test_with_users_a_missing_or_unknown_login_is_refused_and_audited(settings):
    add_user(settings, "ada", "admin", "ada-password")
    add_user(settings, "bob", "labeler", "bob-password")
    with pytest.raises(AccessDenied, match="Log in first"):
        resolve_caller(settings, None)
    with pytest.raises(AccessDenied, match="'mallory' does not exist"):
        resolve_caller(settings, "mallory")
    bob = resolve_caller(settings, "bob")
    with pytest.raises(AccessDenied, match=r"^'bob' \(labeler\) may not promote versions: needs the admin role\.$"):
        check(settings, bob, "admin", "promote versions")
    assert check(settings, bob, "label", "label items") is bob  # not an admin action: not audited
    rows = audit_rows(settings, 10)
    assert [(r["user"], r["allowed"]) for r in rows] == [("bob", 0), ("mallory", 0), ("", 0)]
    assert header_text(settings, SimpleNamespace(username="bob")) == "signed in as bob (labeler)"


def test_guard_shows_gradio_a_request_parameter_and_keeps_the_api_schema(settings):
    def save(name: str, note: str = "", user: str = "") -> str:
        return f"{name}/{note}/{user}"

    guarded = Guard(settings)("admin", "save things", save, user_param="user")
    params = list(inspect.signature(guarded).parameters.values())
    assert params[0].annotation is gr.Request and [p.name for p in params[1:]] == ["name", "note", "user"]
    # gr.api builds its schema from these: the request is not an API parameter, the rest keep their types.
    assert [(n, t) for n, _, _, t in get_function_params(guarded)] == [("name", str), ("note", str), ("user", str)]
    assert guarded(None, "a", "b", "typed-name") == "a/b/typed-name"  # single-user mode: names stay as typed

    add_user(settings, "ada", "admin", "ada-password")
    add_user(settings, "lab", "labeler", "lab-password")
    assert guarded(SimpleNamespace(username="ada"), "a", "b", "typed-name") == "a/b/ada"  # the login name
    with pytest.raises(gr.Error, match="'lab' \\(labeler\\) may not save things"):
        guarded(SimpleNamespace(username="lab"), "a")


def test_guarded_generators_stay_generators_and_refuse_before_running(settings):
    ran = []

    def stream(prompt: str):
        ran.append(prompt)
        yield prompt.upper()

    guarded = Guard(settings)("generate", "chat", stream, refuse=lambda message: f"refused: {message}")
    assert inspect.isgeneratorfunction(guarded)
    assert list(guarded(None, "hi")) == ["HI"]
    add_user(settings, "ada", "admin", "ada-password")
    assert list(guarded(SimpleNamespace(username=None), "again"))[0].startswith("refused: Log in first")
    assert ran == ["hi"]


def test_oauth_roles_come_from_the_allow_lists():
    env = {
        "LLMPLAY_AUTH": "oauth",
        "LLMPLAY_ADMINS": "Ada, root",
        "LLMPLAY_LABELERS": "lab,ada",
        "LLMPLAY_VIEWERS": "v",
    }
    config = OAuthConfig.from_env(env)
    assert [config.role_for(n) for n in ("ada", "ROOT", "lab", "v", "stranger", "", None)] == [
        "admin", "admin", "labeler", "viewer", None, None, None,
    ]  # fmt: skip
    open_to_all = OAuthConfig.from_env({**env, "LLMPLAY_OAUTH_DEFAULT_ROLE": "viewer"})
    assert open_to_all.role_for("stranger") == "viewer" and open_to_all.role_for("lab") == "labeler"
    assert OAuthConfig.from_env({}) is None
    with pytest.raises(LlmplayError, match="may only be 'viewer'"):
        OAuthConfig.from_env({**env, "LLMPLAY_OAUTH_DEFAULT_ROLE": "admin"})
    with pytest.raises(LlmplayError, match="LLMPLAY_AUTH='ldap'"):
        OAuthConfig.from_env({"LLMPLAY_AUTH": "ldap"})


def test_oauth_callers_get_their_listed_role_or_are_refused(settings, monkeypatch):
    monkeypatch.setenv("LLMPLAY_AUTH", "oauth")
    monkeypatch.setenv("LLMPLAY_LABELERS", "lab")
    assert resolve_caller(settings, "lab").role == "labeler"
    with pytest.raises(AccessDenied, match="'stranger' is on no allow-list"):
        resolve_caller(settings, "stranger")
    with pytest.raises(AccessDenied, match="Log in with Hugging Face"):
        resolve_caller(settings, None)
