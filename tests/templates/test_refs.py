"""Naming a template: the file as it is now, or a saved version; an unknown name or version is refused."""

from __future__ import annotations

import pytest

from llmplay.errors import LlmplayError
from llmplay.templates import TemplateLibrary, load_template

VERSIONED = """\
name: compare-version
description: Two versions of one template.
task: generation
variables: [{{name: text}}]
body: "{body} {{{{ text }}}}"
"""


def test_a_column_names_the_current_template_or_a_saved_version(engine, tmp_path):
    library = TemplateLibrary(tmp_path / "prompts", engine.settings.db_path)
    library.folder.mkdir()
    first = library.save(VERSIONED.format(body="Say yes:")).version
    current = library.save(VERSIONED.format(body="Say no:")).version
    template, version = load_template(library, f"compare-version@v{first.number}")
    assert version == first and template.body.startswith("Say yes:")
    template, version = load_template(library, "compare-version")
    assert version == current and template.body.startswith("Say no:")
    with pytest.raises(LlmplayError, match="No template named 'compare-nope'"):
        load_template(library, "compare-nope")
    with pytest.raises(LlmplayError, match="has no version 9"):
        load_template(library, "compare-version@v9")
