"""The template format: a dataclass, its YAML form, and validation that reports every problem at once.

A ``Template`` may be built in any state (an editor holds drafts); ``template_problems`` says what is
wrong with it, and every edge that matters (parsing a file, saving, rendering) refuses invalid ones.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from llmplay import yamlsafe
from llmplay.engine.tools import normalize_tools
from llmplay.errors import LlmplayError, short, short_list
from llmplay.templates import conversation as conv
from llmplay.templates.contexts import Documents, documents_from, documents_problems
from llmplay.templates.sandbox import shared_sandbox, undeclared_names

TASKS = ("classification", "extraction", "generation", "summarisation", "translation", "qa", "chat", "judge")
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
VARIABLE_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
FIELDS = (
    "name",
    "description",
    "task",
    "variables",
    "system",
    "body",
    "examples",
    "retrieve",
    "output",
    "metrics",
    "conversation",
    "tools",
)
FIELDS += ("documents",)  # retrieved passages for retrieval-augmented answers (contexts.py)
RETRIEVE_FIELDS = ("k", "pool")
# retrieve.k: examples chosen per row; retrieve.pool: the rows they are chosen from (kept in the template, so a
# saved version is self-contained). Embedding thousands of pool rows takes a while on CPU; more is refused.
MAX_RETRIEVE_K = 16
MAX_RETRIEVE_POOL = 5000
OUTPUT_FIELDS = ("format", "labels", "regex", "json", "schema", "mode")
OUTPUT_MODES = ("generate", "likelihood")
VALUE_TYPES = (str, int, float, bool, list, dict)


class TemplateError(LlmplayError):
    """A template is invalid; ``problems`` lists every problem found, each a message for the user."""

    def __init__(self, problems: list[str], source: str = ""):
        self.problems = list(problems)
        self.source = source
        where = f"{source}: " if source else ""
        super().__init__(where + ("; ".join(problems) if len(problems) == 1 else "\n  - ".join(["", *problems])))


@dataclass(frozen=True)
class Variable:
    name: str
    description: str = ""
    # None = required (the user must give a value); anything else is used when no value is given.
    default: Any = None

    @property
    def required(self) -> bool:
        return self.default is None


@dataclass(frozen=True)
class Example:
    """A few-shot example: values for the template's variables and the answer the model should give."""

    values: dict[str, Any]
    output: str


@dataclass(frozen=True)
class Retrieval:
    """Per-row few-shot examples: the ``k`` pool rows most similar to the row being rendered (MiniLM embeddings of
    their input text), chosen at render time by ``llmplay.templates.retrieval.select_examples``. They follow the
    template's fixed examples, the most similar last; a pool row never sees itself (same input text)."""

    k: int
    pool: tuple[Example, ...] = ()


@dataclass(frozen=True)
class OutputSpec:
    # Human-readable description of the expected answer, shown to users and useful in the prompt.
    format: str = ""
    # Allowed answers (classification); extract() maps a reply to one of them.
    labels: tuple[str, ...] = ()
    # Regex that finds the answer in a reply: group 1 if it has a group, else the whole match.
    regex: str | None = None
    # The answer is a JSON value.
    json: bool = False
    # A JSON Schema the JSON answer must satisfy (the schema_valid metric checks it); needs json. Not hashed: a dict.
    schema: dict | None = field(default=None, hash=False)
    # How evaluation runs get the answer: "generate" (free text, parsed) or "likelihood" (the label the model
    # finds most likely: never unparseable; needs labels and a local model).
    mode: str = "generate"

    def extract(self, reply: str) -> str | None:
        """The answer inside a model reply, or None if it has none (for scoring and display)."""
        text = reply.strip()
        if self.regex:
            match = re.search(self.regex, text)
            if not match:
                return None
            text = (match.group(1) if match.groups() else match.group(0)).strip()
        if self.labels:
            return _first_label(text, self.labels)
        if self.json:
            return _first_json(text)
        return text

    def is_empty(self) -> bool:
        return self == OutputSpec()


