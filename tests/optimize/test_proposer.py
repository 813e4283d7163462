"""The instruction proposer: a real local OpenAI-compatible server (tests/servers.py ``scripted``) as an endpoint
proposer for what a model cannot be made to say on cue (good, garbage, failing), and the bundled SmolLM2 as a
real proposer whose output is whatever it is."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from llmplay.errors import InvalidRequestError
from llmplay.models.catalog import ModelSpec
from llmplay.optimize.candidates import _join, _parts
from llmplay.optimize.proposer import END, START, WrongRow, parse_reply, propose_instructions
from llmplay.templates.model import parse_template, validate_template
from llmplay.templates.render import build_request
from tests.conftest import CHAT_MODEL, ROOT

INPUT = "Sentence: {{ text }}"
WRONG = [
    WrongRow({"text": "Quarterly profit was flat at EUR 3 mn."}, "neutral", "positive"),
    WrongRow({"text": "The bank cut its outlook and its shares slid."}, "negative", None),
]
GOOD = "Label the news for the company's investors: positive if it got better, negative if worse, else neutral."


def _start():
    return parse_template((ROOT / "prompts" / "financial-sentiment.yaml").read_text(encoding="utf-8"))


def _chat(text: str) -> tuple[int, dict, dict]:
    choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
    return 200, {"choices": [choice], "usage": {"prompt_tokens": 50, "completion_tokens": 20}}, {}


def _endpoint(engine, server, kind: str = "chat", name: str = "proposer-ep") -> str:
    engine.catalog.add(ModelSpec(name, kind, "endpoint", server.url, api_model="scripted"), persist=False)
    return name


def _only_instruction_changed(start, template) -> str:
    """The candidate's new instruction, after checking that nothing else in the template differs."""
    instruction, input_, last = _parts(start.body)
    new = _parts(template.body)
    assert new is not None and new[1:] == (input_, last)
    assert template.body == _join(new[0], input_, last) and new[0] != instruction
    assert replace(template, body=start.body) == start
    validate_template(template)
    return new[0]


def _left_out(notes: list[str]) -> int:
    return sum(int(m.group(1)) for note in notes if (m := re.search(r": (\d+) of \d+ proposals left out", note)))


# ---- an endpoint proposer ----------------------------------------------------------------------------------
def test_a_proposed_instruction_replaces_the_instruction_lines_only(isolated_engine, scripted):
    second = "Decide whether the sentence is good, bad or neither for investors; reply positive, negative or neutral."
    server = scripted(_chat(f"{START}\n{GOOD}\n{END}"), _chat(f"Here is a better one:\n{START}{second}{END}\nDone."))
    start = _start()
    found, notes = propose_instructions(isolated_engine, _endpoint(isolated_engine, server), start, WRONG, n=2, seed=7)

    assert notes == []
    assert [changed for _, changed in found] == [
        "proposed instruction 1 (by proposer-ep)",
        "proposed instruction 2 (by proposer-ep)",
    ]
    assert [_only_instruction_changed(start, t) for t, _ in found] == [GOOD, second]
    for template, _ in found:
        assert template.body.endswith("\n" + INPUT)
        request, _ = build_request(template, "chat", {"text": "Sales rose."})
        assert request.messages[-1].content == f"{GOOD if template is found[0][0] else second}\nSentence: Sales rose."
        assert parse_template(template.to_yaml()) == template

    # what the proposer was asked: the task, the current instruction, each wrong row with its reference and answer
    bodies = [body for _, path, _, body in server.seen]
    assert [path for _, path, _, _ in server.seen] == ["/v1/chat/completions"] * 2
    assert [(b["seed"], b["temperature"], b["stop"]) for b in bodies] == [(7, 0.8, [END]), (8, 0.8, [END])]
    prompt = bodies[0]["messages"][-1]["content"]
    current = _parts(start.body)[0]
    assert f"{START}\n{current}\n{END}" in prompt and start.description in prompt
    assert "positive, negative, neutral" in prompt and start.output.format in prompt
    assert "Quarterly profit was flat at EUR 3 mn." in prompt
    assert "Correct answer: neutral" in prompt and "The model's answer: positive" in prompt
    assert "Correct answer: negative" in prompt and "The model's answer: (no usable answer)" in prompt
    assert INPUT not in prompt  # the template's Jinja is not shown (a proposer would copy it)


def test_a_base_endpoint_continues_after_the_opening_marker(isolated_engine, scripted):
    reply = {
        "choices": [{"index": 0, "text": f"  {GOOD}\n\nAnd another idea that rambles on.", "finish_reason": "length"}]
    }
    server = scripted((200, reply, {}))
    start = _start()
    found, notes = propose_instructions(isolated_engine, _endpoint(isolated_engine, server, "base"), start, WRONG, n=1)
    assert notes == [] and [_only_instruction_changed(start, t) for t, _ in found] == [GOOD]
    [(_, path, _, body)] = server.seen
    assert path == "/v1/completions" and body["prompt"].endswith(f"{START}\n")


