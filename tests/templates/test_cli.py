"""`llmplay templates ...` in-process: validate exit codes, render prints exactly the model's input."""

from __future__ import annotations

import pytest

from llmplay.cli import main
from llmplay.templates.render import render_for_model
from tests.conftest import CHAT_MODEL
from tests.templates.conftest import write

GOOD = 'name: hello\ntask: chat\nvariables: [who]\nbody: "Hello {{ who }}"\n'


@pytest.fixture()
def cli(tmp_path, monkeypatch, model_cache_dir, capsys):
    monkeypatch.setenv("LLMPLAY_CACHE_DIR", str(model_cache_dir))
    folder = tmp_path / "prompts"

    def run(*args: str) -> tuple[int, str, str]:
        code = main(["--data-dir", str(tmp_path / "data"), "templates", "--prompts-dir", str(folder), *args])
        out, err = capsys.readouterr()
        return code, out, err

    run.folder = folder
    run.data = tmp_path / "data"
    return run


def test_validate_exit_codes_for_good_and_broken_files(cli, tmp_path):
    good = write(cli.folder / "hello.yaml", GOOD)
    assert cli("validate")[0] == 0
    broken = write(tmp_path / "broken.yaml", GOOD.replace("name: hello", "name: broken").replace("}}", "} }"))
    code, out, _ = cli("validate", str(good), str(broken))
    assert code == 1
    assert f"{good}: ok" in out and f"{broken}: invalid" in out and "body line 1, column 7" in out
    bad_yaml = write(tmp_path / "bad.yaml", "name: [unclosed\n")
    code, out, _ = cli("validate", str(bad_yaml))
    assert code == 1 and "bad YAML at line 2" in out


def test_list_marks_invalid_templates(cli):
    write(cli.folder / "hello.yaml", GOOD)
    write(cli.folder / "oops.yaml", "name: oops\ntask: poetry\nbody: hi\n")
    code, out, _ = cli("list")
    assert code == 0 and "hello" in out and "oops" in out and "INVALID: unknown task 'poetry'" in out


@pytest.mark.slow
def test_render_prints_exactly_what_the_model_gets(cli, engine):
    write(cli.folder / "hello.yaml", GOOD)
    code, out, err = cli("render", "hello", "-m", CHAT_MODEL, "--var", "who=Ada")
    assert code == 0
    from llmplay.templates.library import TemplateLibrary

    template = TemplateLibrary(cli.folder, engine.settings.db_path).load("hello")
    assert out == render_for_model(engine, template, CHAT_MODEL, {"who": "Ada"}).text
    assert "tokens" in err
    code, _, err = cli("render", "hello", "-m", CHAT_MODEL)
    assert code == 2 and "missing value for required variable(s): who" in err


def test_history_diff_restore(cli):
    from llmplay.templates.library import TemplateLibrary

    write(cli.folder / "hello.yaml", GOOD)
    assert cli("history", "hello")[1].startswith("v1 ")
    write(cli.folder / "hello.yaml", GOOD.replace("Hello", "Hi"))
    code, out, _ = cli("diff", "hello", "1")
    assert code == 0 and '+body: "Hi {{ who }}"' in out
    code, out, _ = cli("restore", "hello", "1")
    assert code == 0 and "restored as v3" in out
    # The restore is written to the data dir's templates; the shipped folder (--prompts-dir) is only read.
    assert TemplateLibrary(cli.folder, "unused.db").read_text("hello") == GOOD.replace("Hello", "Hi")
    assert TemplateLibrary(cli.data / "prompts", "unused.db", shipped=cli.folder).read_text("hello") == GOOD
