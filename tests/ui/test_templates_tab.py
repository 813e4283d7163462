"""The Templates tab through its public API, on the live session app (real bundled chat model).

The app's shipped library is a temp copy of prompts/, only read; what the tab saves goes to the session's temp
data dir, with versions in its database (see conftest), so these tests may save, restore and delete freely.
Each test uses its own template to stay independent.
"""

from __future__ import annotations

import pytest
from gradio_client import handle_file

from llmplay.services import Services
from llmplay.templates import TemplateLibrary, render_for_model
from llmplay.ui.common import ERROR
from tests.conftest import CHAT_MODEL

SENTENCE = "Operating profit rose 25 % and the company raised its outlook."


@pytest.fixture(scope="module")
def library(engine, ui_prompts_dir) -> TemplateLibrary:
    """The same folders and database the app uses, to check what the tab did."""
    return TemplateLibrary.from_settings(engine.settings, ui_prompts_dir)


def preview(client, template: str, values=None, model: str = CHAT_MODEL) -> tuple[str, str]:
    text, info = client.predict(
        template=template, model=model, values=values or {}, max_new_tokens=16, api_name="/render_preview"
    )
    return text, info


def history(client, name: str) -> list[list]:
    table, _, _ = client.predict(name=name, api_name="/template_history")
    return table["data"]


def save(client, yaml_text: str, message: str) -> str:
    status, _ = client.predict(yaml_text=yaml_text, message=message, api_name="/save_template")
    return status


def test_preview_is_exactly_what_the_model_receives(client, engine, library):
    values = {"text": SENTENCE}
    expected = render_for_model(engine, library.load("financial-sentiment"), CHAT_MODEL, values)
    for template in ("financial-sentiment", library.read_text("financial-sentiment")):  # by name and as YAML
        text, info = preview(client, template, values)
        assert text == expected.text
        assert text.startswith("<|im_start|>system\n") and text.endswith("<|im_start|>assistant\n"), text[-200:]
        assert f"Sentence: {SENTENCE}" in text
        assert f"**{expected.token_count:,} tokens**" in info and "context" in info, info


def test_preview_reports_missing_variables_and_unknown_model(client):
    text, info = preview(client, "financial-sentiment")
    assert text == "" and info.startswith(ERROR) and "missing value" in info and "text" in info, info
    text, info = preview(client, "financial-sentiment", {"text": SENTENCE}, model="no-such-model")
    assert text == "" and info.startswith(ERROR) and "no-such-model" in info, info


def test_run_once_streams_the_reply_with_stats(client):
    job = client.submit(
        template="financial-sentiment",
        model=CHAT_MODEL,
        values={"text": SENTENCE},
        max_new_tokens=8,
        api_name="/run_once",
    )
    reply, stats = job.result(timeout=300)
    assert reply.strip().lower().startswith(("positive", "negative", "neutral")), reply
    assert stats.startswith("✅") and "tokens/s" in stats, stats
    assert len(job.outputs()) >= 2, "expected a generating status before the final reply"


def test_save_diff_and_restore(client, library, engine, ui_prompts_dir):
    name = "news-summary"
    original = library.read_text(name)
    shipped = ui_prompts_dir / f"{name}.yaml"
    assert shipped.read_text(encoding="utf-8") == original
    before = history(client, name)
    changed = original.replace("description:", "description: (edited in a test)", 1)
    assert changed != original

    status = save(client, changed, "mark the description")
    after = history(client, name)
    assert status.startswith("✓") and f"v{len(before) + 1}" in status, status
    assert len(after) == len(before) + 1
    newest = after[0]  # newest first: version, hash, time, author, message
    assert newest[0] == len(before) + 1 and newest[4] == "mark the description" and len(newest[1]) == 12
    assert library.read_text(name) == changed
    assert (engine.settings.templates_dir / f"{name}.yaml").read_text(encoding="utf-8") == changed
    assert shipped.read_text(encoding="utf-8") == original, "the save went to the data dir, not the shipped folder"

    old, new = len(before), len(before) + 1
    diff = client.predict(name=name, old=old, new=new, api_name="/diff_versions")
    assert f"--- {name} v{old}" in diff and f"+++ {name} v{new}" in diff, diff
    assert "+description: (edited in a test)" in diff and "\n-description:" in diff, diff

    assert save(client, changed, "no change").startswith("No changes"), "an unchanged save adds no version"
    assert len(history(client, name)) == new

    status, text = client.predict(name=name, number=old, api_name="/restore_version")
    assert status.startswith("✓ Restored") and text.rstrip("\n") == original.rstrip("\n"), (
        status
    )  # Code strips the last newline
    assert library.read_text(name) == original
    assert len(history(client, name)) == new + 1  # a restore is a new version: history only grows


@pytest.mark.parametrize(
    "break_it, fragments",
    [
        (lambda t: t.replace("task:", "task: [unclosed", 1), ["bad YAML at line", "column"]),
        (lambda t: t.replace("{{ dialogue }}", "{{ dialogue ", 1), ["body line", "column", "file line"]),
        (lambda t: t.replace("{{ dialogue }}", "{{ dialog }}", 1), ["'dialog' is used", "not declared"]),
        (lambda t: t.replace("task: summarisation", "task: poetry", 1), ["unknown task 'poetry'"]),
    ],
    ids=["yaml-syntax", "jinja-syntax", "undeclared-variable", "unknown-task"],
)
def test_invalid_template_is_refused_and_nothing_saved(client, library, break_it, fragments):
    name = "dialogue-summary"
    original = library.read_text(name)
    broken = break_it(original)
    assert broken != original, "the test's edit must apply to the shipped template"
    count = len(history(client, name))

    status = save(client, broken, "should not be saved")
    problems = client.predict(yaml_text=broken, api_name="/validate_template")
    for message in (status, problems):
        assert message.startswith(ERROR) and "problem(s)" in message, message
        for fragment in fragments:
            assert fragment in message, message
    assert len(history(client, name)) == count
    assert library.read_text(name) == original


