"""Where the page shows an event's progress: on its outputs only when a person started it and may watch it.

Gradio's page keeps a loading status for every component that has ever been an event's progress target (its
outputs, unless ``show_progress_on`` names others), and on each status message of any event (pending, progress,
done) it updates every one of them, each found by a walk of the whole component tree (gradio 6.31,
``update_loading_stati_state``). On this app's ~940 components that walk is what the browser spends its time on:
the ~50 events of a page load cost ~20 s of browser CPU, and an evaluation watched in the Evaluate tab, polled
once a second, kept a core of a two-core laptop busy in the page and took twice as long.

So events whose progress is hidden anyway, and those no person clicked (page load, timers, changes, and what
they chain), report their progress to one hidden component: the set the page walks stays the outputs of what
people clicked. A change a person waits for names where its progress shows (``show_progress_on``, e.g. the
summary of an evaluation run picked in the Results tab) and keeps it.
"""

from __future__ import annotations

import gradio as gr

PERSON = frozenset({"click", "submit", "upload", "retry", "edit", "undo", "like"})  # a person starts it and waits
CHAINED = frozenset({"then", "success", "failure"})  # runs after another event: automatic when that one is


def quiet_progress(demo: gr.Blocks) -> gr.HTML:
    """Point the progress of ``demo``'s hidden and automatic events at one hidden component (returned); call it
    once every event is wired, inside or after the ``with demo:`` block."""
    with demo:
        sink = gr.HTML("", visible=False, padding=False, elem_id="progress-sink")
    for fn in demo.fns.values():
        if fn.show_progress_on is not None:  # the event chose where its progress shows
            continue
        if fn.show_progress == "hidden" or _automatic(demo, fn):
            fn.show_progress, fn.show_progress_on = "hidden", [sink]
    return sink


def _automatic(demo: gr.Blocks, fn) -> bool:
    triggers = {event for _, event in fn.targets}
    if triggers and triggers <= CHAINED and fn.trigger_after is not None:
        return _automatic(demo, demo.fns[fn.trigger_after])
    return not triggers & PERSON
