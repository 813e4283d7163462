"""The library and its history: versions, diff, restore, delete, duplicate, import/export, crash consistency."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from llmplay.store import connect
from llmplay.templates.library import TemplateLibrary, validate_files
from llmplay.templates.model import TemplateError, parse_template
from llmplay.templates.render import render_for_model
from llmplay.templates.versions import content_hash
from tests.conftest import BASE_MODEL, CHAT_MODEL, ROOT
from tests.templates.conftest import PROMPTS, write

TEXT = """\
name: echo
description: Repeats the text.
task: generation
variables:
  - name: text
body: "Repeat: {{ text }}"
"""


def assert_file_and_db_agree(library: TemplateLibrary, name: str) -> None:
    with connect(library.db_path) as db:
        rows = list(db["template_versions"].rows_where("template = ?", [name], order_by="number desc", limit=1))
    assert rows and rows[0]["content"] == library.read_text(name)
    assert rows[0]["content_hash"] == content_hash(library.read_text(name))


def test_save_change_save_gives_two_versions_diff_and_restore(empty_library):
    lib = empty_library
    first = lib.save(TEXT, message="first", author="ada")
    assert first.created and first.version.number == 1 and first.version.author == "ada"
    assert lib.save(TEXT, message="same again").created is False  # unchanged content: no new version
    second = lib.save(TEXT.replace("Repeat:", "Say again:"), message="reword", author="bob")
    assert [v.number for v in lib.versions("echo")] == [1, 2]
    assert second.version.content_hash == content_hash(lib.read_text("echo"))
    diff = lib.diff("echo", 1, 2)
    assert '-body: "Repeat: {{ text }}"' in diff and '+body: "Say again: {{ text }}"' in diff
    restored = lib.restore("echo", 1, author="ada")
    assert restored.created and restored.version.number == 3 and restored.version.message == "restored v1"
    assert lib.read_text("echo") == TEXT == lib.version("echo", 3).content
    assert_file_and_db_agree(lib, "echo")
    assert lib.current_version("echo").number == 3


def test_saving_a_template_object_writes_canonical_yaml(empty_library):
    t = parse_template(TEXT)
    result = empty_library.save(t, message="from the editor")
    assert parse_template(empty_library.read_text("echo")) == t
    assert result.version.content == t.to_yaml()


def test_invalid_or_duplicate_templates_are_not_saved(empty_library):
    lib = empty_library
    with pytest.raises(TemplateError, match="not declared"):
        lib.save(TEXT.replace("{{ text }}", "{{ txt }}"))
    assert lib.names() == [] and lib.versions("echo") == []
    lib.save(TEXT)
    with pytest.raises(TemplateError, match="already exists"):
        lib.save(TEXT.replace("Repeat", "Again"), new=True)
    assert lib.read_text("echo") == TEXT and len(lib.versions("echo")) == 1


def test_hand_edits_are_recorded_as_a_version(empty_library):
    lib = empty_library
    lib.save(TEXT)
    write(lib.path("echo"), TEXT.replace("Repeat", "Echo"))
    [v1, v2] = lib.versions("echo")
    assert v2.author == "llmplay" and "recorded from the file" in v2.message
    assert_file_and_db_agree(lib, "echo")


def test_delete_keeps_history_and_restore_brings_it_back(empty_library):
    lib = empty_library
    lib.save(TEXT)
    lib.delete("echo")
    assert lib.names() == [] and lib.deleted() == ["echo"]
    lib.restore("echo", 1)
    assert lib.read_text("echo") == TEXT and [v.number for v in lib.versions("echo")] == [1, 2]


def test_duplicate_import_export(empty_library, tmp_path):
    lib = empty_library
    lib.save(TEXT)
    copy = lib.duplicate("echo", "echo-2")
    assert lib.load("echo-2").body == lib.load("echo").body and copy.version.message == "duplicated from echo"
    with pytest.raises(TemplateError, match="already exists"):
        lib.duplicate("echo", "echo-2")
    exported = lib.export("echo", tmp_path)
    assert exported.read_text() == TEXT
    other = write(tmp_path / "in" / "shout.yaml", TEXT.replace("name: echo", "name: shout"))
    assert lib.import_file(other).version.message == "imported from shout.yaml"
    assert lib.names() == ["echo", "echo-2", "shout"]
    with pytest.raises(TemplateError, match="already exists"):
        lib.import_file(other)
    broken = write(tmp_path / "in" / "broken.yaml", "name: broken\ntask: chat\nbody: '{{ x'\n")
    with pytest.raises(TemplateError, match="broken.yaml"):
        lib.import_file(broken)


def test_a_failed_rename_leaves_file_and_database_unchanged(empty_library, monkeypatch):
    lib = empty_library
    lib.save(TEXT)

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr("llmplay.atomicfile.os.replace", fail)  # the one atomic write
    with pytest.raises(OSError):
        lib.save(TEXT.replace("Repeat", "Again"))
    monkeypatch.undo()
    assert lib.read_text("echo") == TEXT and len(lib.versions("echo")) == 1
    assert [p.name for p in lib.folder.iterdir()] == ["echo.yaml"]  # the temp file is cleaned up


CRASH = """
import os, sys
from llmplay import atomicfile as lib_module
from llmplay.templates.library import TemplateLibrary
real_replace = os.replace

