"""Template versions in SQLite: one row per saved content of a template, numbered 1, 2, ... per name."""

from __future__ import annotations

import difflib
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlite_utils import Database

from llmplay.errors import LlmplayError
from llmplay.limits import check_number

TABLE = "template_versions"
_REF = re.compile(r"^(?P<name>[^@\s]+)@v?(?P<number>\d+)$")


def content_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Version:
    id: int  # unique across templates: what eval results and feedback store to name the exact version
    template: str
    number: int
    content: str
    content_hash: str
    created_at: str
    author: str
    message: str

    @property
    def short_hash(self) -> str:
        return self.content_hash[:12]

    def label(self) -> str:
        return f"v{self.number} {self.short_hash} {self.created_at} {self.author}: {self.message}".rstrip(": ")


def parse_ref(ref: str) -> tuple[str, int | None]:
    """``name`` (the file as it is now) -> (name, None); ``name@v3`` or ``name@3`` (a saved version) -> (name, 3).
    A version number out of range is refused by name (a huge one would overflow SQLite's integers)."""
    ref = (ref or "").strip()
    match = _REF.match(ref)
    if not match:
        return ref, None
    return match["name"], check_number("template_version", match["number"], label="template version")


def list_versions(db: Database, name: str) -> list[Version]:
    """Oldest first."""
    if not db[TABLE].exists():
        return []
    return [Version(**row) for row in db[TABLE].rows_where("template = ?", [name], order_by="number")]


def latest_version(db: Database, name: str) -> Version | None:
    rows = list(db[TABLE].rows_where("template = ?", [name], order_by="number desc", limit=1))
    return Version(**rows[0]) if rows else None


def get_version(db: Database, name: str, number: int) -> Version:
    rows = list(db[TABLE].rows_where("template = ? and number = ?", [name, number]))
    if not rows:
        known = ", ".join(f"v{v.number}" for v in list_versions(db, name)) or "none"
        raise LlmplayError(f"Template {name!r} has no version {number} (versions: {known}).")
    return Version(**rows[0])


def version_by_id(db: Database, version_id: int) -> Version:
    rows = list(db[TABLE].rows_where("id = ?", [version_id]))
    if not rows:
        raise LlmplayError(f"No template version with id {version_id}.")
    return Version(**rows[0])


def add_version(db: Database, name: str, content: str, author: str, message: str) -> Version:
    """Insert the next version of ``name``; call inside the caller's transaction."""
    latest = latest_version(db, name)
    row = {
        "template": name,
        "number": (latest.number if latest else 0) + 1,
        "content": content,
        "content_hash": content_hash(content),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "author": author,
        "message": message,
    }
    db[TABLE].insert(row)
    return latest_version(db, name)  # type: ignore[return-value]


def versions_by_template(db: Database) -> dict[str, list[Version]]:
    """Every saved version, grouped by template, oldest first (one query, for the pickers)."""
    if not db[TABLE].exists():
        return {}
    out: dict[str, list[Version]] = {}
    for row in db[TABLE].rows_where(order_by="template, number"):
        out.setdefault(row["template"], []).append(Version(**row))
    return out


def template_names(db: Database) -> list[str]:
    """Every template that has history, including deleted ones."""
    return [r["template"] for r in db.query(f"select distinct template from {TABLE} order by template")]


def unified_diff(old: Version, new: Version) -> str:
    return "".join(
        difflib.unified_diff(
            old.content.splitlines(keepends=True),
            new.content.splitlines(keepends=True),
            fromfile=f"{old.template} v{old.number}",
            tofile=f"{new.template} v{new.number}",
        )
    )