@pytest.mark.parametrize(
    "body, fragment",
    [
        ("{{ ''.__class__.__mro__ }}", "private attribute '__class__' is not allowed"),
        ("{{ text|attr('__class__') }}", "Blocked by the template sandbox"),
    ],
    ids=["dunder-static", "attr-filter-at-render"],
)
def test_sandbox_escape_gives_clear_error_and_app_keeps_serving(client, library, body, fragment):
    evil = f'name: evil\ntask: generation\nvariables: [text]\nbody: "{body}"\n'
    text, info = preview(client, evil, {"text": "x"})
    assert text == "" and info.startswith(ERROR) and fragment in info, info
    assert not library.path("evil").exists()
    text, info = preview(client, "financial-sentiment", {"text": SENTENCE})
    assert "<|im_start|>" in text and "tokens" in info, info


def test_new_duplicate_delete_import_export(client, library, tmp_path):
    skeleton, status = client.predict(name="ui-new", api_name="/new_template")
    skeleton += "\n"  # the Code component drops the last newline; a save adds it back
    assert "name: ui-new" in skeleton and not library.path("ui-new").exists(), status
    assert save(client, skeleton, "first draft").startswith("✓ Saved **ui-new** v1")
    assert preview(client, "ui-new", {"text": "Hello"})[0].endswith("<|im_start|>assistant\n")

    status, picker = client.predict(name="ui-new", new_name="ui-copy", api_name="/duplicate_template")
    assert status.startswith("✓") and picker["value"] == "ui-copy", status
    assert library.read_text("ui-copy") == skeleton.replace("name: ui-new", "name: ui-copy")

    status, _ = client.predict(name="ui-copy", confirm=False, api_name="/delete_template")
    assert status.startswith(ERROR) and "confirm" in status and library.path("ui-copy").exists(), status
    status, _ = client.predict(name="ui-copy", confirm=True, api_name="/delete_template")
    assert status.startswith("Deleted **ui-copy**") and not library.path("ui-copy").exists(), status
    assert "ui-copy" in library.deleted() and len(history(client, "ui-copy")) == 1  # file gone, history kept
    status, text = client.predict(name="ui-copy", number=1, api_name="/restore_version")
    assert status.startswith("✓ Restored") and library.read_text("ui-copy").rstrip("\n") == text, status

    exported = client.predict(name="ui-new", api_name="/export_template")
    with open(exported, encoding="utf-8") as f:
        assert f.read() == library.read_text("ui-new")

    bad = tmp_path / "bad.yaml"
    bad.write_text("name: ui-bad\ntask: generation\nbody: '{{ oops'\n", encoding="utf-8")
    names = library.names()
    status, _ = client.predict(file=handle_file(str(bad)), overwrite=False, api_name="/import_template")
    assert status.startswith(ERROR) and "bad.yaml" in status and "line" in status, status
    status, _ = client.predict(file=handle_file(exported), overwrite=False, api_name="/import_template")
    assert status.startswith(ERROR) and "already exists" in status, status
    assert library.names() == names, "a refused import changes nothing"

    other = tmp_path / "ui-imported.yaml"
    other.write_text(skeleton.replace("name: ui-new", "name: ui-imported"), encoding="utf-8")
    status, picker = client.predict(file=handle_file(str(other)), overwrite=False, api_name="/import_template")
    assert status.startswith("✓ Imported **ui-imported**") and picker["value"] == "ui-imported", status


def test_the_tab_on_a_read_only_shipped_folder_saves_imports_and_restores_into_the_data_dir(settings, tmp_path):
    """The Templates tab as build_app wires it (``prompts_dir`` = the shipped folder, made read-only)."""
    import gradio as gr

    from llmplay.engine import Engine
    from llmplay.ui.tabs.templates import build_templates_tab
    from tests.templates.test_team_templates import NEW, shipped_copy, snapshot

    shipped = shipped_copy(tmp_path / "checkout" / "prompts")
    before, engine = snapshot(shipped), Engine(settings)
    try:
        with gr.Blocks() as demo:
            tab = build_templates_tab(Services.build(engine, shipped, check_s=0), demo)
        edited = tab.library.read_text("assistant").replace("description:", "description: (ours)", 1)
        assert tab.save_template(edited, "ours")[0].startswith("✓ Saved **assistant** v2")
        upload = tmp_path / "in" / "team-notes.yaml"
        upload.parent.mkdir()
        upload.write_text(NEW, encoding="utf-8")
        assert tab.import_template(str(upload))[0].startswith("✓ Imported **team-notes**")
        assert tab.restore_version("assistant", 1)[0].startswith("✓ Restored")
        assert tab.save_template(edited, "ours again")[0].startswith("✓ Saved")
        assert tab.delete_template("news-summary", confirm=True)[0].startswith("Deleted **news-summary**")
        assert snapshot(shipped) == before, "nothing under the shipped folder changed"
        own = sorted(p.name for p in settings.templates_dir.iterdir())
        assert own == [".news-summary.deleted", "assistant.yaml", "team-notes.yaml"]
        assert (settings.templates_dir / "assistant.yaml").read_text(encoding="utf-8") == edited
    finally:
        engine.close()
        shipped.chmod(0o755)
