"""The UI API's half of the limits table (tests/test_limits.py has the engine, config and command halves).

Through gradio_client on the live app, every numeric input of the Playground, Templates, Evaluate, Compare
and Arena endpoints is sent just past each end of its range and must come back refused with a message that
names it, before anything generates. At the bounds the value must pass: those calls name a model, dataset or
run that does not exist, so the reply is that error (nothing generates) and never one about the number.
"""

from __future__ import annotations

import pytest

from llmplay.limits import MAX_ID, MAX_ROWS
from llmplay.ui.common import ERROR
from tests.conftest import CHAT_MODEL
from tests.test_limits import BOMB, GENERATION, at, past

DECODING = {"max_new_tokens": 4, "temperature": 0, "top_p": 1, "top_k": 0, "repetition_penalty": 1, "seed": ""}
NOPE = "no-such-model"


def ends(name: str) -> list[tuple[str, object]]:
    """("past", value) and ("at", value) for both ends of a generation parameter's range (session settings)."""
    return [("past", v) for v in past(name)] + [("at", v) for v in at(name)]


def assert_refused(message: str, name: str) -> None:
    assert message.startswith(ERROR) or ERROR in message, message
    assert f"{name} must be" in message, message
    assert len(message) < 400, message


def assert_passed(message: str, name: str, expected: str) -> None:
    assert f"{name} must be" not in message and expected in message, message


# ---- Playground and Arena ------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", GENERATION)
def test_playground_chat_numbers(client, name):
    for end, value in ends(name):
        history, status = client.predict(
            message="Hi",
            history=[],
            model=CHAT_MODEL if end == "past" else NOPE,
            system_message="",
            **{**DECODING, name: value},
            api_name="/chat",
        )
        if end == "past":
            assert_refused(status, name)
            assert history == []
        else:
            assert_passed(status, name, "Unknown model")


def test_playground_seed_too_big_for_any_integer_type_is_named(client):
    for seed in (2**70, str(2**70), "-1"):
        _, status = client.predict(
            message="Hi", history=[], model=CHAT_MODEL, **{**DECODING, "seed": seed}, api_name="/chat"
        )
        assert_refused(status, "seed")


@pytest.mark.parametrize("name", ["max_new_tokens", "temperature"])
def test_arena_battle_numbers(client, name):
    values = {"max_new_tokens": 4, "temperature": 0}
    for end, value in ends(name):
        models = [CHAT_MODEL, "gemma-3-270m"] if end == "past" else []
        *_, status = client.predict(
            models=models, prompt="Hi", template="", user="", **{**values, name: value}, api_name="/arena_battle"
        )
        if end == "past":
            assert_refused(status, name)
        else:
            assert_passed(status, name, "at least two")


# ---- Templates ------------------------------------------------------------------------------------------------
def test_templates_max_new_tokens_is_checked_not_coerced(client):
    for value in (0, 1.5, 2049, "abc"):
        text, info = client.predict(
            template="financial-sentiment", model=CHAT_MODEL, values={"text": "Hi"}, max_new_tokens=value,
            api_name="/render_preview",
        )  # fmt: skip
        assert text == "" and "max_new_tokens must be" in info, (value, info)  # 0 was 128, 1.5 was 1
    for value in at("max_new_tokens"):
        text, info = client.predict(
            template="financial-sentiment", model=NOPE, values={"text": "Hi"}, max_new_tokens=value,
            api_name="/render_preview",
        )  # fmt: skip
        assert_passed(info, "max_new_tokens", "Unknown model")


def test_template_version_numbers(client):
    for old in (0, 10**30):
        diff = client.predict(name="financial-sentiment", old=old, new=1, api_name="/diff_versions")
        assert_refused(diff, "from version")
    status, _ = client.predict(name="financial-sentiment", number=-1, api_name="/restore_version")
    assert_refused(status, "the version to restore")


def test_an_alias_bomb_template_comes_back_as_one_short_problem(client):
    message = client.predict(yaml_text=BOMB, api_name="/validate_template")
    assert message.startswith(ERROR) and "anchors and aliases" in message and len(message) < 600, message


# ---- Evaluate -------------------------------------------------------------------------------------------------
def eval_start(client, dataset: str = "no-such-dataset", **form) -> str:
    values = {"sample": 0, "sample_seed": 0, "templates": ["financial-sentiment"], "models": [CHAT_MODEL]}
    values |= {"adapters": "", **DECODING, "mode": "auto", "metrics": [], "judge": "", "name": ""} | form
    message, run_id = client.predict(dataset=dataset, **values, api_name="/eval_start")
    assert run_id is None, "nothing may start"
    return message


@pytest.mark.parametrize("name", GENERATION)
def test_evaluate_start_decoding_numbers(client, name):
    for end, value in ends(name):
        message = eval_start(client, **{name: value})
        if end == "past":
            assert_refused(message, name)
        else:
            assert_passed(message, name, "no-such-dataset")


@pytest.mark.parametrize(
    ("field", "label", "beyond", "bounds"),
    [
        ("sample", "sample size", (-1, MAX_ROWS + 1), (0, 1, MAX_ROWS)),  # 0 = every row
        ("sample_seed", "sample seed", (-1, 2**32), (0, 2**32 - 1)),
        ("templates", "template version", (["financial-sentiment@v0"], [f"financial-sentiment@v{MAX_ID + 1}"]), ()),
    ],
)
def test_evaluate_start_run_numbers(client, field, label, beyond, bounds):
    for value in beyond:
        assert_refused(eval_start(client, **{field: value}), label)
    for value in bounds:
        assert_passed(eval_start(client, **{field: value}), label, "no-such-dataset")


def test_evaluate_run_ids(client):
    for run_id in (0, MAX_ID + 1, 10**30):
        progress = client.predict(run_id=run_id, api_name="/eval_progress")
        assert "run_id must be between 1 and" in progress["error"], progress
        html = client.predict(run_id=run_id, row=0, a=1, b=2, api_name="/eval_diff")
        assert "run_id must be between 1 and" in html, html
    progress = client.predict(run_id=MAX_ID, api_name="/eval_progress")
    assert "must be" not in progress["error"], progress


# ---- Compare --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", GENERATION)
def test_compare_column_numbers(client, name):
    for end, value in ends(name):
        column = {"model": CHAT_MODEL if end == "past" else NOPE, **DECODING, name: value}
        final = client.predict(message="Hi", columns=[column, column], api_name="/compare")
        for col in final["columns"]:
            if end == "past":
                assert f"{name} must be" in col["error"] and len(col["error"]) < 300, col["error"]
            else:
                assert_passed(col["error"], name, "Unknown model")


def test_compare_template_version_and_evaluation_row(client):
    column = {"model": CHAT_MODEL, **DECODING, "template": "financial-sentiment@v" + "9" * 30}
    final = client.predict(message="Hi", columns=[column, column], values={"text": "Hi"}, api_name="/compare")
    assert all("template version must be" in col["error"] for col in final["columns"]), final
    for run_id, row, name in [(0, 0, "run_id"), (1, -1, "row"), (1, 10**30, "row"), (1, MAX_ROWS, "row")]:
        opened = client.predict(run_id=run_id, row=row, api_name="/open_in_compare")
        assert_refused(opened["error"], name)
    opened = client.predict(run_id=MAX_ID, row=MAX_ROWS - 1, api_name="/open_in_compare")
    assert "must be" not in opened["error"], opened
