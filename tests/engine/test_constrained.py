"""Constrained decoding on the bundled chat model: with a JSON Schema in the decoding parameters every reply parses
and satisfies the schema (where free decoding of the same prompts does not), the schema changes the cache key, and
a schema the core cannot express is a clear per-row error."""

from __future__ import annotations

import json

import pytest
from jsonschema import Draft202012Validator

from llmplay.engine.constrained import ConstraintError, schema_index
from llmplay.engine.types import GenerationParams, GenerationRequest
from tests.conftest import CHAT_MODEL

SCHEMA = {
    "type": "object",
    "required": ["city", "population", "capital"],
    "properties": {
        "city": {"type": "string", "minLength": 1},
        "population": {"type": "integer"},
        "capital": {"type": "boolean"},
    },
    "additionalProperties": False,
}
PROMPTS = ["Describe Paris in JSON.", "Tell me about the town of Lund, briefly.", "Hello there!"]


@pytest.mark.slow
def test_every_constrained_reply_satisfies_the_schema(engine):
    constrained = GenerationParams(max_new_tokens=48, json_schema=json.dumps(SCHEMA))
    requests = [GenerationRequest.of([{"role": "user", "content": p}], constrained) for p in PROMPTS]
    results = engine.generate(CHAT_MODEL, requests)
    validator = Draft202012Validator(SCHEMA)
    for prompt, result in zip(PROMPTS, results):
        assert result.ok, result.error
        reply = json.loads(result.text)  # parses: the guide only allowed JSON of this schema
        assert list(validator.iter_errors(reply)) == [], (prompt, result.text)
        assert result.completion_tokens < 48 and result.finish_reason == "stop"  # it closed the object itself
    free = engine.generate(
        CHAT_MODEL,
        [GenerationRequest.of([{"role": "user", "content": p}], GenerationParams(max_new_tokens=48)) for p in PROMPTS],
    )
    assert any(_invalid(r.text, validator) for r in free)  # the same model unconstrained: not all valid


def _invalid(text: str, validator) -> bool:
    try:
        return bool(list(validator.iter_errors(json.loads(text))))
    except ValueError:
        return True


def test_the_schema_is_part_of_the_parameters_and_absent_when_free():
    free = GenerationParams()
    assert "json_schema" not in free.to_dict()  # cache keys of free decoding unchanged
    assert GenerationParams(json_schema="{}").to_dict()["json_schema"] == "{}"


@pytest.mark.slow
def test_a_schema_the_core_cannot_express_is_refused_clearly(engine):
    tokenizer = engine.models.get(engine.catalog.get(CHAT_MODEL)).tokenizer
    with pytest.raises(ConstraintError, match="cannot drive constrained decoding"):
        schema_index(json.dumps({"type": "object", "properties": {"a": {"type": "nonsense"}}}), tokenizer)
    bad = GenerationParams(max_new_tokens=8, json_schema=json.dumps({"type": "nonsense"}))
    (result,) = engine.generate(CHAT_MODEL, [GenerationRequest.of([{"role": "user", "content": "hi"}], bad)])
    assert not result.ok and "cannot drive constrained decoding" in result.error


def test_an_evaluation_column_is_constrained_only_where_it_can_be(isolated_engine, tmp_path):
    """The plan refuses a constrained column without a schema or on an endpoint, and a constrained column's
    requests carry the template's schema (so its outputs are cached apart from free decoding's)."""
    import shutil

    from llmplay.engine.types import GenerationParams as Params
    from llmplay.errors import InvalidRequestError
    from llmplay.evaluation.config import RunConfig
    from llmplay.evaluation.runner import EvalRunner
    from llmplay.templates.library import TemplateLibrary
    from tests.conftest import ROOT

    folder = tmp_path / "prompts"
    shutil.copytree(ROOT / "prompts", folder, ignore=shutil.ignore_patterns("README.md"))
    engine = isolated_engine
    runner = EvalRunner(engine, TemplateLibrary(folder, engine.settings.db_path))
    config = RunConfig.from_dict(
        {
            "dataset": "invoices",
            "columns": [
                {"template": "extract-invoice", "model": CHAT_MODEL},
                {"template": "extract-invoice", "model": CHAT_MODEL, "constrained": True},
            ],
            "params": {"max_new_tokens": 8},
        }
    )
    from llmplay.datasets.samples import install_builtins

    install_builtins(engine.settings)
    plan = runner.plan(config)
    free, constrained = (runner._prepare_cells(plan, column)[0] for column in plan.columns)
    assert free.request.params.json_schema is None
    schema = json.loads(constrained.request.params.json_schema)
    assert schema["required"] == ["vendor", "total", "currency", "date"] and free.key != constrained.key
    assert plan.columns[1].config.title.endswith(" · constrained")
    no_schema = RunConfig.from_dict(
        {"dataset": "invoices", "columns": [{"template": "assistant", "model": CHAT_MODEL, "constrained": True}]}
    )
    with pytest.raises(InvalidRequestError, match="follows the template's output.schema; it declares none"):
        runner.plan(no_schema)
    with pytest.raises(InvalidRequestError, match="'constrained' is true or false"):
        RunConfig.from_dict({"dataset": "d", "columns": [{"template": "t", "model": "m", "constrained": "yes"}]})
    assert Params(json_schema=None) == Params()
