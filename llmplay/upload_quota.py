"""How much one user may upload: bytes and files per day (uploads are kept a day, llmplay/tempfiles.py), so no
role can fill the disk with 50 MB files. Counted per user name (per client address in single-user mode) over a
rolling day, in memory: a restart forgets the counts, and the uploads of the day before it are swept anyway.

No gradio import: the UI's middleware (llmplay/ui/upload_quota.py) asks ``admit`` before an upload is read and
``settle``s it with the sizes that landed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from llmplay.errors import LlmplayError
from llmplay.settings import Settings
from llmplay.tempfiles import STALE_AFTER_S


class UploadQuotaError(LlmplayError):
    """The upload would take the user past their quota; the message says what the limit is."""


@dataclass(eq=False)  # each upload its own, however alike
class Ticket:
    user: str
    at: float
    bytes: int
    files: int


class UploadQuota:
    def __init__(self, settings: Settings, window_s: float = STALE_AFTER_S, clock: Callable[[], float] = time.time):
        self.max_bytes, self.max_files = settings.upload_quota_bytes, settings.upload_quota_files
        self.window_s, self.clock = window_s, clock
        self._tickets: dict[str, list[Ticket]] = {}
        self._lock = threading.Lock()

    def used(self, user: str) -> tuple[int, int]:
        """(bytes, files) the user uploaded in the window, uploads in progress included."""
        with self._lock:
            return self._used(user)

    def _used(self, user: str) -> tuple[int, int]:
        cutoff = self.clock() - self.window_s
        tickets = self._tickets[user] = [t for t in self._tickets.get(user, []) if t.at >= cutoff]
        return sum(t.bytes for t in tickets), sum(t.files for t in tickets)

    def admit(self, user: str, size: int) -> Ticket:
        """Reserve an upload of ``size`` bytes (at least one file) or raise UploadQuotaError."""
        with self._lock:
            used_bytes, used_files = self._used(user)
            if used_bytes + size > self.max_bytes or used_files + 1 > self.max_files:
                raise UploadQuotaError(
                    f"Upload refused: {user or 'you'} uploaded {_mb(used_bytes)} in {used_files} file(s) in the "
                    f"last {self.window_s / 3600:g} hours, and this one is {_mb(size)}; the limit per user is "
                    f"{_mb(self.max_bytes)} and {self.max_files} files a day (settings upload_quota_bytes, "
                    "upload_quota_files; env LLMPLAY_UPLOAD_QUOTA_BYTES, LLMPLAY_UPLOAD_QUOTA_FILES)."
                )
            ticket = Ticket(user, self.clock(), size, 1)
            self._tickets[user].append(ticket)
            return ticket

    def settle(self, ticket: Ticket, sizes: list[int] | None) -> None:
        """What the upload stored: the files' sizes, or None when it failed (nothing is counted)."""
        with self._lock:
            if sizes is None:
                tickets = self._tickets.get(ticket.user, [])
                if ticket in tickets:
                    tickets.remove(ticket)
                return
            ticket.bytes, ticket.files = max(ticket.bytes, sum(sizes)), max(1, len(sizes))


def _mb(size: int) -> str:
    return f"{size / 2**20:.1f} MB"
