"""Who is calling and whether they may: the checks that every state-changing handler makes on the server.

``resolve_caller`` turns a login name (Gradio's ``request.username``, HTTP Basic, a Hub login) into a
``Caller``; ``check`` refuses what the caller's role lacks (llmplay/auth/roles.py), records the refusal in
``audit_log``, and records every admin action that it lets through.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from llmplay.auth.oauth import OAuthConfig
from llmplay.auth.roles import allows, needed_role
from llmplay.auth.users import has_users, role_of
from llmplay.errors import LlmplayError
from llmplay.settings import Settings
from llmplay.store import connect, immediate, now

LOCAL = "local"  # the caller's name in single-user mode


class AccessDenied(LlmplayError):
    """The caller is not logged in, unknown, or their role lacks the permission; the message says which."""


@dataclass(frozen=True)
class Caller:
    name: str
    role: str
    single_user: bool = False  # no users configured: everyone is this admin

    def describe(self) -> str:
        if self.single_user:
            return "single-user mode (no users configured: everyone is admin; add one with `llmplay users add`)"
        return f"signed in as {self.name} ({self.role})"


def single_user_mode(settings: Settings) -> bool:
    return OAuthConfig.from_env() is None and not has_users(settings)


def resolve_caller(settings: Settings, username: str | None, oauth: OAuthConfig | None = None) -> Caller:
    """The caller behind ``username``. Raises AccessDenied (audited) when users are configured (or OAuth is
    on) and the name is missing or has no role."""
    oauth = oauth if oauth is not None else OAuthConfig.from_env()
    name = (username or "").strip() if isinstance(username, str) else ""
    if oauth is not None:
        role = oauth.role_for(name)
        if role is None:
            why = "Log in with Hugging Face first." if not name else f"Hub user {name!r} is on no allow-list."
            _refuse(
                settings,
                name,
                "",
                "use the app",
                "",
                why + " An admin adds names to LLMPLAY_ADMINS, LLMPLAY_LABELERS or LLMPLAY_VIEWERS.",
            )
        return Caller(name, role)
    if not has_users(settings):
        return Caller(LOCAL, "admin", single_user=True)
    if not name:
        _refuse(settings, "", "", "use the app", "", "Log in first: this instance has users.")
    role = role_of(settings, name)
    if role is None:
        _refuse(settings, name, "", "use the app", "", f"User {name!r} does not exist (any more); ask an admin.")
    return Caller(name, role)


def check(
    settings: Settings, caller: Caller, permission: str, action: str, target: str = "", *, audit: bool = True
) -> Caller:
    """Let ``caller`` do ``action`` (e.g. "promote versions") or raise AccessDenied (audited); admin actions that
    are let through are audited too, unless ``audit`` is False (an admin's reads: listings, polls)."""
    if not allows(caller.role, permission):
        need = needed_role(permission)
        _refuse(
            settings,
            caller.name,
            caller.role,
            action,
            target,
            f"{caller.name!r} ({caller.role}) may not {action}: needs the {need} role.",
        )
    if permission == "admin" and audit:
        _write(settings, caller.name, caller.role, action, target, True, None)
    return caller


def audit(settings: Settings, caller: Caller, action: str, target: str = "", allowed: bool = True, detail=None) -> None:
    _write(settings, caller.name, caller.role, action, target, allowed, detail)


def _refuse(settings: Settings, name: str, role: str, action: str, target: str, message: str):
    _write(settings, name, role, action, target, False, {"message": message})
    raise AccessDenied(message)


def _write(settings, name, role, action, target, allowed, detail) -> None:
    row = {
        "at": now(),
        "user": name,
        "role": role,
        "action": action[:200],
        "target": str(target or "")[:200],
        "allowed": int(bool(allowed)),
        "detail": json.dumps(detail, ensure_ascii=False)[:2000] if detail is not None else None,
    }
    with connect(settings.db_path) as db, immediate(db):
        db["audit_log"].insert(row)


def audit_rows(settings: Settings, limit: int = 50) -> list[dict]:
    """The newest audit rows first."""
    with connect(settings.db_path) as db:
        return list(db["audit_log"].rows_where(order_by="id desc", limit=max(1, int(limit))))
