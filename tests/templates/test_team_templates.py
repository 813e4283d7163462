"""The team's templates live in the data dir over the shipped, read-only `prompts/`: saving never writes under the
shipped folder, and what the team saved survives a redeploy (a new shipped folder) and a backup + restore."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
from pathlib import Path

import pytest

from llmplay import backup
from llmplay.settings import Settings
from llmplay.templates.library import TemplateLibrary
from tests.templates.conftest import PROMPTS, write

NEW = 'name: team-notes\ntask: chat\nvariables: [who]\nbody: "Notes for {{ who }}"\n'


def shipped_copy(folder: Path, change: dict[str, tuple[str, str]] | None = None) -> Path:
    """A copy of the shipped library (``change``: name -> (old, new) text replaced in it), made read-only."""
    shutil.copytree(PROMPTS, folder, ignore=shutil.ignore_patterns("README.md"))
    for name, (old, new) in (change or {}).items():
        path = folder / f"{name}.yaml"
        text = path.read_text(encoding="utf-8")
        assert old in text
        path.write_text(text.replace(old, new, 1), encoding="utf-8")
    for path in folder.iterdir():
        path.chmod(stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    return folder


def snapshot(folder: Path) -> dict[str, str]:
    """Every file under ``folder`` with its content hash (root may write through chmod: compare, too)."""
    return {
        p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture()
def writable_again(tmp_path):
    yield
    for folder, dirs, _ in os.walk(tmp_path):  # so pytest can remove the read-only copies
        os.chmod(folder, 0o755)
        for d in dirs:
            os.chmod(Path(folder) / d, 0o755)


def test_saves_imports_and_restores_write_to_the_data_dir_never_under_the_shipped_folder(
    tmp_path, monkeypatch, writable_again
):
    shipped = shipped_copy(tmp_path / "checkout" / "prompts")
    before = snapshot(shipped)
    monkeypatch.setenv("LLMPLAY_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("LLMPLAY_PROMPTS_DIR", str(shipped))
    settings = Settings.from_env()
    library = TemplateLibrary.from_settings(settings)  # what the app's tabs and the CLI build
    team = tmp_path / "data" / "prompts"

    original = library.read_text("news-summary")
    edited = original.replace("description:", "description: (the team's)", 1)
    assert library.save(edited, message="team edit").created
    library.save(NEW, message="new")
    library.duplicate("financial-sentiment", "fin-copy")
    library.import_file(write(tmp_path / "in" / "imported.yaml", NEW.replace("team-notes", "imported")))
    library.restore("news-summary", library.current_version("news-summary").number - 1)  # back to shipped
    library.save(edited, message="team edit again")
    library.delete("math-direct")  # shipped: hidden, the file stays
    library.delete("fin-copy")

    assert snapshot(shipped) == before, "nothing under the shipped folder changed"
    assert library.folder == team == settings.templates_dir and library.shipped == shipped
    own = {p.name for p in team.iterdir()}
    assert own == {"news-summary.yaml", "team-notes.yaml", "imported.yaml", ".math-direct.deleted"}
    assert library.read_text("news-summary") == edited and library.read_text("team-notes") == NEW
    assert "math-direct" not in library.names() and "math-direct" in library.deleted()
    assert library.read_text("financial-sentiment") == (shipped / "financial-sentiment.yaml").read_text()
    library.restore("math-direct", 1)  # brings the shipped one back: the marker goes, nothing is copied
    assert "math-direct" in library.names() and not (team / ".math-direct.deleted").exists()
    assert library.path("math-direct") == shipped / "math-direct.yaml"


def test_a_teams_templates_survive_a_redeploy_and_a_backup_restore(tmp_path, writable_again):
    settings = Settings(data_dir=tmp_path / "data")
    v1 = shipped_copy(tmp_path / "release-1" / "prompts")
    library = TemplateLibrary.from_settings(settings, v1)
    edited = library.read_text("news-summary").replace("description:", "description: (the team's)", 1)
    library.save(edited, message="team edit")
    library.save(NEW, message="new")
    assert len(library.versions("financial-sentiment")) == 1  # seen as shipped, never edited

    # A redeploy: a new checkout whose shipped library changed both an edited and an unedited template.
    upstream = {
        "financial-sentiment": ("description:", "description: (release 2)"),
        "news-summary": ("description:", "description: (release 2)"),
    }
    v2 = shipped_copy(tmp_path / "release-2" / "prompts", upstream)
    for data_dir in (settings.data_dir, None):
        if data_dir is None:  # and then a backup, restored into a fresh data dir
            made = backup.backup(settings, tmp_path / "backups")
            restored = Settings(data_dir=tmp_path / "fresh")
            backup.restore(restored, made.path)
            library = TemplateLibrary.from_settings(restored, v2)
        else:
            library = TemplateLibrary.from_settings(settings, v2)
        assert library.read_text("news-summary") == edited, "the team's edit is kept"
        assert library.read_text("team-notes") == NEW
        assert library.read_text("financial-sentiment") == (v2 / "financial-sentiment.yaml").read_text()
        history = library.versions("financial-sentiment")
        assert [v.content for v in history][-1] == (v2 / "financial-sentiment.yaml").read_text()
        assert len(history) == 2, "the new shipped content is the next version"
        assert [v.message for v in library.versions("team-notes")] == ["new"]
