"""Tool calls: a template's tools (parsed, checked, round-tripped, carried into the request), how each model gets
them (a chat template's own tools support, or the system-message block), endpoints' ``tool_calls`` read as the
same text, the API's request checks and reply shape, and the four metrics on hand-made cases whose scores are
worked out in the comments. No model generates here (the real-model runs: test_toolcalls_eval.py,
tests/api/test_tool_calls.py)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import httpx
import pytest

from llmplay import datasets as ds
from llmplay.api.openai_shapes import ApiError, completion_body, parse_chat
from llmplay.engine.openai_compat import OpenAICompatProvider
from llmplay.engine.prompt_text import render_prompt
from llmplay.engine.tools import call_text, normalize_tools, parse_calls, tools_block
from llmplay.engine.types import GenerationParams, GenerationRequest, GenerationResult
from llmplay.evaluation.config import MetricConfig
from llmplay.evaluation.metrics import get_metric
from llmplay.evaluation.runner import _prompt_text
from llmplay.evaluation.scorer import ColumnReplies, ScoringError, metric_inputs
from llmplay.evaluation.toolcalls import (
    reference_call,
    reply_answer,
    tool_args_match,
    tool_args_valid,
    tool_called,
    tool_no_call,
)
from llmplay.models.catalog import ModelSpec
from llmplay.templates.model import TemplateError, parse_template
from llmplay.templates.render import build_request
from tests.conftest import ROOT

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}
MONEY = {  # the bare form: normalised to OpenAI's
    "name": "convert_currency",
    "parameters": {
        "type": "object",
        "properties": {"amount": {"type": "number"}, "to": {"type": "string"}},
        "required": ["amount", "to"],
    },
}
TOOLS = [WEATHER, normalize_tools([MONEY])[0][0]]

TEMPLATE = """\
name: helper
task: chat
variables: [request]
body: "{{ request }}"
tools:
  - type: function
    function:
      name: get_weather
      description: The weather in a city.
      parameters:
        type: object
        properties:
          city: {type: string}
          unit: {type: string, enum: [celsius, fahrenheit]}
        required: [city]
        additionalProperties: false
  - name: convert_currency
    parameters:
      type: object
      properties:
        amount: {type: number}
        to: {type: string}
      required: [amount, to]
