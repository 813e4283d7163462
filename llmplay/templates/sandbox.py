"""Jinja2 in a sandbox: templates may loop, branch and filter, but never reach Python internals.

Jinja's ImmutableSandboxedEnvironment already refuses ``__dunder__`` and ``_private`` attributes,
unsafe callables and mutation of lists and dicts. On top of it this module adds what a shared web app
needs from text typed by any user:

- static checks before anything runs: no ``include``/``import``/``extends`` (no file access), no ``self``,
  no ``_private`` attribute names, so such templates fail validation with a message instead of at render;
- bounds: ``range`` is capped, string repetition, ``%`` formatting, concatenation and the output are
  capped in size, integers are capped in size (every arithmetic operator checks its operands and result,
  and ``**`` its result before computing it: one big-int operation holds the GIL for seconds, out of reach
  of the clock below), big numeric arguments to string and int methods and filters are refused, and a wall-time
  limit is checked on every call, attribute access, loop step and output chunk (so an exponential macro
  or a nested loop stops within the limit instead of pinning a CPU).
"""

from __future__ import annotations

import functools
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, nodes
from jinja2.compiler import CodeGenerator
from jinja2.exceptions import SecurityError, TemplateError, UndefinedError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from llmplay.errors import LlmplayError

MAX_RANGE = 10_000  # items one range() may produce
MAX_OUTPUT_CHARS = 200_000  # any string the template builds, and the whole output (far above any context)
MAX_INT_BITS = 4096  # any integer the template builds or computes with (about 1,233 decimal digits)
TIME_LIMIT_S = 2.0  # wall time for one render
COMPILED_CACHE_SIZE = 512  # distinct template sources kept compiled
# A number in a format string at least this long (e.g. "%0999999999d") would allocate huge strings.
_BIG_WIDTH = re.compile(r"\d{7,}")
# Globals a template may use besides its declared variables (lipsum is left out: a text amplifier, no use here).
ALLOWED_GLOBALS = frozenset({"range", "dict", "namespace", "cycler", "joiner"})


class TemplateRenderError(LlmplayError):
    """A template failed at render time (sandbox violation, undefined variable, limit reached)."""


@dataclass(frozen=True)
class SyntaxProblem:
    message: str
    line: int  # 1-based, within the template source
    column: int  # 1-based; the start of the offending tag (Jinja reports lines only)

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column}: {self.message}"


class _BoundedCodeGenerator(CodeGenerator):
    """Routes every ``~`` concatenation through a size check, so doubling a string in a loop stops early."""

    def visit_Concat(self, node: nodes.Concat, frame) -> None:
        self.write("environment.bounded(")
        super().visit_Concat(node, frame)
        self.write(")")


class _RenderBudget:
    def __init__(self, time_limit_s: float):
        self.deadline = time.monotonic() + time_limit_s
        self.time_limit_s = time_limit_s

    def check(self) -> None:
        if time.monotonic() > self.deadline:
            raise TemplateRenderError(f"The template took longer than {self.time_limit_s:g} s to render; stopped.")


