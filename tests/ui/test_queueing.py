"""Model-running events share one concurrency group; cheap events are not queued behind them."""

from __future__ import annotations

import pytest

from llmplay.services import Services
from llmplay.ui import build_app
from llmplay.ui.queueing import GENERATION_LIMIT

MODEL_EVENTS = {"chat", "compare", "reroll", "arena_battle", "run_once"}
CHEAP_EVENTS = {"labeling_next", "labeling_submit", "render_preview", "leaderboard", "diff_columns"}


@pytest.fixture(scope="module")
def demo(engine):
    app = build_app(Services.build(engine))
    yield app
    app.close()


def test_every_model_event_joins_the_generation_group_and_cheap_ones_do_not(demo):
    by_name = {fn.api_name: fn for fn in demo.fns.values() if isinstance(fn.api_name, str)}
    wanted = MODEL_EVENTS | CHEAP_EVENTS
    assert set(by_name) >= wanted, sorted(wanted - set(by_name))
    for name in MODEL_EVENTS:
        fn = by_name[name]
        assert (fn.concurrency_id, fn.concurrency_limit) == ("generation", GENERATION_LIMIT), name
    for name in CHEAP_EVENTS:
        assert by_name[name].concurrency_id != "generation", name
    # The form's own (private) run events share it too: every streaming model event is in the group.
    grouped = [fn for fn in demo.fns.values() if fn.concurrency_id == "generation"]
    assert len(grouped) > len(MODEL_EVENTS), "the Compare form, its re-rolls and the template run button"


def test_the_queue_does_not_summarise_every_event_for_a_monitoring_page(engine, monkeypatch):
    """Gradio's default recomputes a pandas summary of the last 10,000 events after each one (40-90 ms of CPU a
    timer tick on this app); the app's queue never does, unless the operator asks (the variable set)."""
    monkeypatch.delenv("GRADIO_ANALYTICS_CACHE_FREQUENCY", raising=False)
    app = build_app(Services.build(engine))
    try:
        assert app._queue.ANAYLTICS_CACHE_FREQUENCY >= 2**31  # (Gradio's spelling)
    finally:
        app.close()
    monkeypatch.setenv("GRADIO_ANALYTICS_CACHE_FREQUENCY", "5")
    app = build_app(Services.build(engine))
    try:
        assert app._queue.ANAYLTICS_CACHE_FREQUENCY == 5
    finally:
        app.close()


def test_a_bad_setting_is_refused_with_its_name(monkeypatch):
    import importlib

    import llmplay.concurrency as concurrency  # read once here for the tabs and the API (ui/queueing.py)

    monkeypatch.setenv("LLMPLAY_QUEUE_MAX", "lots")
    with pytest.raises(ValueError, match="LLMPLAY_QUEUE_MAX must be a whole number"):
        importlib.reload(concurrency)
    monkeypatch.setenv("LLMPLAY_QUEUE_MAX", "0")
    with pytest.raises(ValueError, match="at least 1"):
        importlib.reload(concurrency)
    monkeypatch.delenv("LLMPLAY_QUEUE_MAX")
    importlib.reload(concurrency)
    assert concurrency.QUEUE_MAX == 64


def test_the_playground_stop_is_not_queued(demo):
    """Stop must reach a running reply at once: it skips the queue (whose workers can all be busy)."""
    stops = [fn for fn in demo.fns.values() if getattr(fn.fn, "__name__", "") == "stop"]
    assert len(stops) == 1, [fn.fn for fn in stops]
    assert stops[0].queue is False
