"""The Arena's default pool (issue 21): chat models only, as Chatbot Arena pools them; base models by choice, or
while fewer than two chat models exist (a battle needs two), which the tab says."""

from __future__ import annotations

from llmplay.engine import Engine
from llmplay.models.catalog import ModelSpec
from llmplay.ui.tabs.arena import _with_base_models, default_pool, pool_note
from tests.conftest import BASE_MODEL, CHAT_MODEL


def test_with_one_chat_model_the_base_models_join_and_the_tab_says_why(settings):
    engine = Engine(settings)  # the bundled catalog: one chat model, one base model; nothing loads
    assert default_pool(engine) == [CHAT_MODEL, BASE_MODEL]
    assert "Only 1 chat model" in pool_note(engine) and "base models are in the pool" in pool_note(engine)
    engine.close()


def test_with_two_chat_models_the_pool_is_chat_models_and_base_models_join_by_choice(settings):
    engine = Engine(settings)
    engine.catalog.add(ModelSpec(name="other-chat", kind="chat", source="hub", location="org/other-chat"), False)
    assert default_pool(engine) == [CHAT_MODEL, "other-chat"]
    assert pool_note(engine) == ""
    # "Include base models" adds them to what is picked, and takes them out again
    assert _with_base_models(engine, True, [CHAT_MODEL, "other-chat"]).value == [CHAT_MODEL, "other-chat", BASE_MODEL]
    assert _with_base_models(engine, False, [CHAT_MODEL, BASE_MODEL]).value == [CHAT_MODEL]
    engine.close()