@dataclass(frozen=True)
class Template:
    name: str
    task: str
    body: str
    description: str = ""
    system: str = ""
    variables: tuple[Variable, ...] = ()
    examples: tuple[Example, ...] = ()
    output: OutputSpec = field(default_factory=OutputSpec)
    metrics: tuple[str, ...] = ()
    # Per-row retrieved examples (None: only the fixed ``examples``).
    retrieve: Retrieval | None = None
    # Retrieved passages put in a list variable (contexts.py); None: only the passages a row gives.
    documents: Documents | None = None
    # A row is a whole conversation played turn by turn (templates/conversation.py); None: one user turn.
    conversation: conv.ConversationSpec | None = None
    # Tools offered to the model (OpenAI's function format, engine/tools.py); replies are read as tool calls
    # (evaluation/toolcalls.py). Not hashed: mappings.
    tools: tuple[dict, ...] = field(default=(), hash=False)

    def variable_names(self) -> list[str]:
        return [v.name for v in self.variables]

    def defaults(self) -> dict[str, Any]:
        return {v.name: v.default for v in self.variables if not v.required}

    # ---- YAML ---------------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        data: dict[str, Any] = {"name": self.name, "description": self.description, "task": self.task}
        if self.variables:
            data["variables"] = [_variable_dict(v) for v in self.variables]
        if self.system:
            data["system"] = self.system
        data["body"] = self.body
        if self.examples:
            data["examples"] = [{**e.values, "output": e.output} for e in self.examples]
        if self.retrieve is not None:
            pool = [{**e.values, "output": e.output} for e in self.retrieve.pool]
            data["retrieve"] = {"k": self.retrieve.k, "pool": pool}
        if self.documents is not None:
            data["documents"] = self.documents.to_dict()
        if not self.output.is_empty():
            out = {"format": self.output.format, "labels": list(self.output.labels), "regex": self.output.regex}
            out["json"] = self.output.json
            out["schema"] = self.output.schema
            out["mode"] = self.output.mode if self.output.mode != "generate" else None
            data["output"] = {k: v for k, v in out.items() if v not in ("", [], None, False)}
        if self.metrics:
            data["metrics"] = list(self.metrics)
        if self.tools:
            data["tools"] = list(self.tools)
        if self.conversation is not None:
            data["conversation"] = conv.spec_dict(self.conversation)
        return data

    def to_yaml(self) -> str:
        return yaml.dump(self.to_dict(), Dumper=_BlockDumper, sort_keys=False, allow_unicode=True, width=120)


# ---- parsing ------------------------------------------------------------------------------------------
def parse_template(text: str, source: str = "") -> Template:
    """Parse a template file's text; raise TemplateError listing every problem (YAML, fields, Jinja)."""
    try:
        data = yamlsafe.load(text)
    except yaml.YAMLError as exc:
        raise TemplateError([_yaml_error(exc)], source) from None
    if not isinstance(data, dict):
        raise TemplateError(["the file must be a YAML mapping (name: ..., task: ..., body: ...)"], source)
    template, problems = template_from_dict(data)
    problems += template_problems(template, body_lines=_content_lines(text))
    if problems:
        raise TemplateError(problems, source)
    return template


