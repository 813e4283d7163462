"""Conversation rows: the script format, what the model sees at each turn, and the turn metrics on hand-made
conversations whose verdicts are known (one fails at turn 2)."""

from __future__ import annotations

import json

import pytest

from llmplay.datasets.samples import load_builtin
from llmplay.evaluation import turn_checks
from llmplay.evaluation.metrics.registry import builtin_registry
from llmplay.templates.conversation import ConversationError, Exchange, read_script, transcript
from llmplay.templates.model import TemplateError, parse_template, template_problems
from llmplay.templates.render import build_messages, turn_messages
from tests.conftest import ROOT

SCRIPT = [
    {"role": "user", "content": "My order is 4471."},
    {"role": "assistant", "content": "Thanks, order 4471 noted.", "expect": {"contains": "4471"}},
    {"role": "user", "content": "Repeat my order number."},
    {"role": "assistant", "expect": {"contains": "4471", "max_chars": 40}},
]

TEMPLATE = """
name: chat-test
task: chat
variables: [messages, shop]
system: You work for {{ shop }}.
body: "Customer: {{ turn }}"
conversation: {messages: messages}
"""


def test_a_script_reads_as_exchanges_and_refuses_malformed_ones():
    exchanges = read_script(json.dumps(SCRIPT))
    assert [e.user for e in exchanges] == ["My order is 4471.", "Repeat my order number."]
    assert exchanges[0].reply == "Thanks, order 4471 noted." and exchanges[1].reply is None
    assert exchanges[1].expect == {"contains": "4471", "max_chars": 40}
    # a trailing user message gets an unchecked slot; plain text (typed in the playground) is one user turn
    assert read_script([{"role": "user", "content": "hi"}])[0].expect is None
    assert read_script("Do you sell tents?") == [Exchange("Do you sell tents?")]
    for bad, says in [
        ("[not json", "JSON list"),
        ([], "non-empty list"),
        ([{"role": "assistant", "content": "hi"}], "must follow a user message"),
        ([{"role": "user", "content": "a"}, {"role": "user", "content": "b"}], "two user messages"),
        ([{"role": "system", "content": "x"}], "role 'user' or 'assistant'"),
        ([{"role": "user", "content": "a"}, {"role": "assistant", "expect": "Paris"}], "expect must be a mapping"),
        ([{"role": "user", "content": "a", "score": 1}], "unknown field"),
    ]:
        with pytest.raises(ConversationError, match=says):
            read_script(bad)


def test_each_turn_sees_the_system_message_earlier_turns_and_replies_through_the_body():
    template = parse_template(TEMPLATE)
    exchanges = read_script(SCRIPT)
    values = {"messages": json.dumps(SCRIPT), "shop": "Pinewood"}
    second = turn_messages(template, values, exchanges, ["My own reply."], 1)
    assert second == [
        {"role": "system", "content": "You work for Pinewood."},
        {"role": "user", "content": "Customer: My order is 4471."},
        {"role": "assistant", "content": "My own reply."},
        {"role": "user", "content": "Customer: Repeat my order number."},
    ]
    # the preview (playground, compare): the last turn after the script's replies
    assert build_messages(template, values)[2]["content"] == "Thanks, order 4471 noted."
    assert transcript(exchanges, ["a", "b"]) == (
        "[1] User: My order is 4471.\n[1] Assistant: a\n\n[2] User: Repeat my order number.\n[2] Assistant: b"
    )


def test_conversation_templates_are_validated():
    template = parse_template(TEMPLATE)
    assert template_problems(template) == [] and template.conversation.replies == "own"
    assert parse_template(template.to_yaml()) == template  # round trip keeps the conversation
    bad = TEMPLATE.replace("conversation: {messages: messages}", "conversation: {messages: chat, replies: mine}")
    with pytest.raises(TemplateError) as error:
        parse_template(bad)
    text = str(error.value)
    assert "'chat', which is not a declared variable" in text and "replies must be one of own, scripted" in text
    # {{ turn }} is only known inside a conversation template
    with pytest.raises(TemplateError, match="variable 'turn' is used in the template but not declared"):
        parse_template(TEMPLATE.replace("conversation: {messages: messages}", ""))


