"""Password logins, throttled: the one check behind the login page and REST's HTTP Basic.

After a few wrong passwords for one user name, or from one client address, further attempts are refused
without checking the password for a pause that doubles with each further failure (1 s, 2 s, 4 s ... up to
15 min); each refused attempt is audited. A name gets fewer free failures than an address, which a team behind
one NAT shares. Counts live in this process and are forgotten after a quiet spell; a success clears the name's.

argon2 is slow by design (tens of ms and 64 MiB a check): ``attempt`` blocks, so callers run it in a worker
thread, and at most ``VERIFY_SLOTS`` checks run at once, so a flood of logins leaves CPU for everyone else.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass

from llmplay.auth.access import Caller, audit
from llmplay.auth.users import authenticate
from llmplay.errors import LlmplayError
from llmplay.settings import Settings

FREE_FAILURES_PER_NAME = 5
FREE_FAILURES_PER_ADDRESS = 20
FIRST_PAUSE_S = 1.0
MAX_PAUSE_S = 15 * 60.0
VERIFY_SLOTS = 2
_MAX_TRACKED = 50_000  # names and addresses remembered at once; beyond it, the least recently failed go first
_KEY_CHARS = 200


class LoginThrottled(LlmplayError):
    """Too many recent failures for this name or address; ``retry_after_s`` says when to try again."""

    def __init__(self, retry_after_s: int):
        self.retry_after_s = retry_after_s
        super().__init__(f"Too many failed logins: try again in {retry_after_s} s.")


@dataclass
class _Failures:
    count: int = 0
    paused_until: float = 0.0
    last: float = 0.0


class LoginThrottle:
    """Failure counts per user name and per client address, and the pause they earn."""

    def __init__(self, clock=time.monotonic):
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: dict[tuple[str, str], _Failures] = {}
        self._swept = clock()

    def _keys(self, name: str, address: str) -> list[tuple[tuple[str, str], int]]:
        keys = [(("name", name[:_KEY_CHARS]), FREE_FAILURES_PER_NAME)]
        if address:
            keys.append((("address", address[:_KEY_CHARS]), FREE_FAILURES_PER_ADDRESS))
        return keys

    def pause_s(self, name: str, address: str) -> float:
        """Seconds until ``name`` from ``address`` may try again; 0 when it may now."""
        at = self._clock()
        with self._lock:
            found = (self._failures.get(key) for key, _ in self._keys(name, address))
            return max([f.paused_until - at for f in found if f is not None] + [0.0])

    def failed(self, name: str, address: str) -> None:
        at = self._clock()
        with self._lock:
            self._forget_old(at)
            for key, free in self._keys(name, address):
                record = self._failures.setdefault(key, _Failures())
                record.count, record.last = record.count + 1, at
                beyond = record.count - free  # the free failures' last one earns the first pause
                if beyond >= 0:
                    record.paused_until = at + min(MAX_PAUSE_S, FIRST_PAUSE_S * 2 ** min(beyond, 30))

    def succeeded(self, name: str) -> None:
        with self._lock:
            self._failures.pop(("name", name[:_KEY_CHARS]), None)

    def _forget_old(self, at: float) -> None:
        """Drop counts quiet for longer than the longest pause (a sweep a minute at most); past the cap, the
        stalest ones."""
        if len(self._failures) < _MAX_TRACKED and (len(self._failures) < 1000 or at - self._swept < 60):
            return
        self._swept = at
        quiet = [k for k, f in self._failures.items() if at - f.last > MAX_PAUSE_S and f.paused_until <= at]
        for key in quiet:
            del self._failures[key]
        if len(self._failures) >= _MAX_TRACKED:
            stalest = sorted(self._failures, key=lambda k: self._failures[k].last)
            for key in stalest[: len(stalest) - _MAX_TRACKED // 2]:
                del self._failures[key]


_throttles: dict[str, LoginThrottle] = {}
_throttles_lock = threading.Lock()
_verify_slots = threading.BoundedSemaphore(VERIFY_SLOTS)


def throttle_for(settings: Settings) -> LoginThrottle:
    """The data dir's throttle: the login page and REST count failures together."""
    with _throttles_lock:
        return _throttles.setdefault(str(settings.db_path), LoginThrottle())


def attempt(settings: Settings, name: str, password: str, address: str) -> str | None:
    """The user's role when ``password`` is theirs, None when not. Raises LoginThrottled (audited) while
    ``name`` or ``address`` is paused, without checking the password. Blocks: run it off the event loop."""
    name = name.strip() if isinstance(name, str) else ""
    throttle = throttle_for(settings)
    pause = throttle.pause_s(name, address)
    if pause > 0:
        retry = max(1, math.ceil(pause))
        detail = {"retry_after_s": retry, "message": "too many failed logins for this name or address"}
        audit(settings, Caller(name, ""), "log in (throttled)", address, allowed=False, detail=detail)
        raise LoginThrottled(retry)
    with _verify_slots:
        role = authenticate(settings, name, password)
    if role is None:
        throttle.failed(name, address)
    else:
        throttle.succeeded(name)
    return role
