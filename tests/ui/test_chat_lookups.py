"""A chat message (or a template's run once) consults the catalog once: a trained version's lookup is a SQLite
read, so the tab resolves the name where it enters the engine and hands the engine the spec."""

from __future__ import annotations

from llmplay.templates import TemplateLibrary
from llmplay.ui.tabs.playground import Playground
from llmplay.ui.tabs.templates import TemplatesTab
from tests.conftest import CHAT_MODEL, ROOT


def counted_lookups(engine, monkeypatch) -> list[str]:
    lookups = []
    get = engine.catalog.get

    def counted(name):
        lookups.append(name)
        return get(name)

    monkeypatch.setattr(engine.catalog, "get", counted)
    return lookups


def test_one_chat_message_is_one_catalog_lookup(engine, monkeypatch):
    lookups = counted_lookups(engine, monkeypatch)
    *_, (history, status) = Playground(engine).chat("Say hi.", [], CHAT_MODEL, max_new_tokens=2)
    assert history[-1]["role"] == "assistant", status
    assert lookups == [CHAT_MODEL]


def test_a_templates_run_once_is_one_catalog_lookup(engine, monkeypatch, tmp_path):
    library = TemplateLibrary(tmp_path / "templates", tmp_path / "templates.db", shipped=ROOT / "prompts")
    tab = TemplatesTab(engine, library)
    lookups = counted_lookups(engine, monkeypatch)
    *_, (reply, stats) = tab.run_once("financial-sentiment", CHAT_MODEL, {"text": "Profit rose."}, max_new_tokens=2)
    assert reply and "tokens/s" in stats, stats
    assert lookups == [CHAT_MODEL]
