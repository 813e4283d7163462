"""Users of a shared instance: names, roles and argon2 password hashes in SQLite (``users``, m009).

No users = single-user mode (everyone is admin, llmplay/auth/access.py). The last admin can be neither
removed nor demoted, so an instance never locks its operators out.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from llmplay.auth.roles import check_role
from llmplay.errors import LlmplayError
from llmplay.names import check_name
from llmplay.settings import Settings
from llmplay.store import connect, immediate, now

MIN_PASSWORD = 8
MAX_PASSWORD = 1024  # argon2 hashes any length; this only bounds the work one login can ask for
_HASHER = PasswordHasher()
# Verified when the name is unknown, so a wrong name costs as long as a wrong password (no user probing).
_DUMMY_HASH = _HASHER.hash("not a password of anyone")


class UserError(LlmplayError):
    pass


@dataclass(frozen=True)
class User:
    name: str
    role: str
    created_at: str
    updated_at: str


def check_user_name(name: str) -> str:
    return check_name(name, "user")


def check_password(password: str) -> str:
    if not isinstance(password, str) or len(password) < MIN_PASSWORD:
        raise UserError(f"A password needs at least {MIN_PASSWORD} characters.")
    if len(password) > MAX_PASSWORD:
        raise UserError(f"A password has at most {MAX_PASSWORD} characters.")
    return password


def hash_password(password: str) -> str:
    return _HASHER.hash(check_password(password))


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _HASHER.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def add_user(settings: Settings, name: str, role: str, password: str) -> User:
    name, role, hashed = check_user_name(name), check_role(role), hash_password(password)
    with connect(settings.db_path) as db, immediate(db):
        if db["users"].count_where("name = ?", [name]):
            raise UserError(f"User {name!r} exists already; change the role with `llmplay users set-role`.")
        at = now()
        db["users"].insert({"name": name, "role": role, "password_hash": hashed, "created_at": at, "updated_at": at})
    _forget_count(settings)
    return User(name, role, at, at)


def _get(db, name: str) -> dict:
    rows = list(db["users"].rows_where("name = ?", [name]))
    if not rows:
        raise UserError(f"No user {name!r}; `llmplay users list` shows who there is.")
    return rows[0]


def _refuse_last_admin(db, name: str, doing: str) -> None:
    others = db["users"].count_where("role = 'admin' and name != ?", [name])
    if not others:
        raise UserError(f"Cannot {doing} {name!r}: it is the last admin. Add another admin first.")


def remove_user(settings: Settings, name: str) -> None:
    name = check_user_name(name)
    with connect(settings.db_path) as db, immediate(db):
        if _get(db, name)["role"] == "admin":
            _refuse_last_admin(db, name, "remove")
        db["users"].delete(name)
    _forget_count(settings)


def set_role(settings: Settings, name: str, role: str) -> User:
    name, role = check_user_name(name), check_role(role)
    with connect(settings.db_path) as db, immediate(db):
        row = _get(db, name)
        if row["role"] == "admin" and role != "admin":
            _refuse_last_admin(db, name, "demote")
        db["users"].update(name, {"role": role, "updated_at": now()})
        row = _get(db, name)
    return User(row["name"], row["role"], row["created_at"], row["updated_at"])


def list_users(settings: Settings) -> list[User]:
    with connect(settings.db_path) as db:
        rows = db.execute("select name, role, created_at, updated_at from users order by name").fetchall()
    return [User(*row) for row in rows]


def role_of(settings: Settings, name: str) -> str | None:
    with connect(settings.db_path) as db:
        row = db.execute("select role from users where name = ?", [name]).fetchone()
    return row[0] if row else None


def authenticate(settings: Settings, name: str, password: str) -> str | None:
    """The user's role when the password is theirs, else None (same cost for an unknown name)."""
    name = (name or "").strip() if isinstance(name, str) else ""
    if not isinstance(password, str) or len(password) > MAX_PASSWORD:
        return None
    with connect(settings.db_path) as db:
        row = db.execute("select role, password_hash from users where name = ?", [name]).fetchone()
    if row is None:
        verify_password(_DUMMY_HASH, password)
        return None
    role, stored = row
    key = (name, hmac.new(_CACHE_KEY, password.encode("utf-8", "surrogatepass"), hashlib.sha256).digest())
    if _verified.get(key) == stored:  # verified before against this very hash (a new password misses)
        return role
    if not verify_password(stored, password):
        return None
    if len(_verified) > 10_000:
        _verified.clear()
    _verified[key] = stored
    return role


# argon2 costs ~64 MiB and tens of ms per check, by design; HTTP Basic sends the password with every REST call,
# so a password verified once is remembered (as a keyed digest, per process) against the hash it matched.
_CACHE_KEY = secrets.token_bytes(32)
_verified: dict[tuple[str, bytes], str] = {}


# has_users runs on every guarded call; a count cached for a second keeps labeling submits cheap, and a user
# added by the CLI while the app runs takes effect within that second.
_COUNT_TTL_S = 1.0
_counts: dict[str, tuple[float, int]] = {}


def _forget_count(settings: Settings) -> None:
    _counts.pop(str(settings.db_path), None)


def has_users(settings: Settings) -> bool:
    key = str(settings.db_path)
    cached = _counts.get(key)
    if cached and time.monotonic() - cached[0] < _COUNT_TTL_S:
        return cached[1] > 0
    with connect(settings.db_path) as db:
        count = db.execute("select count(*) from users").fetchone()[0]
    _counts[key] = (time.monotonic(), count)
    return count > 0