metrics: [tool_called]
"""


def call(name: str, **arguments) -> str:
    return call_text(name, arguments)


OSLO = json.dumps({"name": "get_weather", "arguments": {"city": "Oslo"}})


# ---- reading calls ------------------------------------------------------------------------------------------


def test_calls_are_read_from_tool_call_blocks_bare_json_and_openai_entries():
    assert parse_calls('Sure. <tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call>') == (
        [{"name": "get_weather", "arguments": {"city": "Oslo"}}],
        False,
    )
    # Arguments as JSON text (OpenAI's wire form); a block cut by max_new_tokens before its closing tag.
    got, _ = parse_calls('<tool_call>{"name": "f", "arguments": "{\\"x\\": 1}"}</tool_call')
    assert got == [{"name": "f", "arguments": {"x": 1}}]
    # No tags: a JSON object with a name and arguments anywhere in the reply; two blocks are two calls.
    assert parse_calls('I will call {"name": "f", "arguments": {}} now')[0] == [{"name": "f", "arguments": {}}]
    assert len(parse_calls(call("f", a=1) + call("g", b=2))[0]) == 2
    # Plain text, or JSON that is not a call: no call. A block with no call in it: a call that could not be read.
    assert parse_calls("It is sunny in Oslo.") == ([], False)
    assert parse_calls('{"city": "Oslo"}') == ([], False)
    assert parse_calls("<tool_call>get_weather(Oslo)</tool_call>") == ([], True)


def test_the_reference_is_a_call_or_none_and_anything_else_names_the_row():
    assert reference_call(OSLO, 0) == {"name": "get_weather", "arguments": {"city": "Oslo"}}
    assert reference_call({"name": "f", "arguments": '{"a": 1}'}, 0) == {"name": "f", "arguments": {"a": 1}}
    for nothing in ("none", "None", "", "null", None, float("nan")):
        assert reference_call(nothing, 0) is None
    with pytest.raises(ValueError, match="row 3: the reference must be a call"):
        reference_call("get_weather(Oslo)", 2)
    with pytest.raises(ValueError, match="row 1"):
        reference_call('{"arguments": {}}', 0)  # no name


def test_a_tool_templates_answer_is_the_first_call_as_json_or_none():
    template = parse_template(TEMPLATE)
    reply = "Checking. " + call("get_weather", city="Oslo") + call("convert_currency", amount=1, to="EUR")
    assert json.loads(reply_answer(template, reply)) == {"name": "get_weather", "arguments": {"city": "Oslo"}}
    assert reply_answer(template, "It is sunny.") == "none"
    assert reply_answer(template, "<tool_call>oops</tool_call>") is None  # tried a call: unparseable


# ---- metrics on hand-made rows ------------------------------------------------------------------------------

# Row by row: right call / wrong argument value / wrong tool / no call where one is expected / a call where none
# is expected / rightly no call / an unreadable call / an argument of the wrong type (a valid call otherwise).
PREDICTIONS = [
    OSLO,
    json.dumps({"name": "get_weather", "arguments": {"city": "Bergen"}}),
    json.dumps({"name": "convert_currency", "arguments": {"amount": 3, "to": "EUR"}}),
    "none",
    OSLO,
    "none",
    None,
    json.dumps({"name": "convert_currency", "arguments": {"amount": "lots", "to": "EUR"}}),
]
REFERENCES = [OSLO, OSLO, OSLO, OSLO, "none", "", OSLO, '{"name": "convert_currency", "arguments": {"amount": 3, '
              '"to": "EUR"}}']  # fmt: skip


def test_tool_called_is_the_right_tool_or_rightly_none():
    result = tool_called(PREDICTIONS, REFERENCES)
    # rows 1, 2 (right tool, wrong value), 6 (none, none), 8 (right tool, bad argument): 4 of 8
    assert result["per_row"] == [1, 1, 0, 0, 0, 1, 0, 1] and result["score"] == 0.5 and result["row_mean"]
    assert result["wrong"] == {"get_weather": {"convert_currency": 1, "no call": 1, "unreadable": 1}}
    assert result["unparseable"] == 1 and result["no_call_rows"] == 2


def test_tool_args_valid_checks_the_called_tools_schema():
    result = tool_args_valid(PREDICTIONS, REFERENCES, TOOLS)
    # Valid: rows 1, 2 (Bergen is a valid city), 3 (a valid call, of the wrong tool), 6 (rightly none): 4 of 8.
    assert result["per_row"] == [1, 1, 1, 0, 0, 1, 0, 0]
    assert result["failures"][3] == "no call" and "no call is expected" in result["failures"][4]
    assert result["failures"][6] == "no readable call" and "amount" in result["failures"][7]
    # Not one of the tools; an argument the schema does not allow.
    other = tool_args_valid(
        [json.dumps({"name": "book_flight", "arguments": {}}), call("get_weather", city="Oslo", wind=True)],
        [OSLO, OSLO],
        TOOLS,
    )
    assert other["per_row"] == [0, 0] and "not one of the template's tools" in other["failures"][0]
    with pytest.raises(ValueError, match="the tools are not valid"):
        tool_args_valid([OSLO], [OSLO], [{"name": "bad name!"}])


def test_tool_args_match_needs_the_right_tool_and_equal_arguments():
    result = tool_args_match(PREDICTIONS, REFERENCES)
    # Only row 1 (exact) and row 6 (rightly none): 2 of 8.
    assert result["per_row"] == [1, 0, 0, 0, 0, 1, 0, 0] and result["score"] == 0.25
    assert result["arguments"] == {"get_weather.city": 0.5, "convert_currency.amount": 0.0, "convert_currency.to": 1.0}
    # Values compare normalised (text ignoring case and spacing, numbers by value); an extra argument is a miss.
    loose = [call("get_weather", city=" oslo "), call("convert_currency", amount="3.0", to="eur"), call("get_weather",
             city="Oslo", unit="celsius")]  # fmt: skip
    refs = [OSLO, '{"name": "convert_currency", "arguments": {"amount": 3, "to": "EUR"}}', OSLO]
    assert tool_args_match(loose, refs)["per_row"] == [1, 1, 0]


def test_tool_no_call_is_calling_exactly_when_a_call_is_expected():
    result = tool_no_call(PREDICTIONS, REFERENCES)
    # Calls where expected: rows 1, 2, 3, 8; rightly none: row 6. Missed: 4, 7 (unreadable); a false call: 5.
    assert result["per_row"] == [1, 1, 1, 0, 0, 1, 0, 1]
    assert result["false_calls"] == 1 and result["missed_calls"] == 2


def test_the_metrics_load_as_evaluate_modules_with_intervals():
    result, interval = get_metric("tool_called").interval(PREDICTIONS, REFERENCES, resamples=200)
    assert result.score == 0.5 and result.row_mean and len(result.per_row) == 8
    assert 0 <= interval.low <= 0.5 <= interval.high <= 1
    valid = get_metric("tool_args_valid").compute(PREDICTIONS, REFERENCES, tools=TOOLS)
    assert valid.per_row == [1, 1, 1, 0, 0, 1, 0, 0]


def test_the_scorer_gives_tool_metrics_the_templates_tools_and_refuses_a_template_without():
    template = parse_template(TEMPLATE)
    replies = ColumnReplies(template, [OSLO], [OSLO], [{"request": "x"}], [{"name": "get_weather", "arguments": {}}])
    preds, refs, kwargs = metric_inputs(MetricConfig("tool_args_valid"), replies)
    assert kwargs["tools"] == list(template.tools) and json.loads(refs[0])["name"] == "get_weather"
    assert metric_inputs(MetricConfig("tool_no_call"), replies)[2] == {}
    plain = parse_template("name: p\ntask: qa\nvariables: [q]\nbody: '{{ q }}'\n")
    with pytest.raises(ScoringError, match="offers no tools"):
        metric_inputs(MetricConfig("tool_called"), ColumnReplies(plain, ["x"], ["x"], [{}], ["none"]))


# ---- templates ----------------------------------------------------------------------------------------------


def test_a_templates_tools_are_normalised_checked_and_round_trip():
    template = parse_template(TEMPLATE)
    assert [t["function"]["name"] for t in template.tools] == ["get_weather", "convert_currency"]
    assert template.tools[1] == {"type": "function", "function": {"name": "convert_currency", "description": "",
                                 "parameters": MONEY["parameters"]}}  # fmt: skip
    again = parse_template(template.to_yaml())
    assert again == template and again.tools == template.tools
    assert "tools" not in parse_template(TEMPLATE.split("tools:")[0]).to_dict()


@pytest.mark.parametrize(
    ("tools", "problem"),
    [
        ("tools: {name: f}", "tools must be a list"),
        ("tools: [{name: f}, {name: f}]", "tools 'f' is declared twice"),
        ("tools: [{name: 'get weather'}]", "name must be 1-64 letters"),
        ("tools: [{name: f, parameters: {type: objekt}}]", "tools 'f': parameters is not a valid JSON Schema"),
        ("tools: [{name: f, parameters: {type: string}}]", "parameters must describe an object"),
        ("tools: [{name: f, params: {}}]", "unknown field(s) params"),
        ("tools: [{type: retrieval, function: {name: f}}]", "type must be 'function'"),
        ("tools: [plain text]", "must be a mapping"),
    ],
)
def test_bad_tools_are_refused_with_a_message_naming_the_problem(tools, problem):
    text = "name: t\ntask: chat\nvariables: [q]\nbody: '{{ q }}'\n" + tools + "\n"
    with pytest.raises(TemplateError) as err:
        parse_template(text)
    assert any(problem in p for p in err.value.problems), err.value.problems


def test_the_request_carries_the_tools_and_the_local_render_shows_them(model_cache_dir):
    from transformers import AutoTokenizer

    template = parse_template(TEMPLATE)
    request, _ = build_request(template, "chat", {"request": "Weather in Oslo?"})
    assert request.tools == template.tools and hash(request)  # still hashable
    base, _ = build_request(template, "base", {"request": "Weather in Oslo?"})
    assert base.tools is None and "get_weather(city: string" in base.prompt  # a base model reads them as text
    folder = next(model_cache_dir.glob("smollm2-135m-instruct-*"), None)
    if folder is None:
        pytest.skip("the SmolLM2 tokenizer is not in the test model cache")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    chat = SimpleNamespace(spec=SimpleNamespace(kind="chat"), tokenizer=tokenizer)
    # SmolLM2's chat template ignores tools: they come in the system message, with the call form asked for.
    text = render_prompt(chat, request)
    assert tools_block(template.tools) in text and "<tool_call>" in text
    assert text.index("get_weather(city: string") < text.index("Weather in Oslo?")
    without = render_prompt(chat, GenerationRequest.of(request.as_messages()))
    assert "get_weather" not in without
    # A chat template that renders tools itself is used as it is.
    tokenizer.chat_template = (
        "{% for t in tools or [] %}[TOOL {{ t.function.name }}]{% endfor %}"
        "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}<assistant>"
    )
    assert render_prompt(chat, request) == "[TOOL get_weather][TOOL convert_currency]<user>Weather in Oslo?<assistant>"
    # One that fails on tools gets the block too.
    tokenizer.chat_template = (
        "{% if tools %}{{ raise_exception('no tools here') }}{% endif %}"
        "{% for m in messages %}<{{ m.role }}>{{ m.content }}{% endfor %}<assistant>"
    )
    assert render_prompt(chat, request).startswith("<system>You can call these tools")


def test_the_eval_cache_key_of_an_endpoint_row_changes_with_its_tools():
    template = parse_template(TEMPLATE)
    request, _ = build_request(template, "chat", {"request": "Weather in Oslo?"})
    plain = GenerationRequest.of(request.as_messages())
    assert _prompt_text(None, plain) == json.dumps(plain.as_messages())  # unchanged without tools
    fewer = GenerationRequest.of(request.as_messages(), tools=request.tools[:1])
    assert len({_prompt_text(None, plain), _prompt_text(None, request), _prompt_text(None, fewer)}) == 3


def test_the_sample_dataset_has_a_call_or_none_per_row_against_the_shipped_templates_tools():
    df, mapping, _ = ds.load_builtin("tool-requests")
    template = parse_template((ROOT / "prompts" / "tool-assistant.yaml").read_text(), "tool-assistant")
    names = {t["function"]["name"] for t in template.tools}
    expected = [reference_call(r, i) for i, r in enumerate(df[mapping.reference])]
    assert len(df) == 20 and sum(c is None for c in expected) == 5
    assert {c["name"] for c in expected if c} == names
    # Every reference call is valid against its tool's schema: a perfect model scores 1 everywhere.
    refs = list(df[mapping.reference])
    perfect = [json.dumps(c) if c else "none" for c in expected]
    for metric in (tool_called, tool_no_call, tool_args_match):
        assert metric(perfect, refs)["score"] == 1.0
    assert tool_args_valid(perfect, refs, template.tools)["score"] == 1.0


# ---- endpoints: tools sent, tool_calls read back ------------------------------------------------------------


def test_an_endpoint_gets_the_tools_and_its_tool_calls_read_as_the_canonical_text(settings):
    sent = []

    def server(request: httpx.Request) -> httpx.Response:
        sent.append(json.loads(request.content))
        message = {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function",
                   "function": {"name": "get_weather", "arguments": '{"city": "Oslo"}'}}]}  # fmt: skip
        return httpx.Response(200, json={"choices": [{"message": message, "finish_reason": "tool_calls"}]})

    spec = ModelSpec(name="ep", kind="chat", source="endpoint", location="http://127.0.0.1:9/v1", api_model="m")
    provider = OpenAICompatProvider(spec, settings)
    provider._client = httpx.Client(transport=httpx.MockTransport(server))
    template = parse_template(TEMPLATE)
    request, _ = build_request(template, "chat", {"request": "Weather in Oslo?"}, GenerationParams(max_new_tokens=8))
    [result] = provider.generate([request])
    assert result.error is None and sent[0]["tools"] == list(template.tools)
    assert result.text == call("get_weather", city="Oslo")
    assert reply_answer(template, result.text) == OSLO
    # Streamed, a request with tools is asked for whole (a call arrives in fragments) and ends the same.
    events = list(provider.stream(request))
    assert sent[1].get("stream") is None and events[-1].result.text == result.text
    # Without tools nothing about tools is sent.
    provider.generate([GenerationRequest.of(request.as_messages())])
    assert "tools" not in sent[2]


# ---- llmplay's API: tools in, tool_calls out ----------------------------------------------------------------


def _chat(**extra) -> dict:
    return {"model": "m", "messages": [{"role": "user", "content": "Weather in Oslo?"}], **extra}


def test_the_api_reads_tools_and_refuses_malformed_ones():
    parsed = parse_chat(_chat(tools=[WEATHER, MONEY]), 256)
    assert parsed.tools and parsed.request.tools[1]["function"]["name"] == "convert_currency"
    assert not parse_chat(_chat(tools=[WEATHER], tool_choice="none"), 256).tools
    for tools, message in [
        ({"name": "f"}, "'tools' must be a non-empty list"),
        ([], "'tools' must be a non-empty list"),
        ([{"name": "f", "parameters": {"type": 5}}], "'tools' is not valid: tools 'f': parameters is not a valid"),
        ([{"name": "f"}, {"name": "f"}], "declared twice"),
        ([{"type": "function"}], "must be a mapping"),
    ]:
        with pytest.raises(ApiError, match=message) as err:
            parse_chat(_chat(tools=tools), 256)
        assert err.value.status == 400 and err.value.param == "tools"
    with pytest.raises(ApiError, match="'tool_choice' must be 'auto' or 'none'"):
        parse_chat(_chat(tools=[WEATHER], tool_choice="required"), 256)


def test_the_api_answers_a_call_as_tool_calls_and_plain_text_as_content():
    parsed = parse_chat(_chat(tools=[WEATHER]), 256)
    body = completion_body(parsed, "chatcmpl-1", GenerationResult(text=call("get_weather", city="Oslo")), "m")
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
    [entry] = choice["message"]["tool_calls"]
    assert entry["type"] == "function" and entry["id"].startswith("call_")
    assert entry["function"] == {"name": "get_weather", "arguments": '{"city": "Oslo"}'}
    text = completion_body(parsed, "chatcmpl-2", GenerationResult(text="It is sunny."), "m")["choices"][0]
    assert text["message"] == {"role": "assistant", "content": "It is sunny."} and text["finish_reason"] == "stop"
    # A request without tools never turns a reply into calls.
    plain = completion_body(parse_chat(_chat(), 256), "c", GenerationResult(text=call("f")), "m")["choices"][0]
    assert plain["message"]["content"] == call("f") and plain["finish_reason"] == "stop"
