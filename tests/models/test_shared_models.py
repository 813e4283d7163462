"""An engine on another data dir can share a second engine's loaded catalog models (the tests' one copy of the
weights per session); what it loads itself stays its own and goes when it closes."""

from __future__ import annotations

from tests.conftest import CHAT_MODEL


def test_a_sharing_engine_reuses_the_owners_base_model_and_closing_it_keeps_it(engine, isolated_engine):
    spec = engine.catalog.get(CHAT_MODEL)
    assert isolated_engine.settings.data_dir != engine.settings.data_dir
    assert isolated_engine.models.get(spec) is engine.models.get(spec)
    assert isolated_engine.models.is_loaded(spec)
    isolated_engine.close()
    assert engine.models.is_loaded(spec), "the owner keeps its models when a sharing engine closes"
