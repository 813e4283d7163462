"""Injection attempts are rejected with a clear error and no side effect; work is bounded in time and size."""

from __future__ import annotations

import time

import pytest

from llmplay.templates.sandbox import MAX_OUTPUT_CHARS, BoundedSandbox, TemplateRenderError

ATTEMPTS = [
    ("dunder mro", "{{ ''.__class__.__mro__[1].__subclasses__() }}", "private attribute '__mro__'"),
    ("self", "{{ self.__init__.__globals__ }}", "'self' is not available"),
    ("cycler internals", "{{ cycler.__init__.__globals__.os.system('touch {marker}') }}", "'__globals__'"),
    ("joiner internals", "{{ joiner.__init__.__globals__ }}", "'__init__'"),
    ("namespace internals", "{{ namespace.__init__.__globals__ }}", "'__globals__'"),
    ("flask config", "{{ config.items() }}", "'config' is undefined"),
    ("flask request", "{{ request.application.__globals__.__builtins__ }}", "'__globals__'"),
    ("lipsum globals", "{{ lipsum.__globals__['os'].popen('touch {marker}').read() }}", "'__globals__'"),
    ("attr filter", "{{ ''|attr('__class__') }}", "unsafe"),
    ("computed attribute name", "{% set k = '__cla' ~ 'ss__' %}{{ ''[k] }}", "unsafe"),
    ("str.format attribute", "{{ '{0.__class__}'.format('') }}", "unsafe"),
    ("include a file", "{% include '/etc/passwd' %}", "'include' is not allowed"),
    ("import", "{% import 'os' as os %}", "'import' is not allowed"),
    ("from-import", "{% from 'os' import system %}", "'from-import' is not allowed"),
    ("extends", "{% extends '/etc/passwd' %}", "'extends' is not allowed"),
    ("mutate a list", "{% set l = [1] %}{{ l.append(2) }}", "unsafe"),
    ("huge range", "{% for i in range(10**9) %}x{% endfor %}", "range() is limited"),
    ("string repetition", "{{ 'x' * 10**9 }}", "repeating a value"),
    ("power", "{{ (10**1000)**1000 }}", "power"),
    (
        "doubling concatenation",
        "{% set ns = namespace(s='x') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}",
        "longer than",
    ),
    ("format width", "{{ '%0999999999d'|format(1) }}", "format string is too large"),
    ("str.format width", "{{ '{:>{w}}'.format(1, w=999999999) }}", "too large"),
    ("center", "{{ 'x'|center(10**9) }}", "too large"),
    ("replace amplifier", "{{ ('x' * 100000)|replace('', 'y' * 1000) }}", "exceed"),
    ("join amplifier", "{{ range(10000)|join('y' * 100000) }}", "exceed"),
    ("huge output", "{% for i in range(10000) %}{{ 'x' * 1000 }}{% endfor %}", "rendered text is longer"),
    ("infinite recursion", "{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", "RecursionError"),
]


@pytest.mark.parametrize(("label", "source", "message"), ATTEMPTS, ids=[a[0] for a in ATTEMPTS])
def test_injection_attempts_are_rejected(label, source, message, tmp_path):
    marker = tmp_path / "pwned"
    started = time.monotonic()
    with pytest.raises(TemplateRenderError) as exc:
        BoundedSandbox().render(source.replace("{marker}", str(marker)), {})
    assert message in str(exc.value)
    assert not marker.exists()
    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize(
    "source",
    [
        "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
        "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}",
    ],
    ids=["nested loops", "exponential macro"],
)
def test_long_renders_stop_at_the_time_limit(source):
    started = time.monotonic()
    with pytest.raises(TemplateRenderError, match="longer than 0.5 s"):
        BoundedSandbox(time_limit_s=0.5).render(source, {})
    assert time.monotonic() - started < 2


