"""An API trace opened in Compare (llmplay/compare/from_trace.py and the Compare tab's open_trace): the request's
message to the version that answered it, the line's active version and its base, with the trace's decoding."""

from __future__ import annotations

import json

import pytest

from llmplay import traces
from llmplay.compare.from_trace import trace_for_compare
from llmplay.engine import Engine
from llmplay.errors import InvalidRequestError
from llmplay.loop.lines import create_line, set_active
from llmplay.models import registry
from llmplay.models.catalog import Catalog
from llmplay.store import connect
from tests.conftest import CHAT_MODEL

ASKED = [
    {"role": "system", "content": "Answer with one word."},
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello"},
    {"role": "user", "content": "Capital of France?"},
]


def version(settings, n: int) -> registry.ModelVersion:
    folder = registry.versions_dir(settings.data_dir) / "caps" / f"job-{n}"
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({"n": n}))
    return registry.register(settings.db_path, name="caps", base_model=CHAT_MODEL, kind="adapter", path=folder)


def record(settings, id_, served, line="caps", request=ASKED):
    traces.record(
        settings, id=id_, user="app", endpoint="chat", model=f"line:{line}", served=served, line=line,
        request=request, params={"max_new_tokens": 12, "temperature": 0.7, "seed": 5, "stop": ["\n"]},
        reply="Paris.", finish_reason="stop", error=None, prompt_tokens=20, completion_tokens=2, latency_s=0.3,
        ttft_s=0.1, backend="fast", stream=False,
    )  # fmt: skip


def test_a_line_trace_opens_against_the_version_that_answered_the_active_one_and_the_base(settings):
    catalog = Catalog(settings=settings, db_path=settings.db_path)
    with connect(settings.db_path) as db:
        create_line(db, "caps", CHAT_MODEL, "financial-sentiment")
        v1, v2 = version(settings, 1), version(settings, 2)
        set_active(db, "caps", v2.id, user="ada", action="promote")
    record(settings, "chatcmpl-old", v1.label)
    handoff = trace_for_compare(settings, catalog, "chatcmpl-old")
    assert [c.model for c in handoff.columns] == [v1.label, v2.label, CHAT_MODEL]
    assert handoff.titles[1].endswith("line caps's active version now") and handoff.outputs == ("Paris.", None, None)
    assert (handoff.message, handoff.system_message) == ("Capital of France?", "Answer with one word.")
    params = handoff.columns[0].params
    assert (params.max_new_tokens, params.temperature, params.seed, params.stop) == (12, 0.7, 5, ("\n",))
    assert any("2 earlier turn(s)" in n for n in handoff.notes)


def test_a_trace_of_one_model_repeats_it_and_a_missing_trace_is_a_clear_error(settings):
    catalog = Catalog(settings=settings, db_path=settings.db_path)
    record(settings, "chatcmpl-plain", CHAT_MODEL, line=None, request=[{"role": "user", "content": "Hi"}])
    handoff = trace_for_compare(settings, catalog, "chatcmpl-plain")
    assert [c.model for c in handoff.columns] == [CHAT_MODEL, CHAT_MODEL]
    assert any("column 2 repeats it" in n for n in handoff.notes)
    with pytest.raises(InvalidRequestError, match="no trace 'nope'"):
        trace_for_compare(settings, catalog, "nope")


def test_the_compare_tab_fills_its_form_from_a_trace(settings, engine):
    from llmplay.templates.library import TemplateLibrary
    from llmplay.ui.tabs.compare.tab import CompareTab
    from llmplay.ui.tabs.compare.view import handoff_status
    from tests.conftest import ROOT

    local = Engine(settings, shared_models=engine.models)
    tab = CompareTab(local, TemplateLibrary.from_settings(settings, folder=ROOT / "prompts"))
    record(settings, "chatcmpl-ui", CHAT_MODEL, line=None, request=[{"role": "user", "content": "Hi there"}])
    handoff = tab.open_trace("chatcmpl-ui")
    assert handoff["error"] is None and handoff["message"] == "Hi there" and handoff["count"] == 2
    assert handoff["columns"][0]["model"] == CHAT_MODEL and handoff["columns"][0]["max_new_tokens"] == 12
    assert handoff_status(handoff).startswith("Opened API trace chatcmpl-ui")
    assert "no trace" in tab.open_trace("missing")["error"]
    local.close()