def _expect(*turns) -> str:
    return json.dumps(list(turns))


def test_turn_metrics_on_known_conversations():
    expectations = _expect({"contains": "4471"}, {"contains": "4471"})
    passes = json.dumps(["Order 4471, got it.", "It is 4471."])
    fails_at_2 = json.dumps(["Order 4471, got it.", "I do not remember."])
    fails_at_1 = json.dumps(["Hello!", "It is 4471."])
    unfinished = json.dumps(["Order 4471."])  # the conversation failed before turn 2
    preds = [passes, fails_at_2, fails_at_1, unfinished]
    refs = [expectations] * 4
    turns = turn_checks.turn_pass(preds, refs)
    assert turns["per_row"] == [1.0, 0.5, 0.5, 0.5] and turns["score"] == pytest.approx(0.625)
    assert turns["per_turn"] == {"turn 1": 0.75, "turn 2": 0.5}
    whole = turn_checks.conversation_pass(preds, refs)
    assert whole["per_row"] == [1.0, 0.0, 0.0, 0.0] and whole["first_failure"] == {"turn 1": 1, "turn 2": 2}


def test_each_check_and_unchecked_turns():
    assert turn_checks.failed_checks("Returns are FREE  within 30 days", {"contains": ["free within", "30"]}) == []
    assert turn_checks.failed_checks("no idea", {"contains_any": ["yes", "no"]}) == []
    assert turn_checks.failed_checks("Here is a poem about waves", {"not_contains": "waves"}) == [
        "does not contain 'waves'"
    ]
    assert turn_checks.failed_checks("Order #5520", {"regex": r"#\d{4}"}) == []
    assert turn_checks.failed_checks(" pine ", {"equals": "Pine"}) == []
    assert turn_checks.failed_checks("x" * 41, {"max_chars": 40}) == ["at most 40 characters"]
    assert turn_checks.failed_checks(None, {"contains": "a"}) == ["no reply"]
    # a turn with no expect is not checked: only turn 2 counts
    assert turn_checks.turn_pass([json.dumps(["anything", "yes"])], [_expect(None, {"contains": "yes"})])[
        "per_row"
    ] == [1.0]
    with pytest.raises(ValueError, match="row 1: no assistant turn has an expect"):
        turn_checks.turn_pass([json.dumps(["a"])], [_expect(None)])
    with pytest.raises(ValueError, match="row 1, turn 1: unknown check"):
        turn_checks.turn_pass([json.dumps(["a"])], [_expect({"mentions": "a"})])


def test_the_metric_modules_score_with_intervals():
    registry = builtin_registry()
    preds = [json.dumps(["Order 4471.", "It is 4471."]), json.dumps(["Hi", "No idea"])] * 5
    refs = [_expect({"contains": "4471"}, {"contains": "4471"})] * 10
    result, interval = registry.get("conversation_pass").interval(preds, refs, resamples=200)
    assert result.score == 0.5 and result.per_row == [1.0, 0.0] * 5
    assert interval.low < 0.5 < interval.high


def test_the_shipped_sample_and_template_fit_together():
    df, mapping, _ = load_builtin("support-chats")
    template = parse_template((ROOT / "prompts" / "support-conversation.yaml").read_text())
    assert mapping.reference is None and mapping.variables == {"messages": "messages"}
    for value in df["messages"]:
        exchanges = read_script(value)
        assert len(exchanges) >= 2 and any(e.expect for e in exchanges[1:])  # a later turn is checked
        assert all(e.reply for e in exchanges)  # scripted replies everywhere: both reply modes work
        assert build_messages(template, {"messages": value})[0]["role"] == "system"


