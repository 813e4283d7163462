"""Events no person started, and events whose progress is hidden, report their progress to one hidden component
(llmplay/ui/progress.py): the page's loading-status walk, run on every status message of every event, stays the
size of what people clicked. bench/page_cpu.py measures what that saves in the browser."""

from __future__ import annotations

import json
import urllib.request

import gradio as gr

from llmplay.ui.progress import PERSON, quiet_progress


def test_automatic_and_hidden_events_point_at_the_sink_and_clicks_keep_their_outputs():
    with gr.Blocks() as demo:
        box, out, other = gr.Textbox(), gr.Markdown(), gr.Markdown()
        button, timer = gr.Button(), gr.Timer(1)
        loaded = demo.load(lambda: "", None, out)
        after_load = loaded.then(lambda: "", None, other)
        ticked = timer.tick(lambda: "", None, out)
        changed = box.change(lambda x: x, box, out)
        clicked = button.click(lambda: "", None, out)
        after_click = clicked.then(lambda: "", None, other).then(lambda: "", None, out)
        hidden_click = button.click(lambda: "", None, other, show_progress="hidden")
        chosen = demo.load(lambda: "", None, [out, other], show_progress_on=other)
    sink = quiet_progress(demo)
    by = {name: demo.fns[dep["id"]] for name, dep in
          dict(loaded=loaded, after_load=after_load, ticked=ticked, changed=changed, clicked=clicked,
               after_click=after_click, hidden_click=hidden_click, chosen=chosen).items()}  # fmt: skip
    assert len({id(fn) for fn in by.values()}) == 8
    for name in ("loaded", "after_load", "ticked", "changed", "hidden_click"):
        assert by[name].show_progress_on == [sink] and by[name].show_progress == "hidden", name
    for name in ("clicked", "after_click"):  # a person clicked and waits: the spinner stays on the outputs
        assert by[name].show_progress_on is None and by[name].show_progress == "full", name
    assert by["chosen"].show_progress_on == [other]  # an event that chose where its progress shows keeps it
    assert not sink.visible


def test_the_page_gets_one_progress_target_for_everything_no_person_clicked(ui_url):
    """What the browser receives (/config): every page-load, timer, change and hidden event shows its progress
    on the one hidden sink; only events a person starts and waits for keep their outputs."""
    with urllib.request.urlopen(ui_url.rstrip("/") + "/config", timeout=60) as reply:
        config = json.load(reply)
    (sink,) = [c["id"] for c in config["components"] if c.get("props", {}).get("elem_id") == "progress-sink"]
    by_id = {d["id"]: d for d in config["dependencies"]}
    quiet, shown = [], []

    def person(dep) -> bool:
        events = {event for _, event in dep["targets"]}
        if events <= {"then", "success", "failure"} and dep.get("trigger_after") is not None:
            return person(by_id[dep["trigger_after"]])
        return bool(events & PERSON)

    chosen = {}  # changes a person waits for: where they show their progress, named where they are wired
    for dep in config["dependencies"]:
        if dep["show_progress"] != "hidden" and person(dep):
            shown.append(dep)
        elif dep["show_progress_on"] not in (None, [sink]) and dep["show_progress"] != "hidden":
            chosen[dep["api_name"]] = dep["show_progress_on"]
        else:
            quiet.append(dep)
            assert dep["show_progress_on"] == [sink], (dep["id"], dep["targets"], dep["show_progress_on"])
            assert dep["show_progress"] == "hidden", dep["id"]
    summary = [c["id"] for c in config["components"] if c.get("props", {}).get("elem_id") == "eval-summary"]
    assert chosen == {"eval_results": summary}  # a run picked in Results: its summary shows it loading
    loads = [d for d in config["dependencies"] if {e for _, e in d["targets"]} == {"load"}]
    assert len(loads) >= 20 and all(d in quiet for d in loads)  # the page load's ~30 events
    assert any(d["api_name"] == "chat" for d in shown)  # a Playground reply still shows its progress
    assert len(quiet) > len(shown) / 2