def template_from_dict(data: dict) -> tuple[Template, list[str]]:
    """Build a Template from plain data, best effort, with every type/shape problem found."""
    problems: list[str] = []
    unknown = [k for k in data if k not in FIELDS]
    if unknown:
        problems.append(f"unknown field(s) {short_list(unknown)}; known fields: {', '.join(FIELDS)}")
    for key in ("name", "task", "body"):
        if data.get(key) in (None, ""):
            problems.append(f"'{key}' is required")

    def text(key: str) -> str:
        value = data.get(key)
        if value is None:
            return ""
        if not isinstance(value, str):
            problems.append(f"'{key}' must be text; got {type(value).__name__}")
            return str(value)
        return value

    variables = []
    raw_vars = data.get("variables") or []
    if not isinstance(raw_vars, list):
        problems.append("'variables' must be a list of {name, description, default}")
        raw_vars = []
    for i, raw in enumerate(raw_vars, 1):
        if isinstance(raw, str):  # shorthand: just the name (required, no description)
            raw = {"name": raw}
        if not isinstance(raw, dict) or "name" not in raw:
            problems.append(f"variable #{i} must be a mapping with at least a 'name'")
            continue
        extra = set(raw) - {"name", "description", "default"}
        if extra:
            problems.append(f"variable {short(raw['name'])}: unknown field(s) {short_list(sorted(map(str, extra)))}")
        variables.append(Variable(str(raw["name"]), str(raw.get("description") or ""), raw.get("default")))

    examples = []
    raw_examples = data.get("examples") or []
    if not isinstance(raw_examples, list):
        problems.append("'examples' must be a list of mappings (variable values plus 'output')")
        raw_examples = []
    for i, raw in enumerate(raw_examples, 1):
        if not isinstance(raw, dict) or "output" not in raw:
            problems.append(f"example #{i} must be a mapping of variable values plus 'output'")
            continue
        values = {str(k): v for k, v in raw.items() if k != "output"}
        examples.append(Example(values, str(raw["output"])))

    retrieve = _retrieval_from(data.get("retrieve"), problems)

    output = OutputSpec()
    raw_out = data.get("output")
    if raw_out is not None:
        if not isinstance(raw_out, dict):
            problems.append("'output' must be a mapping with format, labels, regex, json, schema or mode")
        else:
            extra = set(raw_out) - set(OUTPUT_FIELDS)
            if extra:
                problems.append(f"output: unknown field(s) {short_list(sorted(map(str, extra)))}")
            labels = raw_out.get("labels") or []
            if not isinstance(labels, list):
                problems.append("output.labels must be a list")
                labels = []
            output = OutputSpec(
                format=str(raw_out.get("format") or ""),
                labels=tuple(str(x) for x in labels),
                regex=str(raw_out["regex"]) if raw_out.get("regex") else None,
                json=bool(raw_out.get("json", False)),
                schema=raw_out.get("schema"),  # checked by template_problems (a mapping, a valid JSON Schema)
                mode=str(raw_out.get("mode") or "generate"),
            )

    metrics = data.get("metrics") or []
    if isinstance(metrics, str):
        metrics = [metrics]
    if not isinstance(metrics, list):
        problems.append("'metrics' must be a list of metric names")
        metrics = []

    raw_tools = data.get("tools")
    tools, tools_problems = normalize_tools(raw_tools)
    if tools_problems and isinstance(raw_tools, list):
        tools = tuple(raw_tools)  # kept as written: template_problems names each problem
    else:
        problems += tools_problems
    template = Template(
        name=text("name"),
        task=text("task"),
        body=text("body"),
        description=text("description"),
        system=text("system"),
        variables=tuple(variables),
        examples=tuple(examples),
        output=output,
        metrics=tuple(str(m) for m in metrics),
        retrieve=retrieve,
        documents=documents_from(data.get("documents"), problems),
        conversation=conv.parse_spec(data.get("conversation"), problems),
        tools=tools,
    )
    return template, problems


