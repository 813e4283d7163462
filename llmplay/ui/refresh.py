"""No stale view: what shows stored state reads it again when it is opened and after the actions that change
it, and the open tab lives in the page's URL.

- ``View``: a view's reload (a declared handler, its inputs and outputs); ``reload_on(view, *triggers)`` wires it
  to events: a tab's ``select`` (opening it), an accordion's ``expand``, the page load, a change signal.
- ``Signals``: the app's change signals, one hidden ``gr.State`` per kind of stored state (``VOTES``, ``QUEUES``).
  An action that changes the state bumps its signal (``bump(demo, VOTES, event)``, a no-op in a page built
  without the app); a view that shows the state reloads on ``changed(demo, VOTES)``. Tabs never import each
  other: they meet at the signal.
- ``wire_tab_url``: the open tab (and sub-tab) is written to the URL (``?tab=leaderboard``,
  ``?tab=labeling&sub=labeling-review``) as the user switches, and read back on load, so a reload or a shared
  link opens it (a tab the caller's role may not use is not opened).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs

import gradio as gr

from llmplay.ui.access import PUBLIC, declare, declared

VOTES = "votes"  # Arena votes: the Leaderboard
QUEUES = "queues"  # feedback queues created or changed: every queue picker
PRIVATE = {"api_visibility": "private", "show_progress": "hidden"}


@dataclass
class View:
    """A view of stored state: ``fn(*inputs)`` gives its ``outputs`` read afresh (``fn`` declares its permission)."""

    fn: Callable
    inputs: list
    outputs: list


def reload_on(view: View, *triggers) -> None:
    """Re-read ``view`` on each of ``triggers`` (event listeners such as ``tab.select``, ``demo.load``)."""
    if triggers:
        gr.on(list(triggers), view.fn, view.inputs, view.outputs, **PRIVATE)


class Signals:
    """The app's change signals (see the module docstring); kept on the Blocks as ``demo.llmplay_signals``."""

    def __init__(self):
        self.states: dict[str, gr.State] = {}

    def state(self, name: str) -> gr.State:
        if name not in self.states:  # made inside the Blocks the first time a tab names it
            self.states[name] = gr.State(0)
        return self.states[name]


def install_signals(demo: gr.Blocks) -> Signals:
    demo.llmplay_signals = Signals()
    return demo.llmplay_signals


@declare(PUBLIC)
def _next(count) -> int:
    return int(count or 0) + 1


def bump(demo: gr.Blocks, name: str, *events) -> None:
    """After each of ``events`` (a dependency, e.g. ``button.click(...)``), signal that ``name`` changed."""
    signals = getattr(demo, "llmplay_signals", None)
    if signals is None:
        return
    state = signals.state(name)
    for event in events:
        event.then(_next, state, state, **PRIVATE)


def changed(demo: gr.Blocks, name: str) -> list:
    """The trigger of signal ``name`` (for ``reload_on``); none in a page built without the app."""
    signals = getattr(demo, "llmplay_signals", None)
    return [signals.state(name).change] if signals is not None else []


def block_by_elem_id(demo: gr.Blocks, elem_id: str):
    """The component with ``elem_id`` (a hook into a tab without importing its internals), or None."""
    return next((b for b in demo.blocks.values() if getattr(b, "elem_id", None) == elem_id), None)


# ---- the open tab in the URL --------------------------------------------------------------------------------
READ_URL_JS = "() => window.location.search"


def _tab_url_js(main_ids: list[str], sub_ids: dict[str, list[str]]) -> str:
    """JS run once the page load has opened the URL's tab: from then on, whenever the tabs shown change (a click,
    or a handler that switches tabs), write them to ?tab=<main>[&sub=<sub-tab>], keeping other parameters. It
    reads the page itself, so events fired while tabs mount cannot mislead it."""
    return f"""() => {{
  const shown = (ids) => ids.find((id) =>
    document.querySelector(`button[role=tab][data-tab-id="${{id}}"][aria-selected=true]`));
  const sync = () => {{
    const main = shown({json.dumps(main_ids)});
    if (!main) return;
    const sub = shown(({json.dumps(sub_ids)})[main] || []);
    const url = new URL(window.location.href);
    url.searchParams.set("tab", main);
    if (sub) url.searchParams.set("sub", sub); else url.searchParams.delete("sub");
    if (url.href !== window.location.href) window.history.replaceState(window.history.state, "", url);
  }};
  let timer = null;
  new MutationObserver(() => {{ clearTimeout(timer); timer = setTimeout(sync, 50); }}).observe(
    document.body, {{attributes: true, attributeFilter: ["aria-selected"], subtree: true}});
  setTimeout(sync, 50);
}}"""


def url_tabs(search: str) -> tuple[str, str]:
    """(tab, sub) named by a URL's query string ('?tab=labeling&sub=labeling-review'); '' when absent."""
    query = parse_qs((search or "").lstrip("?"))
    return (query.get("tab") or [""])[0].strip(), (query.get("sub") or [""])[0].strip()


def wire_tab_url(demo: gr.Blocks, main: gr.Tabs, allowed: Callable[[gr.Request, str], bool]) -> None:
    """Keep the open tab (``main``'s) and sub-tab (of any gr.Tabs inside a main tab) in the URL, and open them on
    load. ``allowed(request, tab_id)``: whether the caller's role may use that tab."""
    parents: dict[str, gr.Tabs] = {}  # tab id -> the gr.Tabs it belongs to
    owner: dict[str, str] = {}  # sub-tab id -> the main tab it sits in
    for tab in main.children:
        if isinstance(tab, gr.Tab) and tab.id is not None:
            parents[str(tab.id)] = main
            for nested in _nested_tabs(tab):
                for sub in nested.children:
                    if isinstance(sub, gr.Tab) and sub.id is not None:
                        parents[str(sub.id)], owner[str(sub.id)] = nested, str(tab.id)
    main_ids = [i for i, t in parents.items() if t is main]
    sub_ids = {m: [s for s, o in owner.items() if o == m] for m in main_ids}

    outputs = list(dict.fromkeys(parents.values()))  # main first, then each sub-tab group once
    search = gr.Textbox(visible=False)

    def open_from_url(query: str, request: gr.Request):
        tab, sub = url_tabs(query)
        picks = {}
        if tab in parents and parents[tab] is main and allowed(request, tab):
            picks[main] = tab
            if sub in owner and owner[sub] == tab and allowed(request, sub):
                picks[parents[sub]] = sub
        return [gr.Tabs(selected=picks[t]) if t in picks else gr.skip() for t in outputs]

    opened = demo.load(declared(PUBLIC, open_from_url), search, outputs, js=READ_URL_JS, **PRIVATE)
    opened.then(None, None, None, js=_tab_url_js(main_ids, sub_ids))


def _nested_tabs(block) -> list[gr.Tabs]:
    found = []
    for child in getattr(block, "children", []) or []:
        if isinstance(child, gr.Tabs):
            found.append(child)
        else:
            found.extend(_nested_tabs(child))
    return found