class BoundedSandbox(ImmutableSandboxedEnvironment):
    code_generator_class = _BoundedCodeGenerator
    # Every arithmetic operator, so none is constant-folded at compile time and each is size-checked.
    intercepted_binops = frozenset({"*", "**", "%", "+", "-", "/", "//"})
    intercepted_unops = frozenset({"-", "+"})

    def __init__(self, time_limit_s: float = TIME_LIMIT_S):
        super().__init__(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=False)
        self.time_limit_s = time_limit_s
        self.globals = {name: value for name, value in self.globals.items() if name in ALLOWED_GLOBALS}
        self.globals["range"] = self._range
        self.filters = {name: self._bounded_filter(name, f) for name, f in self.filters.items()}
        self._local = threading.local()  # one budget per rendering thread: the UI renders concurrently
        # Compiled templates by source: a dataset renders the same body for every row (and each few-shot
        # example), and compiling is most of the cost (measured: ~4 of 6 s for 500 training rows).
        self._compiled: dict[str, Any] = {}
        self._compiled_lock = threading.Lock()

    # ---- limits -------------------------------------------------------------------------------------
    def _tick(self) -> None:
        budget = getattr(self._local, "budget", None)
        if budget is not None:
            budget.check()

    def bounded(self, value: Any) -> Any:
        if isinstance(value, str | bytes | list | tuple) and len(value) > MAX_OUTPUT_CHARS:
            raise SecurityError(f"the template built a value longer than {MAX_OUTPUT_CHARS:,} characters")
        _check_int("the template built", value)
        return value

    def _range(self, *args: int) -> Iterator[int]:
        r = range(*args)
        try:
            count = len(r)
        except OverflowError:  # more items than a machine word counts
            count = None
        if count is None or count > MAX_RANGE:
            got = "more than a machine word counts" if count is None else f"{count:,}"
            raise SecurityError(f"range() is limited to {MAX_RANGE:,} items; got {got}")
        for i in r:  # a generator, so nested loops check the clock on every step
            self._tick()
            yield i

    def _bounded_filter(self, name: str, func):
        def bounded_filter(*args, **kwargs):
            self._tick()
            # For pass_context/pass_environment filters the first argument is Jinja's, then comes the value.
            skip = 1 if getattr(func, "jinja_pass_arg", None) is not None else 0
            value, rest = (args[skip], args[skip + 1 :]) if len(args) > skip else (None, ())
            if name == "join" and value is not None and not isinstance(value, str):
                value = list(value)  # measure it (a generator has no length), then join the list
                args = (*args[:skip], value, *rest)
            _precheck(f"filter {name!r}", name, value, rest, kwargs)
            return self.bounded(func(*args, **kwargs))

        # Keep Jinja's pass_context/pass_environment marker so the filter receives the same arguments.
        if hasattr(func, "jinja_pass_arg"):
            bounded_filter.jinja_pass_arg = func.jinja_pass_arg
        return bounded_filter

    def call_binop(self, context, operator: str, left: Any, right: Any) -> Any:
        self._tick()
        _check_int(f"the {operator} operator got", left)
        _check_int(f"the {operator} operator got", right)
        if operator == "*":
            seq, times = (left, right) if isinstance(right, int) else (right, left)
            if isinstance(seq, str | list | tuple) and isinstance(times, int) and _size(seq) * times > MAX_OUTPUT_CHARS:
                raise SecurityError(f"repeating a value {times:,} times would exceed {MAX_OUTPUT_CHARS:,} characters")
        elif operator == "**" and isinstance(left, int) and isinstance(right, int) and right > 0:
            # The result has at least (bits(left) - 1) * right bits: refuse before computing it; what passes
            # costs at most twice the bound, and the result check below catches the rest.
            if (abs(left).bit_length() - 1) * right > MAX_INT_BITS:
                raise SecurityError(
                    f"the power (**) is too large to compute (integers are limited to {MAX_INT_BITS:,} bits)"
                )
        elif operator == "%":
            _check_format_string("the % operator", left)
        return self.bounded(super().call_binop(context, operator, left, right))

    def call_unop(self, context, operator: str, arg: Any) -> Any:
        self._tick()
        _check_int(f"the unary {operator} operator got", arg)
        return self.bounded(super().call_unop(context, operator, arg))

    def call(__self, __context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805 - Jinja's signature
        __self._tick()
        owner = getattr(__obj, "__self__", None)
        name = getattr(__obj, "__name__", "")
        if isinstance(owner, str):  # str methods: center, ljust, zfill, replace, join, ...
            if name == "join" and args and not isinstance(args[0], str):
                args = (list(args[0]), *args[1:])
                _precheck("str.join", "join", args[0], (owner,), {})
            else:
                _precheck(f"str.{name}", name, owner, args, kwargs)
        elif isinstance(owner, int | float):  # number methods: to_bytes(10**9) allocates its argument
            _precheck(f"{type(owner).__name__}.{name}", name, owner, args, kwargs)
        return __self.bounded(super().call(__context, __obj, *args, **kwargs))

    def wrap_str_format(self, value: Any):
        # Jinja hands out its own sandboxed str.format; check widths before it allocates anything.
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None

        def bounded_format(*args: Any, **kwargs: Any) -> str:
            self._tick()
            _precheck("str.format", "format", value.__self__, args, kwargs)
            return self.bounded(wrapped(*args, **kwargs))

        return bounded_format

    def getattr(self, obj: Any, attribute: str) -> Any:
        self._tick()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        self._tick()
        return super().getitem(obj, argument)

    # ---- compile and render -------------------------------------------------------------------------
    def check_syntax(self, source: str) -> tuple[nodes.Template | None, list[SyntaxProblem]]:
        """Parse ``source``; return its AST (None on a syntax error) and every problem found."""
        try:
            ast = self.parse(source)
        except TemplateSyntaxError as exc:
            line = exc.lineno or 1
            message = exc.message or str(exc)
            return None, [SyntaxProblem(message, line, _tag_column(self, source, line, exc.message))]
        return ast, _forbidden_constructs(ast)

    def render(self, source: str, values: dict[str, Any]) -> str:
        """Render ``source`` with ``values`` inside the bounds; raise TemplateRenderError on any failure."""
        template = self._compiled_template(source)
        budget = self._local.budget = _RenderBudget(self.time_limit_s)
        out: list[str] = []
        size = 0
        try:
            for chunk in template.generate(**values):
                budget.check()
                size += len(chunk)
                if size > MAX_OUTPUT_CHARS:
                    raise SecurityError(f"the rendered text is longer than {MAX_OUTPUT_CHARS:,} characters")
                out.append(chunk)
        except SecurityError as exc:
            raise TemplateRenderError(f"Blocked by the template sandbox: {exc}") from None
        except UndefinedError as exc:
            raise TemplateRenderError(f"Undefined value in the template: {exc}") from None
        except TemplateRenderError:
            raise
        except (TemplateError, TypeError, ValueError, ArithmeticError, LookupError, RecursionError) as exc:
            raise TemplateRenderError(f"The template failed to render: {type(exc).__name__}: {exc}") from None
        finally:
            self._local.budget = None
        return "".join(out)

    def _compiled_template(self, source: str):
        with self._compiled_lock:
            template = self._compiled.get(source)
        if template is not None:
            return template
        ast, problems = self.check_syntax(source)
        if problems:
            raise TemplateRenderError("; ".join(str(p) for p in problems))
        template = self.from_string(ast)
        with self._compiled_lock:
            if len(self._compiled) >= COMPILED_CACHE_SIZE:
                self._compiled.clear()
            self._compiled[source] = template
        return template


@functools.cache
def shared_sandbox() -> BoundedSandbox:
    """One sandbox for the process, so compiled templates are reused (rendering is thread-safe: budgets are
    per thread, compiled templates are immutable)."""
    return BoundedSandbox()


def _size(value: Any) -> int:
    if isinstance(value, str):
        return len(value)
    return sum(len(x) if isinstance(x, str) else 1 for x in value)


def _check_int(what: str, value: Any) -> None:
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise SecurityError(
            f"{what} an integer of {value.bit_length():,} bits; integers are limited to {MAX_INT_BITS:,} bits"
        )


def _check_format_string(what: str, fmt: Any) -> None:
    if isinstance(fmt, str) and _BIG_WIDTH.search(fmt):
        raise SecurityError(f"{what}: a width or precision in the format string is too large")


def _precheck(what: str, name: str, value: Any, args: tuple, kwargs: dict) -> None:
    """Refuse calls whose result would be huge, before they allocate it.

    Covers the amplifiers among Jinja filters and str methods: size-like numbers (center(10**9)),
    format widths ("%0999999999d"), replace with many matches, join with a long separator, and long
    fill/wrap strings (indent, wordwrap).
    """
    for arg in (*args, *kwargs.values()):
        if isinstance(arg, int | float) and not isinstance(arg, bool) and abs(arg) > MAX_OUTPUT_CHARS:
            raise SecurityError(f"{what}: the number {arg} is too large")
    if name in ("format", "format_map"):
        _check_format_string(what, value)
    elif name == "replace" and isinstance(value, str) and len(args) >= 2:
        old, new = str(args[0]), str(args[1])
        matches = len(value) + 1 if old == "" else value.count(old)
        if len(value) + matches * len(new) > MAX_OUTPUT_CHARS:
            raise SecurityError(f"{what}: the result would exceed {MAX_OUTPUT_CHARS:,} characters")
    elif name == "join" and value is not None:
        sep = str(args[0]) if args else str(kwargs.get("d", ""))
        if _size(value) + len(sep) * len(value) > MAX_OUTPUT_CHARS:
            raise SecurityError(f"{what}: the result would exceed {MAX_OUTPUT_CHARS:,} characters")
    elif name in ("indent", "wordwrap", "center", "ljust", "rjust"):
        longest = max((len(a) for a in (*args, *kwargs.values()) if isinstance(a, str)), default=0)
        if longest * max(1, _size(value) if isinstance(value, str) else 1) > MAX_OUTPUT_CHARS:
            raise SecurityError(f"{what}: the fill or wrap string is too long for this text")


def _forbidden_constructs(ast: nodes.Template) -> list[SyntaxProblem]:
    problems = []
    for node in ast.find_all((nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)):
        kind = type(node).__name__.lower().replace("fromimport", "from-import")
        problems.append(SyntaxProblem(f"'{kind}' is not allowed: templates cannot read other files", node.lineno, 1))
    for node in ast.find_all(nodes.Name):
        if node.name == "self":
            problems.append(SyntaxProblem("'self' is not available in templates", node.lineno, 1))
    for node in ast.find_all(nodes.Getattr):
        if node.attr.startswith("_"):
            message = f"access to the private attribute {node.attr!r} is not allowed"
            problems.append(SyntaxProblem(message, node.lineno, 1))
    for node in ast.find_all(nodes.Getitem):
        if isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str) and node.arg.value.startswith("_"):
            message = f"access to the private item {node.arg.value!r} is not allowed"
            problems.append(SyntaxProblem(message, node.lineno, 1))
    return problems


def _tag_column(env: BoundedSandbox, source: str, line: int, message: str) -> int:
    """Best-effort column (Jinja reports lines only): the first tag on the line where parsing the source
    up to that tag's end fails with the same error."""
    lines = source.splitlines(keepends=True)
    if not 1 <= line <= len(lines):
        return 1
    offset = sum(len(x) for x in lines[: line - 1])
    for m in re.finditer(r"\{\{.*?(?:\}\}|$)|\{%.*?(?:%\}|$)", lines[line - 1]):
        try:
            env.parse(source[: offset + m.end()])
        except TemplateSyntaxError as exc:
            if exc.lineno == line and exc.message == message:
                return m.start() + 1
    return 1


def undeclared_names(ast: nodes.Template) -> set[str]:
    """Names the template reads that it does not set itself, minus the sandbox's allowed globals."""
    from jinja2 import meta

    return meta.find_undeclared_variables(ast) - ALLOWED_GLOBALS