def _retrieval_from(raw: Any, problems: list[str]) -> Retrieval | None:
    """The ``retrieve`` mapping as a Retrieval (k as given: template_problems checks it), shape problems added."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        problems.append("'retrieve' must be a mapping with k (examples per row) and pool (rows to choose from)")
        return None
    extra = set(raw) - set(RETRIEVE_FIELDS)
    if extra:
        problems.append(f"retrieve: unknown field(s) {short_list(sorted(map(str, extra)))}; known fields: k, pool")
    raw_pool = raw.get("pool")
    if raw_pool is None:
        problems.append("retrieve.pool is required: the rows (variable values plus 'output') examples are chosen from")
        raw_pool = []
    elif not isinstance(raw_pool, list):
        problems.append("retrieve.pool must be a list of mappings (variable values plus 'output')")
        raw_pool = []
    pool = []
    for i, row in enumerate(raw_pool, 1):
        if not isinstance(row, dict) or "output" not in row:
            problems.append(f"retrieve.pool row #{i} must be a mapping of variable values plus 'output'")
            continue
        pool.append(Example({str(k): v for k, v in row.items() if k != "output"}, str(row["output"])))
    return Retrieval(raw.get("k"), tuple(pool))


# ---- validation ---------------------------------------------------------------------------------------
def template_problems(template: Template, body_lines: dict[str, int] | None = None) -> list[str]:
    """Every problem with a template (empty list = valid). ``body_lines``: file line where each text starts."""
    problems: list[str] = []
    t = template
    if t.name and not NAME_RE.match(t.name):
        problems.append(
            f"name {short(t.name)} is not valid: use 1-64 lowercase letters, digits, '-' or '_' "
            "(it is also the file name)"
        )
    if t.task and t.task not in TASKS:
        problems.append(f"unknown task {short(t.task)}; use one of: {', '.join(TASKS)}")

    declared = t.variable_names()
    seen: set[str] = set()
    for v in t.variables:
        if not VARIABLE_RE.match(v.name):
            problems.append(f"variable name {short(v.name)} is not valid: use letters, digits and '_'")
        if v.name == "output":
            problems.append("'output' cannot be a variable name: examples use it for the expected answer")
        if v.name in seen:
            problems.append(f"variable {short(v.name)} is declared twice")
        seen.add(v.name)
        if v.default is not None and not isinstance(v.default, VALUE_TYPES):
            problems.append(f"variable {short(v.name)}: default must be text, a number, a list or a mapping")

    sandbox = shared_sandbox()
    used: set[str] = set()
    for key in ("system", "body"):
        source = getattr(t, key)
        if not source:
            continue
        ast, syntax = sandbox.check_syntax(source)
        start = (body_lines or {}).get(key)
        for p in syntax:
            in_file = f" (file line {start + p.line - 1})" if start else ""
            problems.append(f"{key} {p}{in_file}")
        if ast is not None:
            used |= undeclared_names(ast)
    implicit = {conv.TURN_VARIABLE} if t.conversation is not None else set()
    for name in sorted(used - set(declared) - implicit):
        problems.append(f"variable {short(name)} is used in the template but not declared under 'variables'")

    required = {v.name for v in t.variables if v.required}
    for i, example in enumerate(t.examples, 1):
        unknown = sorted(set(example.values) - set(declared))
        if unknown:
            problems.append(f"example #{i} sets undeclared variable(s): {short_list(unknown)}")
        missing = sorted(required - set(example.values))
        if missing:
            problems.append(f"example #{i} is missing required variable(s): {short_list(missing)}")

    if t.retrieve is not None:
        problems += _retrieval_problems(t.retrieve, set(declared), required)
    problems += documents_problems(t)
    if t.conversation is not None:
        problems += conv.spec_problems(t.conversation, set(declared), bool(t.examples or t.retrieve))

    if t.output.mode not in OUTPUT_MODES:
        problems.append(f"output.mode must be one of {', '.join(OUTPUT_MODES)}; got {short(t.output.mode)}")
    elif t.output.mode == "likelihood" and not t.output.labels:
        problems.append("output.mode 'likelihood' chooses among output.labels: list the labels")
    if t.output.regex:
        try:
            re.compile(t.output.regex)
        except re.error as exc:
            problems.append(f"output.regex is not a valid regular expression: {exc}")
    if t.output.schema is not None:
        problem = schema_problem(t.output.schema)
        if problem:
            problems.append(f"output.schema {problem}")
        if not t.output.json:
            problems.append("output.schema describes a JSON answer: set output.json to true as well")
    for m in t.metrics:
        if not m.strip():
            problems.append("metric names cannot be empty")
    if t.tools:  # built in code, the tools may be in either form: checked as a file's would be
        problems += normalize_tools(list(t.tools), schema_problem=schema_problem)[1]
    return problems


def _retrieval_problems(retrieve: Retrieval, declared: set[str], required: set[str]) -> list[str]:
    problems = []
    k, pool = retrieve.k, retrieve.pool
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_RETRIEVE_K:
        problems.append(f"retrieve.k must be a whole number from 1 to {MAX_RETRIEVE_K}; got {short(k)}")
    elif len(pool) < k:
        problems.append(f"retrieve.pool has {len(pool)} row(s); it needs at least k={k} to choose from")
    if len(pool) > MAX_RETRIEVE_POOL:
        problems.append(f"retrieve.pool has {len(pool):,} rows; at most {MAX_RETRIEVE_POOL:,} are allowed")
    bad_rows = 0
    for i, row in enumerate(pool, 1):
        unknown = sorted(set(row.values) - declared)
        missing = sorted(required - set(row.values))
        if unknown or missing:
            bad_rows += 1
        if bad_rows > 5:  # a pasted pool of thousands must not give thousands of lines
            continue
        if unknown:
            problems.append(f"retrieve.pool row #{i} sets undeclared variable(s): {short_list(unknown)}")
        if missing:
            problems.append(f"retrieve.pool row #{i} is missing required variable(s): {short_list(missing)}")
    if bad_rows > 5:
        problems.append(f"retrieve.pool: {bad_rows - 5} more row(s) with such problems")
    return problems


def schema_problem(schema: Any) -> str | None:
    """Why ``schema`` is not a usable JSON Schema (checked against its draft's metaschema), or None."""
    if not isinstance(schema, dict):
        return f"must be a mapping (a JSON Schema object); got {type(schema).__name__}"
    try:
        json.dumps(schema)
    except (TypeError, ValueError):
        return "must hold plain JSON values only (quote dates and times)"
    from jsonschema import SchemaError, validators  # only templates with a schema load it

    try:
        validators.validator_for(schema).check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path)
        return f"is not a valid JSON Schema{f' (at {where})' if where else ''}: {exc.message}"
    return None