# ---- playing: which history each turn is generated after (a recording engine stands in for the model) ----------


class _Recorder:
    """Answers every request with "reply to <last user message>" and records each generate call's requests."""

    def __init__(self):
        self.calls = []
        self.backends = []

    def generate(self, model, requests, dtype=None, adapter=None, cancel=None, batch_backend=None):
        from llmplay.engine.types import GenerationResult

        self.calls.append([r.as_messages() for r in requests])
        self.backends.append(batch_backend)
        return [
            GenerationResult(text=f"reply to {r.as_messages()[-1]['content']}", completion_tokens=3, latency_s=0.1)
            for r in requests
        ]


def _column(replies: str):
    from llmplay.evaluation.config import ColumnConfig
    from llmplay.evaluation.plan import PlannedColumn
    from llmplay.models.catalog import ModelSpec

    template = parse_template(TEMPLATE.replace("{messages: messages}", f"{{messages: messages, replies: {replies}}}"))
    spec = ModelSpec(name="m", kind="chat", source="local", location="x")
    return PlannedColumn(0, ColumnConfig("chat-test", "m"), template, None, spec, "generate", {}, "float32")


def _cells():
    from llmplay.evaluation.plan import Cell

    other = [{"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Hi!", "expect": {"contains": "x"}}]
    return [  # the column chose one batch backend for its first turns (EvalRunner._batch_backend)
        Cell(0, values={"messages": json.dumps(SCRIPT), "shop": "Pinewood"}, backend="onnx/int8"),
        Cell(1, values={"messages": json.dumps(other), "shop": "Pinewood"}, backend="onnx/int8"),
    ]


def test_own_replies_play_turn_by_turn_after_the_models_own_earlier_reply():
    import threading

    from llmplay.evaluation import conversations

    engine = _Recorder()
    results = conversations.play(engine, _column("own"), _cells(), threading.Event())
    assert [len(call) for call in engine.calls] == [2, 1]  # turn 1 of both rows together, then row 0's turn 2
    assert engine.backends == ["onnx/int8", "onnx/int8"]  # every turn on the column's backend
    turn2 = engine.calls[1][0]
    assert turn2[2] == {"role": "assistant", "content": "reply to Customer: My order is 4471."}
    (first, details), (second, _) = results
    assert details == {"turns": ["reply to Customer: My order is 4471.", "reply to Customer: Repeat my order number."]}
    assert first.completion_tokens == 6 and first.ok and second.ok
    assert first.text.startswith("[1] User: My order is 4471.\n[1] Assistant: reply to Customer: My order is 4471.")
    assert json.loads(conversations.answer_of(details)) == details["turns"]


def test_scripted_replies_play_every_turn_after_the_scripts_history_in_one_batch():
    import threading

    from llmplay.evaluation import conversations

    engine = _Recorder()
    results = conversations.play(engine, _column("scripted"), _cells(), threading.Event())
    assert [len(call) for call in engine.calls] == [3]  # all turns of all rows at once
    assert engine.calls[0][1][2] == {"role": "assistant", "content": "Thanks, order 4471 noted."}
    assert all(result.ok for result, _ in results)


def test_a_failed_turn_fails_the_conversation_with_the_turn_named():
    import threading

    from llmplay.engine.types import GenerationResult
    from llmplay.evaluation import conversations

    class FailsSecondCall(_Recorder):
        def generate(self, model, requests, **kwargs):
            results = super().generate(model, requests, **kwargs)
            if len(self.calls) == 2:
                return [GenerationResult.failure("out of memory") for _ in requests]
            return results

    results = conversations.play(FailsSecondCall(), _column("own"), _cells(), threading.Event())
    assert results[0][0].error == "turn 2: out of memory" and results[0][1] is None
    assert results[1][0].ok  # the one-turn conversation finished before