def crash(src, dst):
    if sys.argv[3] == "after-rename":
        real_replace(src, dst)
    os._exit(9)  # the process dies: no rollback code, no cleanup

lib_module.os.replace = crash
TemplateLibrary(sys.argv[1], sys.argv[2]).save(open(sys.argv[4]).read(), message="never committed")
"""


@pytest.mark.parametrize("when", ["before-rename", "after-rename"])
def test_a_crash_between_file_and_database_never_leaves_them_inconsistent(empty_library, tmp_path, when):
    lib = empty_library
    lib.save(TEXT, message="v1")
    new_text = write(tmp_path / "new.yaml", TEXT.replace("Repeat", "Crash"))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = [sys.executable, "-c", CRASH, str(lib.folder), str(lib.db_path), when, str(new_text)]
    assert subprocess.run(args, env=env, timeout=60).returncode == 9
    # The database never committed the version; the file is the old or the new content, whole.
    expected = new_text.read_text() if when == "after-rename" else TEXT
    assert lib.read_text("echo") == expected
    versions = lib.versions("echo")  # reconciles: the file's content is the latest version
    assert versions[-1].content == expected
    assert [v.message for v in versions][0] == "v1" and "never committed" not in [v.message for v in versions]
    assert_file_and_db_agree(lib, "echo")
    assert [p.name for p in lib.list()] and all(p.path.name == "echo.yaml" for p in lib.list())


def test_validate_files_flags_name_mismatch_and_duplicates(tmp_path):
    a = write(tmp_path / "a.yaml", TEXT.replace("name: echo", "name: a"))
    b = write(tmp_path / "b.yaml", TEXT.replace("name: echo", "name: a"))
    results = validate_files([a, b])
    assert "does not match the template name 'a'" in " ".join(results[b][1])
    assert any("duplicate template name 'a'" in p for p in results[a][1])


def test_listing_parses_each_file_once_per_content_and_sees_a_hand_edit_at_once(empty_library, monkeypatch):
    from llmplay.templates import library as library_module

    parsed, real = [], library_module.parse_template

    def counting(text: str, source: str = ""):
        parsed.append(source)
        return real(text, source)

    monkeypatch.setattr(library_module, "parse_template", counting)
    library_module._parsed.cache_clear()
    path = write(empty_library.folder / "echo.yaml", TEXT)
    for _ in range(3):  # a page load lists the library for each template picker
        assert [(s.name, s.valid) for s in empty_library.list()] == [("echo", True)]
    assert parsed == [str(path)]
    write(path, TEXT.replace("{{ text }}", "{{ text "))  # a hand edit that breaks it
    (summary,) = empty_library.list()
    assert not summary.valid and len(parsed) == 2
    summary.problems.append("a caller's own note")  # what one listing hands out is its own
    assert "a caller's own note" not in empty_library.list()[0].problems
    write(path, TEXT)
    assert empty_library.list()[0].valid and len(parsed) == 2  # that content was parsed before


# ---- the shipped library ------------------------------------------------------------------------------
SHIPPED = sorted(p.stem for p in PROMPTS.glob("*.yaml"))


def test_the_library_covers_the_tasks_and_every_template_validates(library):
    assert len(SHIPPED) >= 10
    results = validate_files(library.folder / f"{n}.yaml" for n in SHIPPED)
    assert {str(p): problems for p, (_, problems) in results.items() if problems} == {}
    for name in SHIPPED:
        t = library.load(name)
        # A judge rubric is itself the metric (its grade), so it suggests none.
        has_metrics = bool(t.metrics) or t.task == "judge"
        assert t.description and has_metrics and t.output.format, f"{name} must state its output format and metrics"


def test_shipped_templates_suggest_only_registered_metrics(library):
    from llmplay.evaluation.metrics import list_metrics

    known = set(list_metrics())
    unknown = {name: [m for m in library.load(name).metrics if m not in known] for name in SHIPPED}
    assert {k: v for k, v in unknown.items() if v} == {}


def sample_values(template) -> dict:
    return {v.name: f"sample {v.name}" for v in template.variables if v.required}


@pytest.mark.slow
@pytest.mark.parametrize("model", [CHAT_MODEL, BASE_MODEL])
def test_every_shipped_template_renders_for_every_generative_model(library, engine, model):
    for name in SHIPPED:
        t = library.load(name)
        rendered = render_for_model(engine, t, model, sample_values(t))
        assert rendered.token_count and rendered.token_count < rendered.context_length, name
        assert "sample" in rendered.text and rendered.warnings == [], name


def test_the_readme_describes_the_format():
    readme = (PROMPTS / "README.md").read_text()
    for word in ("variables:", "examples:", "output:", "metrics:", "sandbox"):
        assert word in readme.lower()