def validate_template(template: Template) -> None:
    problems = template_problems(template)
    if problems:
        raise TemplateError(problems, template.name)


# ---- helpers ------------------------------------------------------------------------------------------
def _variable_dict(v: Variable) -> dict:
    d: dict[str, Any] = {"name": v.name}
    if v.description:
        d["description"] = v.description
    if v.default is not None:
        d["default"] = v.default
    return d


def _yaml_error(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is not None:
        return f"bad YAML at line {mark.line + 1}, column {mark.column + 1}: {problem}"
    return f"bad YAML: {problem}"


def _content_lines(text: str) -> dict[str, int]:
    """1-based file line where the system and body texts start (for error messages)."""
    try:
        root = yaml.compose(text)
    except yaml.YAMLError:
        return {}
    lines = {}
    for key_node, value_node in getattr(root, "value", []):
        if getattr(key_node, "value", None) in ("system", "body") and isinstance(value_node, yaml.ScalarNode):
            block = value_node.style in ("|", ">")  # a block scalar's text starts on the next line
            lines[key_node.value] = value_node.start_mark.line + 1 + (1 if block else 0)
    return lines


def _first_label(text: str, labels: tuple[str, ...]) -> str | None:
    best: tuple[int, int, str] | None = None
    for label in labels:
        match = re.search(rf"(?<!\w){re.escape(label)}(?!\w)", text, re.IGNORECASE)
        if match and (best is None or (match.start(), -len(label)) < best[:2]):
            best = (match.start(), -len(label), label)
    return best[2] if best else None


def _first_json(text: str) -> str | None:
    decoder = json.JSONDecoder()
    for i, ch in enumerate(text):
        if ch in "{[":
            try:
                value, _ = decoder.raw_decode(text, i)
            except json.JSONDecodeError:
                continue
            return json.dumps(value, ensure_ascii=False)
    return None


class _BlockDumper(yaml.SafeDumper):
    """Writes multi-line text as YAML block scalars (|), so templates stay readable in files and diffs."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.Node:
    if "\n" in value:
        return dumper.represent_scalar("tag:yaml.org,2002:str", value, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", value)


_BlockDumper.add_representer(str, _represent_str)