def test_garbage_replies_give_no_candidate_and_a_note_per_reason(isolated_engine, scripted):
    start = _start()
    current = _parts(start.body)[0]
    server = scripted(
        _chat(f"{START}   {END}"),
        _chat(f"{START}Classify {{{{ text }}}} as positive or negative.{END}"),
        _chat(f"{START}{'very ' * 400}long{END}"),
        _chat(f"{START}\n{current}\n{END}"),
        _chat(""),
    )
    found, notes = propose_instructions(isolated_engine, _endpoint(isolated_engine, server), start, WRONG, n=5)
    assert found == []
    assert len(server.seen) == 5
    assert notes == [
        "proposer proposer-ep: 2 of 5 proposals left out: the reply held no instruction",
        "proposer proposer-ep: 1 of 5 proposals left out: it holds Jinja syntax ({{, {% or {#) that would be "
        "rendered as part of the template",
        "proposer proposer-ep: 1 of 5 proposals left out: longer than 600 characters",
        "proposer proposer-ep: 1 of 5 proposals left out: same as the current instruction",
    ]


def test_a_repeated_proposal_is_kept_once(isolated_engine, scripted):
    server = scripted(_chat(f"{START}{GOOD}{END}"), _chat(f"{START}  {GOOD.upper()}\n{END}"))
    start = _start()
    found, notes = propose_instructions(isolated_engine, _endpoint(isolated_engine, server), start, WRONG, n=2)
    assert [_only_instruction_changed(start, t) for t, _ in found] == [GOOD]
    assert notes == ["proposer proposer-ep: 1 of 2 proposals left out: same as an earlier proposal"]


def test_a_failing_server_gives_a_note_and_no_exception(isolated_engine, scripted):
    server = scripted(*[(500, {"error": {"message": "CUDA out of memory"}}, {})] * 3)
    found, notes = propose_instructions(isolated_engine, _endpoint(isolated_engine, server), _start(), WRONG, n=3)
    assert found == [] and len(notes) == 1
    assert notes[0].startswith("proposer proposer-ep failed: ") and "CUDA out of memory" in notes[0]
    assert notes[0].endswith("; the search goes on with the deterministic edits")
    assert len(server.seen) == 3  # one ask, retried by the provider; not asked again n times


def test_a_bad_reply_after_one_proposal_keeps_it_and_a_closed_server_gives_a_note(isolated_engine, scripted):
    server = scripted(_chat(f"{START}{GOOD}{END}"), (200, "<html>not json</html>", {}))
    start = _start()
    found, notes = propose_instructions(isolated_engine, _endpoint(isolated_engine, server), start, WRONG, n=3)
    assert [_only_instruction_changed(start, t) for t, _ in found] == [GOOD]
    assert len(notes) == 1 and notes[0].startswith("proposer proposer-ep failed: ")

    server.close()
    found, notes = propose_instructions(isolated_engine, "proposer-ep", start, WRONG, n=2)
    assert found == [] and len(notes) == 1
    assert "failed: " in notes[0] and "deterministic edits" in notes[0]


def test_a_local_proposer_that_fails_to_load_gives_a_note(isolated_engine, tmp_path):
    isolated_engine.catalog.add(ModelSpec("broken-local", "chat", "local", str(tmp_path)), persist=False)
    found, notes = propose_instructions(isolated_engine, "broken-local", _start(), WRONG, n=2)
    assert found == [] and len(notes) == 1
    assert notes[0].startswith("proposer broken-local failed: ") and "deterministic edits" in notes[0]


def test_a_body_of_unknown_layout_is_not_sent_to_the_proposer(isolated_engine, scripted):
    server = scripted(_chat(f"{START}{GOOD}{END}"))
    start = replace(_start(), body="{% if text %}Sentence: {{ text }}{% endif %}\nIs it positive?")
    found, notes = propose_instructions(isolated_engine, _endpoint(isolated_engine, server), start, WRONG)
    assert found == [] and server.seen == []
    assert notes == ["proposer proposer-ep not asked: the body is not instruction lines and input lines"]


@pytest.mark.parametrize("name, says", [("no-such-model", "Unknown model"), ("all-minilm-l6-v2", "encoder model")])
def test_a_proposer_that_cannot_write_is_bad_input(isolated_engine, name, says):
    with pytest.raises(InvalidRequestError, match=says):
        propose_instructions(isolated_engine, name, _start(), WRONG)


def test_replies_are_read_between_the_markers_else_the_first_paragraph():
    assert parse_reply(f"Sure.\n{START}\n  Be brief.  \n{END} trailing") == "Be brief."
    assert parse_reply(f"{START}Be brief. And") == "Be brief. And"  # the closing marker cut off by the stop
    assert parse_reply('\n\n"Instruction: Be brief."\n\nMore words.') == "Be brief."
    assert parse_reply("") == ""


# ---- the bundled chat model as the proposer ----------------------------------------------------------------
def test_smollm2_proposes_instructions_or_each_reply_is_accounted_for(engine):
    start = _start()
    found, notes = propose_instructions(engine, CHAT_MODEL, start, WRONG, n=2, seed=3, max_new_tokens=48)
    assert len(found) <= 2
    assert len(found) + _left_out(notes) == 2, notes  # every reply is a candidate or a note saying why not
    assert not any("failed" in note for note in notes)
    instructions = [_only_instruction_changed(start, t) for t, _ in found]
    assert len(set(instructions)) == len(instructions)
    assert all(0 < len(i) <= 600 and "{{" not in i for i in instructions)
    for template, changed in found:
        assert changed.endswith(f"(by {CHAT_MODEL})")
        assert parse_template(template.to_yaml()) == template
