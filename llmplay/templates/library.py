"""The template library: one YAML file per template in a folder, with its history in SQLite.

Two folders: the team's own (``folder``: ``<data dir>/prompts``, where every save, import, duplicate and
restore writes, so templates are in every backup and survive a redeploy) over the shipped library
(``shipped``: the checkout's ``prompts/``, only read). A name reads the team's file when there is one, else
the shipped one: a shipped template nobody edited follows the shipped file (an upgrade's new content is
recorded as its next version), an edited one keeps the edit. Deleting a shipped template leaves a marker
(``.<name>.deleted``) in the team's folder, since the shipped file is never touched.

The file holds the current version (so the folder can live in git and be edited by hand); the database
holds every version. A save writes the new file to a temp file, records the version in an open
transaction, renames the file into place and then commits. A crash before the rename leaves both as
they were; a crash after it leaves a file newer than the database, and the next history operation
records the file as a version (``_record_file``), so the file's content is always the latest version.
"""

from __future__ import annotations

import functools
import getpass
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from llmplay.atomicfile import atomic_write
from llmplay.errors import LlmplayError, short
from llmplay.store import connect, immediate
from llmplay.templates import versions as v
from llmplay.templates.model import NAME_RE, Template, TemplateError, parse_template, template_problems
from llmplay.templates.versions import Version

SUFFIX = ".yaml"
MAX_FILE_BYTES = 1024 * 1024  # a template is a few KB; refuse imports of anything huge
RECORDED_MESSAGE = "recorded from the file (first seen, edited outside llmplay, or an interrupted save)"
DELETED = ".{name}.deleted"  # in the team's folder: a shipped template the team deleted


