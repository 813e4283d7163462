"""Rendering gives the exact text; chat models get their own chat template; the request is what the engine runs."""

from __future__ import annotations

import types

import pytest

from llmplay.engine import GenerationParams
from llmplay.models.catalog import Catalog, ModelSpec
from llmplay.templates.model import Example, Template, TemplateError, Variable, parse_template
from llmplay.templates.render import base_model_prompt, build_messages, fill_values, render_for_model
from tests.conftest import BASE_MODEL, CHAT_MODEL

REVIEW = Template(
    name="review",
    task="classification",
    system="Labels: {{ labels | join('/') }}.",
    body=(
        "{% if title %}Title: {{ title | upper }}\n{% endif %}"
        "Review: {{ text }}\n"
        "{% for label in labels %}{{ loop.index }}) {{ label }}\n{% endfor %}"
        "Answer:"
    ),
    variables=(
        Variable("text", "the review"),
        Variable("title", "optional title", default=""),
        Variable("labels", "choices", default=["good", "bad"]),
    ),
    examples=(Example({"text": "Loved it", "title": "wow"}, "good"),),
)


def test_variables_loops_conditionals_and_few_shot_give_exact_messages():
    messages = build_messages(REVIEW, {"text": "Meh", "labels": ["good", "bad", "meh"]})
    assert messages == [
        {"role": "system", "content": "Labels: good/bad/meh."},
        {"role": "user", "content": "Title: WOW\nReview: Loved it\n1) good\n2) bad\nAnswer:"},
        {"role": "assistant", "content": "good"},
        {"role": "user", "content": "Review: Meh\n1) good\n2) bad\n3) meh\nAnswer:"},
    ]


def test_base_model_text_concatenates_examples_then_the_prompt():
    text = base_model_prompt(build_messages(REVIEW, {"text": "Meh"}))
    assert text == (
        "Labels: good/bad.\n\n"
        "Title: WOW\nReview: Loved it\n1) good\n2) bad\nAnswer:\ngood\n\n"
        "Review: Meh\n1) good\n2) bad\nAnswer:\n"
    )


def test_values_are_checked_and_json_lists_accepted():
    assert fill_values(REVIEW, {"text": "x", "labels": '["a", "b"]', "title": None})["labels"] == ["a", "b"]
    with pytest.raises(TemplateError) as exc:
        fill_values(REVIEW, {"txt": "x", "labels": "[oops"})
    problems = "\n".join(exc.value.problems)
    assert "unknown variable 'txt'" in problems
    assert "missing value for required variable(s): text" in problems
    assert "expects a JSON list" in problems


def test_invalid_template_does_not_render():
    with pytest.raises(TemplateError, match="unknown task"):
        build_messages(Template(name="x", task="poetry", body="hi"), {})


@pytest.mark.slow
def test_chat_model_gets_its_own_chat_template(engine):
    rendered = render_for_model(engine, REVIEW, CHAT_MODEL, {"text": "Meh"})
    tokenizer = engine.models.get(engine.catalog.get(CHAT_MODEL)).tokenizer
    expected = tokenizer.apply_chat_template(rendered.messages, add_generation_prompt=True, tokenize=False)
    assert rendered.text == expected
    assert "<|im_start|>assistant\ngood<|im_end|>" in rendered.text
    assert rendered.token_count == len(tokenizer(expected, add_special_tokens=False)["input_ids"])
    assert rendered.context_length == 8192 and rendered.warnings == []


@pytest.mark.slow
def test_base_model_gets_the_plain_text_and_the_engine_runs_that_request(engine):
    rendered = render_for_model(engine, REVIEW, BASE_MODEL, {"text": "Meh"}, GenerationParams(max_new_tokens=2))
    assert rendered.text == base_model_prompt(rendered.messages)
    assert rendered.request.prompt == rendered.text
    [result] = engine.generate(BASE_MODEL, [rendered.request])
    assert result.ok and result.prompt_tokens == rendered.token_count


@pytest.mark.slow
def test_prompt_longer_than_the_context_warns(engine):
    smol = engine.catalog.get(CHAT_MODEL)
    catalog = Catalog()
    catalog.add(ModelSpec(**{**smol.to_dict(), "name": "smol-ctx64", "context_length": 64}), persist=False)
    tiny_engine = types.SimpleNamespace(catalog=catalog, models=engine.models, settings=engine.settings)
    rendered = render_for_model(tiny_engine, REVIEW, "smol-ctx64", {"text": "word " * 80})
    assert rendered.token_count > 64
    assert any("more than smol-ctx64's context of 64 tokens" in w for w in rendered.warnings)


def test_endpoint_models_get_messages_without_a_token_count():
    catalog = Catalog()
    remote = ModelSpec(name="remote", kind="chat", source="endpoint", location="http://127.0.0.1:9/v1")
    catalog.add(remote, persist=False)
    rendered = render_for_model(types.SimpleNamespace(catalog=catalog), REVIEW, "remote", {"text": "Meh"})
    assert rendered.token_count is None and rendered.messages[-1]["content"].startswith("Review: Meh")
    assert rendered.request.messages is not None


def test_yaml_body_renders_like_the_dataclass():
    t = parse_template(REVIEW.to_yaml())
    assert build_messages(t, {"text": "Meh"}) == build_messages(REVIEW, {"text": "Meh"})
