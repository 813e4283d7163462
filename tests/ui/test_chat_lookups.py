"""A chat message consults the catalog once: a trained version's lookup is a SQLite read, so the Playground
resolves the name where it enters the engine and hands the engine the spec."""

from __future__ import annotations

from llmplay.ui.tabs.playground import Playground
from tests.conftest import CHAT_MODEL


def test_one_chat_message_is_one_catalog_lookup(engine, monkeypatch):
    lookups = []
    get = engine.catalog.get

    def counted(name):
        lookups.append(name)
        return get(name)

    monkeypatch.setattr(engine.catalog, "get", counted)
    *_, (history, status) = Playground(engine).chat("Say hi.", [], CHAT_MODEL, max_new_tokens=2)
    assert history[-1]["role"] == "assistant", status
    assert lookups == [CHAT_MODEL]
