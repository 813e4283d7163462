"""Every template picker's choices (llmplay/ui/template_picks.py): each valid template, then its saved versions
as ``name@vN`` newest first; every offered ref loads the version it names."""

from __future__ import annotations

from llmplay.templates import load_template
from llmplay.ui.template_picks import template_choices
from tests.templates.conftest import write

VERSIONED = """\
name: picked
description: A template saved three times.
task: generation
variables: [{{name: text}}]
body: "{body} {{{{ text }}}}"
"""


def test_versions_are_offered_newest_first_and_each_ref_resolves(empty_library):
    library = empty_library
    bodies = ["One:", "Two:", "Three:"]
    for i, body in enumerate(bodies):
        library.save(VERSIONED.format(body=body), message=f"edit {i + 1}")
    write(library.folder / "broken.yaml", "name: broken\nbody: [unclosed\n")

    choices = template_choices(library, "(none)")
    refs = [ref for _, ref in choices]
    assert refs == ["", "picked", "picked@v3", "picked@v2", "picked@v1"], "no invalid template; versions listed"
    labels = dict((ref, label) for label, ref in choices)
    assert labels[""] == "(none)" and labels["picked"] == "picked"
    assert labels["picked@v2"].startswith("picked@v2 · ") and labels["picked@v2"].endswith("· edit 2")
    for ref, body in [("picked", "Three:"), ("picked@v3", "Three:"), ("picked@v2", "Two:"), ("picked@v1", "One:")]:
        template, version = load_template(library, ref)
        assert template.body.startswith(body), (ref, template.body)
        assert ref == "picked" or version.number == int(ref.rsplit("@v", 1)[1])


def test_a_template_without_history_is_offered_by_name_and_no_label_means_no_none_choice(library):
    choices = template_choices(library)
    assert ("financial-sentiment", "financial-sentiment") in choices
    assert not any(ref == "" for _, ref in choices), "no 'no template' choice unless asked for"
    assert not any("@v" in ref for _, ref in choices), "shipped templates have no saved versions yet"
    library.versions("financial-sentiment")  # records the file: v1
    assert "financial-sentiment@v1" in [ref for _, ref in template_choices(library)]


def test_an_unreadable_library_offers_only_the_none_choice(tmp_path):
    class Broken:
        def list(self):
            raise OSError("disk gone")

    assert template_choices(Broken(), "(none)") == [("(none)", "")]
