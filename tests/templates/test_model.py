"""The YAML format and validation: every problem reported, with lines and columns."""

from __future__ import annotations

import pytest

from llmplay.templates.model import OutputSpec, TemplateError, parse_template

GOOD = """\
name: greet
description: Says hello.
task: chat
variables:
  - name: who
    description: Whom to greet.
  - name: punctuation
    default: "!"
body: |-
  Hello {{ who }}{{ punctuation }}
examples:
  - who: Ada
    output: Hi Ada.
output:
  format: One line.
  regex: 'Hi (\\w+)'
metrics: [exact_match]
"""


def problems_of(text: str) -> list[str]:
    with pytest.raises(TemplateError) as exc:
        parse_template(text)
    return exc.value.problems


def test_good_template_parses_and_round_trips_through_yaml():
    t = parse_template(GOOD)
    assert (t.name, t.task, t.body) == ("greet", "chat", "Hello {{ who }}{{ punctuation }}")
    assert [v.required for v in t.variables] == [True, False]
    assert t.defaults() == {"punctuation": "!"}
    assert t.examples[0].values == {"who": "Ada"} and t.examples[0].output == "Hi Ada."
    assert parse_template(t.to_yaml()) == t
    assert "body: |-\n  Hello" in t.to_yaml() or "body: Hello" in t.to_yaml()


def test_bad_yaml_reports_line_and_column():
    [problem] = problems_of("name: x\ntask: chat\nbody: a: b\n")
    assert problem.startswith("bad YAML at line 3, column 8")


def test_jinja_syntax_error_reports_body_line_column_and_file_line():
    text = GOOD.replace("Hello {{ who }}{{ punctuation }}", "Hello {{ who }}\n  Bye {{ who | }}")
    [problem] = problems_of(text)
    assert problem.startswith("body line 2, column 5:"), problem  # "Bye {{" starts at column 5
    assert problem.endswith("(file line 11)")


def test_every_problem_is_reported_at_once():
    text = """\
name: Bad Name
task: poetry
unknown_key: 1
variables:
  - name: a
  - name: a
body: "{{ a }} {{ b }} {% if %}"
examples:
  - c: 1
    output: x
output:
  regex: "("
"""
    problems = "\n".join(problems_of(text))
    for expected in [
        "unknown field(s) unknown_key",
        "name 'Bad Name' is not valid",
        "unknown task 'poetry'",
        "variable 'a' is declared twice",
        "body line 1, column 17",
        "example #1 sets undeclared variable(s): c",
        "example #1 is missing required variable(s): a",
        "output.regex is not a valid regular expression",
    ]:
        assert expected in problems


def test_undeclared_variable_in_body_and_system():
    text = GOOD.replace("body: |-", "system: Be {{ mood }}.\nbody: |-").replace("{{ who }}", "{{ whom }}")
    problems = problems_of(text)
    assert "variable 'mood' is used in the template but not declared under 'variables'" in problems
    assert "variable 'whom' is used in the template but not declared under 'variables'" in problems


def test_loop_and_set_names_are_not_undeclared_variables():
    body = "{% set x = 1 %}{% for c in who %}{{ loop.index }}{{ c }}{% endfor %}{{ x }}"
    parse_template(GOOD.replace("Hello {{ who }}", body))


@pytest.mark.parametrize(
    ("spec", "reply", "answer"),
    [
        (OutputSpec(labels=("positive", "negative", "neutral")), "Negative.", "negative"),
        (OutputSpec(labels=("positive", "negative", "neutral")), "It is not clear", None),
        (OutputSpec(labels=("pay_bill", "bill_due")), "bill_due, I think", "bill_due"),
        (OutputSpec(regex=r"(?i)answer:\s*(-?\d+)"), "2 + 2 = 4\nAnswer: 4", "4"),
        (OutputSpec(regex=r"\d+"), "no number", None),
        (OutputSpec(json=True), 'Here: {"a": [1, 2]} done', '{"a": [1, 2]}'),
        (OutputSpec(), "  free text ", "free text"),
    ],
)
def test_output_spec_extracts_the_answer(spec, reply, answer):
    assert spec.extract(reply) == answer
