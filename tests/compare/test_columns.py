"""Building each column's request: free messages, follow-ups and re-rolls, templates, seeds, errors."""

from __future__ import annotations

from llmplay.compare import (
    ColumnConfig,
    prepare_column,
    prepare_reroll,
)
from llmplay.engine import GenerationParams
from llmplay.templates import TemplateLibrary, build_request
from tests.compare.scripted import GREEDY
from tests.conftest import BASE_MODEL, CHAT_MODEL, ROOT


# ---- building each column's request -----------------------------------------------------------------------
def test_free_message_goes_to_chat_models_as_messages_and_to_base_models_as_raw_text(engine):
    chat = prepare_column(engine, ColumnConfig(CHAT_MODEL, GREEDY), [], "Hi", "Be brief.")
    assert chat.error is None
    assert chat.request.as_messages() == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}]
    base = prepare_column(engine, ColumnConfig(BASE_MODEL, GREEDY), [], "The capital of France is")
    assert base.request.prompt == "The capital of France is" and base.request.messages is None


def test_follow_up_continues_the_conversation_and_reroll_repeats_the_last_turn(engine):
    history = [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
    ]
    follow = prepare_column(engine, ColumnConfig(CHAT_MODEL, GREEDY), history, "And then?", "ignored now")
    assert follow.request.as_messages() == history + [{"role": "user", "content": "And then?"}]
    again = prepare_reroll(engine, ColumnConfig(CHAT_MODEL, GREEDY), history)
    assert again.request.as_messages() == history[:2]
    assert "Nothing to re-roll" in prepare_reroll(engine, ColumnConfig(CHAT_MODEL, GREEDY), []).error


def test_template_column_sends_the_rendered_template(engine):
    template = TemplateLibrary.from_settings(engine.settings, folder=ROOT / "prompts").load("financial-sentiment")
    values = {"text": "Profits rose 20%."}
    config = ColumnConfig(CHAT_MODEL, GREEDY, template="financial-sentiment")
    prepared = prepare_column(engine, config, [], "", template=template, values=values)
    expected, _ = build_request(template, "chat", values, GREEDY)
    assert prepared.request == expected
    assert prepared.request.as_messages()[0]["role"] == "system"


def test_sampling_gets_a_seed_to_reproduce_and_reroll_draws_a_new_one(engine):
    sampled = ColumnConfig(CHAT_MODEL, GenerationParams(temperature=0.8))
    first = prepare_column(engine, sampled, [], "Hi")
    assert isinstance(first.config.params.seed, int) and first.request.params.seed == first.config.params.seed
    history = first.request.as_messages() + [{"role": "assistant", "content": "Hey"}]
    seeds = {prepare_reroll(engine, first.config, history).config.params.seed for _ in range(5)}
    assert len(seeds) > 1, "a re-roll of a sampled column must not repeat the same seed"
    assert prepare_column(engine, ColumnConfig(CHAT_MODEL, GREEDY), [], "Hi").config.params.seed is None


def test_problems_become_the_column_error(engine):
    assert "Unknown model" in prepare_column(engine, ColumnConfig("no-such-model"), [], "Hi").error
    assert "message is empty" in prepare_column(engine, ColumnConfig(CHAT_MODEL), [], "  ").error
    assert "history entry" in prepare_column(engine, ColumnConfig(CHAT_MODEL), [{"text": "hi"}], "Hi").error
    assert "history entry" in prepare_reroll(engine, ColumnConfig(CHAT_MODEL), ["hi"]).error