@dataclass(frozen=True)
class TemplateSummary:
    name: str
    path: Path
    description: str = ""
    task: str = ""
    problems: list[str] = field(default_factory=list)  # empty = valid

    @property
    def valid(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class SaveResult:
    version: Version
    created: bool  # False when the content was unchanged (no new version)


def default_author() -> str:
    try:
        return getpass.getuser()
    except Exception:  # no user name in some containers
        return "unknown"


class TemplateLibrary:
    def __init__(self, folder: Path | str, db_path: Path | str, shipped: Path | str | None = None):
        """``folder``: where templates are written (and read first); ``shipped``: a read-only library under it."""
        self.folder = Path(folder)
        self.db_path = Path(db_path)
        self.shipped = Path(shipped) if shipped is not None else None
        if self.shipped is not None and self.shipped.resolve() == self.folder.resolve():
            self.shipped = None  # one folder: it is the team's

    @classmethod
    def from_settings(cls, settings, folder: Path | str | None = None) -> TemplateLibrary:
        """The data dir's templates (``settings.templates_dir``) over the shipped library ``folder`` (default
        ``settings.prompts_dir``)."""
        from llmplay.templates import contexts

        contexts.use_settings(settings)  # a template's ``documents`` are read from this data dir's datasets
        return cls(settings.templates_dir, settings.db_path, shipped=folder or settings.prompts_dir)

    @property
    def where(self) -> str:
        """The folders read, for messages."""
        return f"{self.folder}/" + (f" or {self.shipped}/" if self.shipped is not None else "")

    # ---- reading ------------------------------------------------------------------------------------
    def path(self, name: str) -> Path:
        """The file that holds the template: the team's, else the shipped one (unless deleted), else where a
        save would write it."""
        own = self._own(name)
        shipped = self._shipped(name)
        if not own.is_file() and shipped is not None and shipped.is_file() and not self._marker(name).exists():
            return shipped
        return own

    def names(self) -> list[str]:
        names = set(self._stems(self.folder))
        if self.shipped is not None:
            names |= {n for n in self._stems(self.shipped) if not self._marker(n).exists()}
        return sorted(names)

    def list(self, query: str = "") -> list[TemplateSummary]:
        """Every template file (invalid ones too, with their problems), filtered by a search text."""
        checked = validate_files(self.path(n) for n in self.names())
        out = []
        for path, (template, problems) in checked.items():
            summary = TemplateSummary(
                name=path.stem,
                path=path,
                description=template.description if template else "",
                task=template.task if template else "",
                problems=problems,
            )
            haystack = f"{summary.name} {summary.description} {summary.task}".lower()
            if all(word in haystack for word in query.lower().split()):
                out.append(summary)
        return out

    def read_text(self, name: str) -> str:
        path = self.path(name)
        if not path.is_file():
            raise LlmplayError(f"No template named {name!r} in {self.where} (known: {', '.join(self.names())}).")
        return path.read_text(encoding="utf-8")

    def load(self, name: str) -> Template:
        """The current template; TemplateError if its file is invalid."""
        return parse_template(self.read_text(name), source=str(self.path(name)))

    def problems(self, template: Template | str, *, new: bool = False) -> list[str]:
        """Every problem with a template or template text, including clashes with the library."""
        if isinstance(template, str):
            try:
                template = parse_template(template)
            except TemplateError as exc:
                return exc.problems
        problems = template_problems(template)
        if template.name and NAME_RE.match(template.name):
            if new and self.path(template.name).exists():
                problems.append(f"a template named {template.name!r} already exists")
            checked = validate_files(self.path(n) for n in self.names())
            clashes = [p.name for p, (t, _) in checked.items() if t and t.name == template.name and p.stem != t.name]
            if clashes:
                problems.append(f"the name {template.name!r} is already declared in {', '.join(clashes)}")
        return problems

    # ---- history ------------------------------------------------------------------------------------
    def versions(self, name: str) -> list[Version]:
        """Oldest first; the last one is the file's content."""
        with connect(self.db_path) as db, immediate(db):
            self._record_file(db, name)
            return v.list_versions(db, name)

    def current_version(self, name: str) -> Version:
        """The version the file holds now: what an eval run or a feedback row should refer to."""
        with connect(self.db_path) as db, immediate(db):
            self._record_file(db, name)
            latest = v.latest_version(db, name)
        if latest is None or not self.path(name).is_file():
            raise LlmplayError(f"No template named {short(name)}.")
        return latest

    def version(self, name: str, number: int) -> Version:
        with connect(self.db_path) as db, immediate(db):
            self._record_file(db, name)
            return v.get_version(db, name, number)

    def version_by_id(self, version_id: int) -> Version:
        with connect(self.db_path) as db:
            return v.version_by_id(db, version_id)

    def diff(self, name: str, old: int, new: int | None = None) -> str:
        """Unified diff from version ``old`` to version ``new`` (default: the current one)."""
        with connect(self.db_path) as db, immediate(db):
            self._record_file(db, name)
            newest = v.latest_version(db, name)
            a = v.get_version(db, name, old)
            b = v.get_version(db, name, new) if new is not None else newest
        return v.unified_diff(a, b)

    def deleted(self) -> list[str]:
        """Templates whose file is gone but whose history remains (restore brings one back)."""
        with connect(self.db_path) as db:
            names = v.template_names(db)
        return [n for n in names if not self.path(n).exists()]

    # ---- writing ------------------------------------------------------------------------------------
    def save(self, template: Template | str, message: str = "", author: str = "", *, new: bool = False) -> SaveResult:
        """Validate and save; a new version only when the content changed. ``new``: refuse an existing name.

        ``template`` is a Template (written as canonical YAML) or a file's text (kept as written, comments too).
        Raises TemplateError with every problem; nothing is written then.
        """
        if isinstance(template, str):
            text = template if template.endswith("\n") else template + "\n"
            try:
                parsed = parse_template(text)
            except TemplateError as exc:
                raise TemplateError(exc.problems, "template") from None
        else:
            parsed, text = template, template.to_yaml()
        problems = self.problems(parsed, new=new)
        if problems:
            raise TemplateError(problems, parsed.name or "template")
        return self._write(parsed.name, text, author, message)

    def restore(self, name: str, number: int, author: str = "", message: str = "") -> SaveResult:
        """Make version ``number`` the current one again (as a new version, so history only grows)."""
        old = self.version(name, number)
        problems = self.problems(old.content)
        if problems:
            raise TemplateError(problems, f"{name} v{number}")
        return self._write(name, old.content, author, message or f"restored v{number}")

    def delete(self, name: str) -> None:
        """Remove the file; the history stays (``deleted()`` lists it, ``restore`` brings it back). A shipped
        template is hidden by a marker in the team's folder: the shipped file is never touched."""
        path = self.path(name)
        if not path.exists():
            raise LlmplayError(f"No template named {name!r}.")
        with connect(self.db_path) as db, immediate(db):
            self._record_file(db, name)  # so the deleted content is in the history
        shipped = self._shipped(name)
        if shipped is not None and shipped.is_file():
            atomic_write(self._marker(name), "")
        self._own(name).unlink(missing_ok=True)

    def duplicate(self, name: str, new_name: str, author: str = "") -> SaveResult:
        text = self.read_text(name)
        renamed = re.sub(r"^name:.*$", f"name: {new_name}", text, count=1, flags=re.MULTILINE)
        try:
            ok = parse_template(renamed).name == new_name
        except TemplateError:
            ok = False
        if not ok:  # an unusual layout: fall back to the canonical form
            renamed = replace(self.load(name), name=new_name).to_yaml()
        return self.save(renamed, message=f"duplicated from {name}", author=author, new=True)

    def import_file(self, path: Path | str, *, overwrite: bool = False, author: str = "") -> SaveResult:
        path = Path(path)
        if path.stat().st_size > MAX_FILE_BYTES:
            raise LlmplayError(f"{path.name} is larger than {MAX_FILE_BYTES // 1024} KB; not a template file.")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise LlmplayError(f"{path.name} is not UTF-8 text.") from None
        try:
            parse_template(text)
        except TemplateError as exc:
            raise TemplateError(exc.problems, path.name) from None
        return self.save(text, message=f"imported from {path.name}", author=author, new=not overwrite)

    def export(self, name: str, dest: Path | str) -> Path:
        """Copy the template file to ``dest`` (a folder or a file path); return the written path."""
        dest = Path(dest)
        target = dest / f"{name}{SUFFIX}" if dest.is_dir() else dest
        target.write_text(self.read_text(name), encoding="utf-8")
        return target

    # ---- internals ----------------------------------------------------------------------------------
    def _write(self, name: str, text: str, author: str, message: str) -> SaveResult:
        path = self.path(name)
        own, shipped = self._own(name), self._shipped(name)
        self.folder.mkdir(parents=True, exist_ok=True)
        with connect(self.db_path) as db:
            with immediate(db):
                self._record_file(db, name)
                latest = v.latest_version(db, name)
                on_disk = path.read_text(encoding="utf-8") if path.is_file() else None
                if latest is not None and latest.content == text and on_disk == text:
                    return SaveResult(latest, created=False)
                version = v.add_version(db, name, text, author or default_author(), message)
                # Inside the transaction: it commits only once the file is in place. Only the team's folder
                # is written; content equal to the shipped file follows the shipped library again.
                if shipped is not None and shipped.is_file() and shipped.read_text(encoding="utf-8") == text:
                    own.unlink(missing_ok=True)
                else:
                    atomic_write(own, text)
                self._marker(name).unlink(missing_ok=True)
            return SaveResult(version, created=True)

    def _own(self, name: str) -> Path:
        if not NAME_RE.match(name or ""):
            raise LlmplayError(f"{short(name)} is not a template name (lowercase letters, digits, '-' and '_').")
        return self.folder / f"{name}{SUFFIX}"

    def _shipped(self, name: str) -> Path | None:
        return None if self.shipped is None else self.shipped / f"{name}{SUFFIX}"

    def _marker(self, name: str) -> Path:
        return self.folder / DELETED.format(name=name)

    @staticmethod
    def _stems(folder: Path) -> list[str]:
        if not folder.is_dir():
            return []
        return [p.stem for p in folder.glob(f"*{SUFFIX}") if not p.name.startswith(".")]

    def _record_file(self, db, name: str) -> None:
        """If the file's content is not the latest version (hand edit, interrupted save), record it."""
        path = self.path(name)
        if not path.is_file():
            return
        text = path.read_text(encoding="utf-8")
        latest = v.latest_version(db, name)
        if latest is None or latest.content_hash != v.content_hash(text):
            v.add_version(db, name, text, "llmplay", RECORDED_MESSAGE)


def validate_files(paths: Iterable[Path | str]) -> dict[Path, tuple[Template | None, list[str]]]:
    """Parse and check each file; also flag file names that differ from the declared name, and duplicates."""
    results: dict[Path, tuple[Template | None, list[str]]] = {}
    for path in map(Path, paths):
        try:
            template, found = _parsed(path.read_text(encoding="utf-8"), str(path))
            problems = list(found)
        except (OSError, UnicodeDecodeError) as exc:
            template, problems = None, [f"cannot read the file: {exc}"]
        if template is not None and path.stem != template.name:
            problems.append(f"the file name {path.name} does not match the template name {template.name!r}")
        results[path] = (template, problems)
    by_name: dict[str, list[Path]] = {}
    for path, (template, _) in results.items():
        if template is not None:
            by_name.setdefault(template.name, []).append(path)
    for name, paths_with_name in by_name.items():
        if len(paths_with_name) > 1:
            for path in paths_with_name:
                others = ", ".join(str(p) for p in paths_with_name if p != path)
                results[path][1].append(f"duplicate template name {name!r} (also in {others})")
    return results


@functools.lru_cache(maxsize=1024)
def _parsed(text: str, source: str) -> tuple[Template | None, tuple[str, ...]]:
    """A file's template or its problems, parsed once per content: each page load lists the library for every
    template picker (about 40% of the server's time on a page load before). Templates are frozen: read-only."""
    try:
        return parse_template(text, source), ()
    except TemplateError as exc:
        return None, tuple(exc.problems)
