"""Login sessions (token -> user name) that end on their own: after ``settings.session_hours``, and at once
when their user is removed, gets another role, or is re-created under the same name.

``Sessions`` is a mapping, so the web server keeps its tokens in it (llmplay/ui/login.py): every lookup
checks the token's user against the users table as it is now (another process, the CLI, changes it), so a
removed user's cookie is refused on the very next request, whichever route it reaches.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass

from llmplay.settings import Settings


def _account(settings: Settings, name: str) -> tuple | None:
    """What a session is bound to: the user's role and record times (a role change updates them); None when
    there is no such user. A read-only connection: this runs on every request, and opening the database the
    usual way (llmplay.store.connect) also checks its migrations."""
    try:
        con = sqlite3.connect(f"file:{settings.db_path}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error:
        return None
    try:
        return con.execute("select role, created_at, updated_at from users where name = ?", [name]).fetchone()
    except sqlite3.Error:
        return None
    finally:
        con.close()


@dataclass(frozen=True)
class _Session:
    name: str
    account: tuple | None
    expires: float


class Sessions(MutableMapping):
    """token -> user name, for as long as the session is valid (see the module's doc); an invalid one is
    dropped when looked up, as if it had never been there."""

    def __init__(self, settings: Settings, clock=time.monotonic):
        self._settings, self._clock = settings, clock
        self.lifetime_s = settings.session_hours * 3600
        self._live: dict[str, _Session] = {}

    def __setitem__(self, token: str, name: str) -> None:
        at = self._clock()
        for old in [t for t, s in self._live.items() if s.expires <= at]:
            self._live.pop(old, None)
        self._live[token] = _Session(name, _account(self._settings, name), at + self.lifetime_s)

    def __getitem__(self, token: str) -> str:
        session = self._live.get(token) if isinstance(token, str) else None
        if session is None:
            raise KeyError(token)
        expired = self._clock() >= session.expires
        if expired or session.account is None or _account(self._settings, session.name) != session.account:
            self._live.pop(token, None)
            raise KeyError(token)
        return session.name

    def __delitem__(self, token: str) -> None:
        del self._live[token]

    def __iter__(self) -> Iterator[str]:
        """The valid tokens (logging out looks each one up)."""
        return iter([token for token in list(self._live) if token in self])

    def __len__(self) -> int:
        return len(self._live)
