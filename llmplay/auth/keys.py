"""API keys: how an application calls llmplay's OpenAI-compatible API (``Authorization: Bearer <key>``).

A key belongs to a user and acts with that user's role *now* (a role change applies to the next request; a
removed user's keys stop working). Only the key's sha256 is stored: a key is 32 random bytes, so a fast digest
is as safe as a password hash and costs nothing per request. ``llmplay users key NAME`` prints a new key once;
``--revoke`` ends every key of the user; ``llmplay users keys`` lists them without their secrets.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from llmplay.auth.users import UserError, check_user_name, role_of
from llmplay.settings import Settings
from llmplay.store import connect, immediate, now

PREFIX = "llp-"  # recognisable in a config file or a secret scanner
SHOWN = 10  # characters of a key kept for listings ("llp-AbCdEf")
MAX_KEY = 200  # anything longer is not one of ours: refused before hashing


@dataclass(frozen=True)
class ApiKey:
    id: int
    user: str
    prefix: str
    created_at: str
    revoked_at: str | None
    last_used_at: str | None


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def create_key(settings: Settings, user: str) -> str:
    """A new key for ``user`` (who must exist); the only time the secret is seen."""
    user = check_user_name(user)
    if role_of(settings, user) is None:
        raise UserError(f"No user {user!r}: add one first with `llmplay users add {user} --role viewer`.")
    key = PREFIX + secrets.token_urlsafe(32)
    with connect(settings.db_path) as db, immediate(db):
        db["api_keys"].insert(
            {"user": user, "prefix": key[:SHOWN], "digest": _digest(key), "created_at": now(), "revoked_at": None}
        )
    return key


def revoke_keys(settings: Settings, user: str) -> int:
    """End every working key of ``user``; returns how many."""
    user = check_user_name(user)
    with connect(settings.db_path) as db, immediate(db):
        cursor = db.execute("update api_keys set revoked_at = ? where user = ? and revoked_at is null", [now(), user])
        return cursor.rowcount


def list_keys(settings: Settings, user: str | None = None) -> list[ApiKey]:
    where, args = ("where user = ?", [check_user_name(user)]) if user else ("", [])
    with connect(settings.db_path) as db:
        rows = db.execute(
            f"select id, user, prefix, created_at, revoked_at, last_used_at from api_keys {where} order by id", args
        ).fetchall()
    return [ApiKey(*row) for row in rows]


def key_user(settings: Settings, key: str) -> tuple[str, str] | None:
    """``(user, role)`` of a working key whose user still exists, else None."""
    if not isinstance(key, str) or not key.startswith(PREFIX) or len(key) > MAX_KEY:
        return None
    digest = _digest(key)
    with connect(settings.db_path) as db:
        row = db.execute("select id, user from api_keys where digest = ? and revoked_at is null", [digest]).fetchone()
        if row is None:
            return None
    role = role_of(settings, row[1])
    if role is None:
        return None
    with connect(settings.db_path) as db, immediate(db):
        db.execute("update api_keys set last_used_at = ? where id = ?", [now(), row[0]])
    return row[1], role