def test_ordinary_templates_still_work():
    source = (
        "{% for l in labels %}{{ loop.index }}. {{ l|upper }}{% if not loop.last %}, {% endif %}{% endfor %}"
        "|{{ '{} and {}'.format(a, b) }}|{{ '%s-%d'|format('x', 3) }}|{{ 'a,b'|replace(',', ' ') }}"
        "|{{ 'x'|center(5) }}|{{ 'x' * 3 }}|{{ 2 ** 10 }}|{{ d.k }}"
    )
    out = BoundedSandbox().render(source, {"labels": ["a", "b"], "a": 1, "b": 2, "d": {"k": "v"}})
    assert out == "1. A, 2. B|1 and 2|x-3|a b|  x  |xxx|1024|v"


def test_output_just_under_the_cap_is_allowed():
    assert len(BoundedSandbox().render("{{ 'x' * n }}", {"n": MAX_OUTPUT_CHARS})) == MAX_OUTPUT_CHARS


# Integer arithmetic: one big-int operation holds the GIL and never reaches the sandbox's clock, so the
# render must refuse the operation itself. Each case runs in a subprocess with a timeout, so a sandbox
# without the bound fails the test instead of hanging it.
_RENDER_SCRIPT = """
import json, sys, time
from llmplay.templates.sandbox import BoundedSandbox
source, values = sys.argv[1], eval(sys.argv[2])
started = time.monotonic()
try:
    out, error = BoundedSandbox(time_limit_s=1.0).render(source, values), None
except Exception as exc:
    out, error = None, f"{type(exc).__name__}: {exc}"
print(json.dumps({"out": out, "error": error, "seconds": time.monotonic() - started}))
"""
_HUGE = "{'a': 1 << 23_000_000, 'b': (1 << 11_000_000) + 12345}"  # cheap to build, slow to divide or multiply

BIG_NUMBERS = [
    (
        "repeated squaring",
        "{% set ns = namespace(a=7**1000) %}{% for i in range(16) %}{% set ns.a = ns.a * ns.a %}{% endfor %}"
        "{{ ns.a.bit_length() }}",
        "{}",
        "integer",
    ),
    ("remainder of huge values", "{{ (a % b).bit_length() }}", _HUGE, "integer"),
    ("floor division of huge values", "{{ (a // b).bit_length() }}", _HUGE, "integer"),
    ("product of huge values", "{{ (a * b).bit_length() }}", _HUGE, "integer"),
    ("negated huge value", "{{ (-a).bit_length() }}", _HUGE, "integer"),
    ("product of bounded literals", "{{ (7**1000 * 7**1000).bit_length() }}", "{}", "integer"),
    ("power just over the bound", "{{ (2 ** 5000).bit_length() }}", "{}", "power"),
    ("int filter on a long number", "{{ (('9' * 4000)|int).bit_length() }}", "{}", "integer"),
    ("int.to_bytes amplifier", "{{ (10).to_bytes(10**8, 'big')|length }}", "{}", "too large"),
    ("range past a machine word", "{% for i in range(10**30) %}x{% endfor %}", "{}", "range() is limited"),
]


@pytest.mark.parametrize(("label", "source", "values", "message"), BIG_NUMBERS, ids=[b[0] for b in BIG_NUMBERS])
def test_big_numbers_are_refused_at_once(label, source, values, message):
    import json
    import subprocess
    import sys

    from tests.conftest import ROOT

    try:
        proc = subprocess.run(
            [sys.executable, "-c", _RENDER_SCRIPT, source, values],
            capture_output=True,
            text=True,
            timeout=20,
            cwd=ROOT,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{label}: the render did not stop within 20 s")
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["error"] is not None and message in result["error"], result
    assert result["error"].startswith("TemplateRenderError: Blocked by the template sandbox"), result
    assert result["seconds"] < 0.5, result


def test_ordinary_arithmetic_still_works():
    source = (
        "{{ 2 ** 64 }}|{{ (2 ** 100) // 3 % 1000 }}|{{ -7 // 2 }}|{{ 7 / 2 }}|{{ 10 - 3 }}|{{ -(3) }}"
        "|{{ 2 ** 4095 > 0 }}"
    )
    assert BoundedSandbox().render(source, {}) == f"{2**64}|{(2**100) // 3 % 1000}|-4|3.5|7|-3|True"
