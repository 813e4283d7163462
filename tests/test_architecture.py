"""The import rules of llmplay's packages, read from the source (ast: every import, lazy ones inside functions
and ``TYPE_CHECKING`` blocks included), so a wrong-way import fails here with the edge that breaks the rule.

A node of the graph is a top-level package (``llmplay/models/``) or module (``llmplay/compare_results.py``).
``LAYERS`` says which sits above which: a module may import its own node and nodes of lower layers only.
"""

from __future__ import annotations

import ast
import warnings
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "llmplay"

# Lowest first. A new top-level package or module goes in the lowest layer it can: what it imports must be
# below it, what imports it above it.
LAYERS: list[set[str]] = [
    # standard-library helpers and names; the schema (migrations know only sqlite-utils)
    {"errors", "exitcodes", "atomicfile", "csvsafe", "jsonsafe", "yamlsafe", "textdiff", "processes", "names", "eta"},
    # openmp: torch's OpenMP worker pools given back (no torch import); pacing: how often a streaming view redraws
    {"backend_names", "migrations", "openmp", "pacing"},
    {"store", "settings"},  # the database and the configuration: nothing of the app above them
    # shared services with no model in them
    {"limits", "tempfiles", "upload_quota", "worker", "concurrency", "auth", "arena"},
    {"models"},  # what a model is: catalog, sources, trained versions, lines
    {"engine"},  # running models
    {"templates", "datasets"},  # inputs every feature shares
    {"feedback"},
    {"compare", "chat_replies", "traces"},
    {"evaluation"},
    {"training", "optimize"},  # optimize: prompt search scored by the evaluation runner
    {"loop"},  # continual learning: feedback -> training -> evaluation gates -> promotion
    # the app's long-lived objects
    {"services", "api", "backup_files", "backup", "backup_schedule", "backup_cli", "traces_cli", "cliargs"},
    {"ui"},  # the only package that imports gradio
    {"cli"},
]
NEVER = {"models": {"training", "loop", "evaluation", "ui"}}
FOUNDATION = LAYERS[0] | LAYERS[1]  # all that store and settings may import
MAX_LINES = 600
# Modules still over MAX_LINES while they are being split: this list only shrinks (a new long module may not
# join it; one under the limit is named in a warning until it leaves - a warning, not a failure, so that the
# split and this list need not land in one commit).
TOO_LONG: set[str] = set()


def _node(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "llmplay"


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _imports(module: str, path: Path, source: str | None = None) -> list[str]:
    """Every module name ``module`` imports, absolute."""
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    names = []
    for node in ast.walk(ast.parse(path.read_text() if source is None else source, str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: from the package, up level - 1
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                names.append(".".join(base + ([node.module] if node.module else [])))
            else:
                names.append(node.module)
    return names


def _edges() -> dict[tuple[str, str], list[str]]:
    """(from node, to node) -> the "module imports module" lines that make the edge."""
    edges = defaultdict(list)
    for module, path in _modules().items():
        for name in _imports(module, path):
            if name.startswith("llmplay.") and _node(name) != _node(module):
                edges[_node(module), _node(name)].append(f"{module} imports {name}")
    return edges


def _report(edges: dict[tuple[str, str], list[str]], bad: list[tuple[str, str]]) -> str:
    return "\n".join(f"{a} -> {b}: " + "; ".join(sorted(set(edges[a, b]))) for a, b in sorted(bad))


def _layer() -> dict[str, int]:
    return {name: i for i, layer in enumerate(LAYERS) for name in layer}


def test_every_package_has_a_layer():
    layer = _layer()
    nodes = {_node(m) for m in _modules()} - {"llmplay"}
    missing = sorted(nodes - set(layer))
    assert not missing, f"Add these to LAYERS in {Path(__file__).name}, in the lowest layer they fit: {missing}"


def test_no_import_goes_up_a_layer():
    edges, layer = _edges(), _layer()
    upward = [(a, b) for a, b in edges if a in layer and b in layer and layer[b] > layer[a]]
    assert not upward, "Imports that go up a layer:\n" + _report(edges, upward)


def test_no_cycle_between_packages():
    edges = _edges()
    graph = defaultdict(set)
    for a, b in edges:
        graph[a].add(b)
    # Tarjan's strongly connected components: any with two or more nodes is a cycle.
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(component)

    for v in sorted(set(graph)):
        if v not in index:
            visit(v)
    inside = [(a, b) for a, b in edges if any({a, b} <= c for c in cycles)]
    assert not cycles, f"Import cycles {[sorted(c) for c in cycles]}:\n" + _report(edges, inside)


def test_models_never_imports_what_uses_models():
    edges = _edges()
    bad = [(a, b) for a, b in edges if b in NEVER.get(a, ())]
    assert not bad, "models must not know training, the loop, evaluation or the UI:\n" + _report(edges, bad)


def test_store_and_settings_import_only_the_foundation():
    edges = _edges()
    bad = [(a, b) for a, b in edges if a in ("store", "settings") and b not in FOUNDATION]
    assert not bad, f"store and settings may import only {sorted(FOUNDATION)}:\n" + _report(edges, bad)


def test_only_the_ui_imports_gradio():
    bad = [
        f"{module} imports {name}"
        for module, path in _modules().items()
        for name in _imports(module, path)
        if name and name.split(".")[0] == "gradio" and _node(module) != "ui"
    ]
    assert not bad, "gradio outside llmplay/ui/:\n" + "\n".join(bad)


def test_no_module_is_over_the_line_limit():
    root = PACKAGE.parent
    lengths = {str(p.relative_to(root)): len(p.read_text().splitlines()) for p in PACKAGE.rglob("*.py")}
    long = sorted(f"{name} ({n} lines)" for name, n in lengths.items() if n > MAX_LINES and name not in TOO_LONG)
    assert not long, f"Over {MAX_LINES} lines: split by the `# ----` dividers: {long}"
    done = sorted(name for name in TOO_LONG if lengths.get(name, 0) <= MAX_LINES)
    if done:
        warnings.warn(f"Now within {MAX_LINES} lines (or gone): remove from TOO_LONG: {done}", stacklevel=1)


def test_the_parser_sees_lazy_and_relative_imports():
    source = "import os\nfrom . import catalog\ndef f():\n    from ..loop.lines import get_line\n"
    found = _imports("llmplay.models.trained", PACKAGE / "models" / "trained.py", source)
    assert found == ["os", "llmplay.models", "llmplay.loop.lines"]
    edges = _edges()  # and the real graph has the edges everyone knows of
    assert ("ui", "engine") in edges and ("training", "models") in edges and ("store", "migrations") in edges


# A tab may use its own modules; another tab's only where they are one feature (the Leaderboard shows the Arena's
# ratings) or a plain helper module beside it (the Playground's turns). Tabs otherwise meet in ui/app.py and at
# ui/refresh.py's signals; what two tabs share lives one level up, in ui/.
TAB_IMPORTS_ALLOWED = {("leaderboard", "arena"), ("playground", "chat_turns")}


def test_no_tab_imports_another_tab():
    crossing = []
    for module, path in _modules().items():
        if not module.startswith("llmplay.ui.tabs."):
            continue
        tab = module.split(".")[3]
        for name in _imports(module, path):
            if name and name.startswith("llmplay.ui.tabs.") and len(name.split(".")) > 3:
                other = name.split(".")[3]
                if other != tab and (tab, other) not in TAB_IMPORTS_ALLOWED:
                    crossing.append(f"{module} imports {name}")
    assert not crossing, "Move what tabs share into llmplay/ui/ (e.g. common.py):\n" + "\n".join(crossing)
