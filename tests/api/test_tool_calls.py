"""Tool calls through llmplay's own OpenAI-compatible API, with the bundled SmolLM2 generating: the official
``openai`` client sends ``tools`` and reads ``message.tool_calls`` (streamed and not), malformed tools are a 400,
and an evaluation column whose model is an endpoint pointing at this API scores the same calls as the local
model (tools sent in the request body, ``tool_calls`` read back as the same text)."""

from __future__ import annotations

import json
import shutil

import openai
import pytest

from llmplay.auth.keys import create_key
from llmplay.datasets import ColumnMapping, load_builtin, save_dataset
from llmplay.engine import GenerationParams
from llmplay.engine.tools import parse_calls
from llmplay.evaluation.config import ColumnConfig, MetricConfig, RunConfig
from llmplay.evaluation.results import get_run, load_results
from llmplay.evaluation.runner import EvalRunner
from llmplay.models.catalog import ModelSpec
from llmplay.templates.library import TemplateLibrary
from llmplay.templates.model import parse_template
from llmplay.templates.render import build_request
from tests.conftest import CHAT_MODEL, ROOT

pytestmark = pytest.mark.slow
TEMPLATE = parse_template((ROOT / "prompts" / "tool-assistant.yaml").read_text(), "tool-assistant")
METRICS = ("tool_called", "tool_args_valid", "tool_args_match", "tool_no_call")
# The served API decodes on the numerics of a local evaluation column (transformers float32), so an endpoint
# column's calls can equal the local column's word for word (on onnx int8 one argument differed).
SERVER_BACKEND = "transformers"


@pytest.fixture(scope="module")
def client(server):
    url, settings, _ = server
    return openai.OpenAI(base_url=url + "/v1", api_key=create_key(settings, "vic"), max_retries=0, timeout=600)


def _messages(request: str) -> list[dict]:
    """The template's system message and few-shot turns, then ``request``: what the evaluation sends."""
    return build_request(TEMPLATE, "chat", {"request": request})[0].as_messages()


def test_the_openai_client_sends_tools_and_reads_tool_calls(server, client):
    _, _, api_engine = server
    messages, tools = _messages("What's the weather like in Lisbon right now?"), list(TEMPLATE.tools)
    reply = client.chat.completions.create(model=CHAT_MODEL, messages=messages, tools=tools, temperature=0,
                                           max_tokens=48)  # fmt: skip
    choice = reply.choices[0]
    # The same greedy reply the engine gives for this request, read as calls.
    request, _ = build_request(TEMPLATE, "chat", {"request": "What's the weather like in Lisbon right now?"},
                               GenerationParams(max_new_tokens=48))  # fmt: skip
    [local] = api_engine.generate(CHAT_MODEL, [request])
    expected, _ = parse_calls(local.text)
    assert expected and expected[0]["name"] == "get_weather", local.text
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    calls = choice.message.tool_calls
    assert [(c.type, c.function.name) for c in calls] == [("function", e["name"]) for e in expected]
    assert json.loads(calls[0].function.arguments) == expected[0]["arguments"]
    assert calls[0].id.startswith("call_")
    # Streamed: the call comes whole in one chunk, then finish_reason "tool_calls".
    chunks = list(client.chat.completions.create(model=CHAT_MODEL, messages=messages, tools=tools, temperature=0,
                                                 max_tokens=48, stream=True))  # fmt: skip
    deltas = [c.choices[0].delta for c in chunks if c.choices and c.choices[0].delta.tool_calls]
    assert len(deltas) == 1 and deltas[0].tool_calls[0].function.name == "get_weather"
    assert json.loads(deltas[0].tool_calls[0].function.arguments) == expected[0]["arguments"]
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["tool_calls"]


def test_malformed_tools_are_a_400_naming_the_problem(client):
    question = [{"role": "user", "content": "Weather in Oslo?"}]
    bad = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "objekt"}}}]
    with pytest.raises(openai.BadRequestError, match="parameters is not a valid JSON Schema") as err:
        client.chat.completions.create(model=CHAT_MODEL, messages=question, tools=bad, max_tokens=4)
    assert err.value.status_code == 400 and err.value.body["param"] == "tools"
    with pytest.raises(openai.BadRequestError, match="declared twice"):
        client.chat.completions.create(model=CHAT_MODEL, messages=question, tools=list(TEMPLATE.tools[:1]) * 2,
                                       max_tokens=4)  # fmt: skip


def test_an_endpoint_column_on_the_served_api_scores_the_same_calls_as_the_local_model(
    server, isolated_engine, tmp_path, monkeypatch
):
    url, settings, _ = server
    monkeypatch.setenv("TOOLS_TEST_KEY", create_key(settings, "vic"))
    engine = isolated_engine
    served = ModelSpec("served-smol", "chat", "endpoint", url + "/v1", api_model=CHAT_MODEL,
                       api_key_env="TOOLS_TEST_KEY")  # fmt: skip
    engine.catalog.add(served, persist=False)
    df, _, _ = load_builtin("tool-requests")
    rows = df.iloc[[0, 5, 16]].reset_index(drop=True)  # weather, currency, no tool wanted
    save_dataset(engine.settings, "tools3", rows, ColumnMapping({"request": "request"}, "call"))
    folder = tmp_path / "prompts"
    shutil.copytree(ROOT / "prompts", folder, ignore=shutil.ignore_patterns("README.md"))
    runner = EvalRunner(engine, TemplateLibrary(folder, engine.settings.db_path))
    params = GenerationParams(max_new_tokens=48)
    columns = (ColumnConfig("tool-assistant", CHAT_MODEL, params=params),
               ColumnConfig("tool-assistant", "served-smol", params=params))  # fmt: skip
    run_id = runner.run(RunConfig(dataset="tools3", columns=columns, metrics=tuple(MetricConfig(m) for m in METRICS)))
    info = get_run(engine.settings, run_id)
    assert info.status == "done" and info.failed_cells == 0, info
    results = load_results(engine.settings, run_id)
    local = [results.cells[(r, 0)].answer for r in range(3)]
    endpoint = [results.cells[(r, 1)].answer for r in range(3)]
    assert endpoint == local, (local, endpoint)
    assert json.loads(local[0])["name"] == "get_weather" and json.loads(local[1])["name"] == "convert_currency"
    for name in METRICS:
        assert results.column_scores(1, name) == results.column_scores(0, name), name
    assert results.column_scores(0, "tool_called")[:2] == [1.0, 1.0]
