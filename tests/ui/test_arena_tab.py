"""The Arena and Leaderboard through their public API, on a live server with both real bundled models (greedy).

The battle endpoint is the very event the browser runs, so what it streams is what the browser receives.
"""

from __future__ import annotations

import importlib.util
import json
from datetime import UTC, datetime, timedelta

import pytest

from llmplay.arena import Contestant
from llmplay.services import Services
from llmplay.store import connect
from llmplay.templates import parse_template
from llmplay.ui.common import ERROR as ERROR_PREFIX
from llmplay.ui.tabs.arena import parse_contestant, template_values, until_value
from llmplay.ui.tabs.leaderboard import heatmap_html
from tests.conftest import BASE_MODEL, CHAT_MODEL, PARIS_QUESTION
from tests.ui.browser import CHROMIUM, CHROMIUM_ARGS
from tests.ui.conftest import free_port

MODELS = [CHAT_MODEL, BASE_MODEL]
FAST = {"max_new_tokens": 16, "temperature": 0}


def run_battle(client, prompt: str = PARIS_QUESTION, template: str = "", models=MODELS) -> tuple[list, list]:
    """Every streamed update and the final one: (battle_id, reply_a, reply_b, status)."""
    job = client.submit(
        models=models, prompt=prompt, template=template, user="tester", **FAST, api_name="/arena_battle"
    )
    final = job.result()
    return [list(out) for out in job.outputs()], list(final)


def ready_battle(client, **kwargs) -> tuple[str, str, str]:
    _, (battle_id, a, b, status) = run_battle(client, **kwargs)
    assert status.startswith("✅") and battle_id, status
    return battle_id, a, b


def vote(client, battle_id: str, winner: str, user: str = "tester") -> dict:
    return client.predict(battle_id=battle_id, winner=winner, user=user, api_name="/arena_vote")


def board(client, template: str = "", since: str = "", until: str = "") -> dict:
    return client.predict(template=template, since=since, until=until, api_name="/leaderboard")


def stored(engine, table: str, where: str, args: list) -> list[dict]:
    with connect(engine.settings.db_path) as db:
        return list(db[table].rows_where(where, args, order_by="rowid"))


def side_of(row: dict, model: str) -> str:
    return "a" if row["model_a"] == model else "b"


# ---- plain helpers ------------------------------------------------------------------------------------
def test_template_input_is_json_values_or_text_for_the_main_variable():
    template = parse_template(
        "name: t\ntask: chat\nvariables:\n  - name: style\n    default: terse\n  - name: text\n"
        "body: '{{ style }} {{ text }}'\n"
    )
    assert template_values(template, "Profits rose.") == {"text": "Profits rose."}  # first *required* variable
    assert template_values(template, '{"text": "x", "style": "long"}') == {"text": "x", "style": "long"}
    assert template_values(template, "  ") == {}


def test_pool_entry_may_name_an_adapter():
    assert parse_contestant(" smollm2-135m-instruct ") == Contestant("smollm2-135m-instruct")
    assert parse_contestant("smollm2-135m-instruct+/tmp/my lora") == Contestant("smollm2-135m-instruct", "/tmp/my lora")


def test_until_date_includes_that_day():
    assert until_value("2025-03-01") == "2025-03-02"
    assert until_value("2025-03-01T12:00") == "2025-03-01T12:00"
    assert until_value("") is None


def test_heatmap_colours_cells_by_win_rate_and_escapes_names():
    page = heatmap_html(["<b>m1</b>", "m2"], [[None, 1.0], [0.0, None]], [[0, 3], [3, 0]])
    assert "&lt;b&gt;m1&lt;/b&gt;" in page and "<b>m1</b>" not in page
    assert "rgb(99, 190, 123)" in page and "rgb(248, 105, 107)" in page  # 100% green, 0% red
    assert "100%" in page and "0%" in page
    assert "No counted votes" in heatmap_html([], [], [])


# ---- blind battles --------------------------------------------------------------------------------------
def test_battle_hides_identities_until_the_vote_and_counts_only_the_first_vote(client, engine):
    outputs, (battle_id, reply_a, reply_b, status) = run_battle(client)
    assert status.startswith("✅"), status
    assert len(outputs) >= 2, "the replies stream in"
    for out in outputs:  # everything the browser got before the vote
        sent = json.dumps(out).lower()
        for name in MODELS:
            assert name not in sent, out

    (row,) = stored(engine, "arena_battles", "id = ?", [battle_id])
    assert {row["model_a"], row["model_b"]} == set(MODELS)
    assert row["revealed_at"] is None
    assert (row["output_a"], row["output_b"]) == (reply_a, reply_b)
    chat_reply = reply_a if side_of(row, CHAT_MODEL) == "a" else reply_b
    assert "Paris" in chat_reply, "each reply sits in its own model's position"

    first = vote(client, battle_id, "a")
    assert first["error"] is None and first["counted"] is True, first
    assert (first["a"]["model"], first["b"]["model"]) == (row["model_a"], row["model_b"])
    assert all(name in first["message"] for name in MODELS), first["message"]

    second = vote(client, battle_id, "b")
    assert second["counted"] is False and "not counted" in second["message"], second
    votes = stored(engine, "arena_votes", "battle_id = ?", [battle_id])
    assert [(v["winner"], v["counted"]) for v in votes] == [("a", 1), ("b", 0)]
    counted = votes[0]
    assert counted["user"] == "tester" and json.loads(counted["input"]) == PARIS_QUESTION
    assert (counted["output_a"], counted["output_b"]) == (reply_a, reply_b)
    assert counted["model_version_a"] and counted["model_version_b"]
    assert json.loads(counted["params"])["max_new_tokens"] == FAST["max_new_tokens"]


@pytest.mark.parametrize(
    ("models", "prompt", "fragment"),
    [
        ([CHAT_MODEL], PARIS_QUESTION, "at least two"),
        ([CHAT_MODEL, CHAT_MODEL], PARIS_QUESTION, "at least two"),
        ([CHAT_MODEL, "no-such-model"], PARIS_QUESTION, "no-such-model"),
        ([CHAT_MODEL, "all-minilm-l6-v2"], PARIS_QUESTION, "embeddings model"),
        (MODELS, "   ", "empty"),
    ],
)
def test_unusable_battle_is_refused_clearly(client, models, prompt, fragment):
    outputs, (battle_id, a, b, status) = run_battle(client, prompt=prompt, models=models)
    assert status.startswith(ERROR_PREFIX) and fragment in status, status
    assert "unexpected" not in status
    assert (battle_id, a, b) == ("", "", "")


def test_bad_votes_are_refused_clearly(client):
    unknown = vote(client, "no-such-battle", "a")
    assert unknown["error"].startswith(ERROR_PREFIX) and "Unknown battle" in unknown["error"], unknown
    assert unknown["counted"] is False and unknown["a"] is None
    assert "Unknown vote" in vote(client, "no-such-battle", "A wins")["error"]
    assert "Vote first" in client.predict(vote_id=None, user="", api_name="/arena_preference")


# ---- from a vote to a training signal --------------------------------------------------------------------
def test_vote_becomes_a_preference_pair_or_a_correction(client, engine):
    battle_id, reply_a, reply_b = ready_battle(client)
    (row,) = stored(engine, "arena_battles", "id = ?", [battle_id])
    chat, base = side_of(row, CHAT_MODEL), side_of(row, BASE_MODEL)
    voted = vote(client, battle_id, chat)
    replies = {"a": reply_a, "b": reply_b}

    message = client.predict(vote_id=voted["vote_id"], user="tester", api_name="/arena_preference")
    assert message.startswith("✅"), message
    message = client.predict(
        vote_id=voted["vote_id"], side=base, correction="Paris.", user="tester", api_name="/arena_correction"
    )
    assert message.startswith("✅"), message
    preference, correction = stored(engine, "feedback_items", "source = ?", [f"arena-vote:{voted['vote_id']}"])
    queues = {q["id"]: q["name"] for q in stored(engine, "feedback_queues", "1 = 1", [])}
    assert queues[preference["queue_id"]] == "preferences" and json.loads(preference["prompt"]) == PARIS_QUESTION
    assert (preference["output"], preference["output_b"]) == (replies[chat], replies[base])
    assert (preference["model"], preference["model_b"]) == (CHAT_MODEL, BASE_MODEL)
    assert queues[correction["queue_id"]] == "inbox" and correction["model"] == BASE_MODEL
    (answer,) = stored(engine, "feedback_responses", "item_id = ?", [correction["id"]])
    assert (correction["output"], json.loads(answer["value"]), answer["labeler"]) == (replies[base], "Paris.", "tester")

    tie = vote(client, battle_id, "tie")  # after the reveal: kept, not counted, still no preferred reply
    message = client.predict(vote_id=tie["vote_id"], user="", api_name="/arena_preference")
    assert message.startswith(ERROR_PREFIX) and "no preferred reply" in message, message


# ---- leaderboard ---------------------------------------------------------------------------------------
def test_template_battle_and_leaderboard_filters(client, engine):
    template = "financial-sentiment"
    battle_id, _, _ = ready_battle(client, prompt="Profits rose 20% this quarter.", template=template)
    (row,) = stored(engine, "arena_battles", "id = ?", [battle_id])
    assert row["template"] == template and row["template_version_id"] is not None
    assert "Profits rose 20% this quarter." in json.loads(row["input"])[-1]["content"]
    assert vote(client, battle_id, "tie")["counted"]

    counted = stored(engine, "arena_votes", "template = ? and counted = 1", [template])
    result = board(client, template=template)
    assert result["error"] is None and template in result["templates"]
    assert result["votes"] == len(counted)
    rows = {r["model"]: r for r in result["rows"]}
    assert set(rows) == set(MODELS)
    for model in MODELS:
        mine = [v for v in counted if model in (v["model_a"], v["model_b"])]
        assert rows[model]["battles"] == len(mine)
        assert rows[model]["ties"] == sum(v["winner"] in ("tie", "both_bad") for v in mine)
        assert 0 < rows[model]["rating"] < 2000
    assert result["models"] == [r["model"] for r in result["rows"]]
    assert result["win_rate"][0][0] is None and result["win_rate"][0][1] is not None

    today = datetime.now(UTC).date()
    assert board(client, template=template, since=str(today), until=str(today))["votes"] == len(counted)
    later = board(client, template=template, since=str(today + timedelta(days=1)))
    assert later["votes"] == 0 and later["rows"] == []
    bad = board(client, since="last week")
    assert bad["error"].startswith(ERROR_PREFIX) and "last week" in bad["error"], bad


def test_votes_and_battles_survive_a_restart(client, engine, ui_prompts_dir):
    from gradio_client import Client

    from llmplay.engine import Engine
    from llmplay.ui import build_app

    voted, _, _ = ready_battle(client)
    assert vote(client, voted, "b")["counted"]
    pending, _, _ = ready_battle(client)  # drawn by this app, voted on in the next one
    before = board(client)
    assert {r["model"] for r in before["rows"]} >= set(MODELS)

    restarted = Engine(engine.settings)  # a new engine and app on the same data dir: only SQLite carries over
    demo = build_app(Services.build(restarted, ui_prompts_dir))
    demo.queue().launch(prevent_thread_lock=True, server_port=free_port(), server_name="127.0.0.1", quiet=True)
    try:
        other = Client(demo.local_url, verbose=False)
        assert board(other) == before  # same votes, same seeded bootstrap
        late = vote(other, pending, "a")
        (row,) = stored(engine, "arena_battles", "id = ?", [pending])
        assert late["counted"] is True and late["a"]["model"] == row["model_a"], late
        assert board(other)["votes"] == before["votes"] + 1
        other.close()
    finally:
        demo.close()
        restarted.close()


# ---- in a real browser ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def page():
    if not CHROMIUM.exists() or importlib.util.find_spec("playwright") is None:
        pytest.skip("needs Debian's chromium and playwright")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser.new_page(viewport={"width": 1400, "height": 1000})
        browser.close()


@pytest.mark.slow
def test_battle_vote_and_feedback_in_the_browser(page, ui_url, engine):
    page.goto(ui_url)
    page.get_by_role("tab", name="Arena").click()
    page.locator("#arena-prompt textarea").fill(PARIS_QUESTION)
    page.locator("#arena-max-new-tokens input").fill("16")
    votes = page.locator("#arena-vote-a")
    assert votes.is_disabled(), "nothing to vote on yet"
    page.locator("#arena-start").click()
    page.locator("#arena-status").get_by_text("Both replies are in").wait_for(timeout=180_000)
    shown = (page.locator("#arena-a textarea").input_value(), page.locator("#arena-b textarea").input_value())
    labels = page.locator("#arena-a").inner_text() + page.locator("#arena-b").inner_text()
    with connect(engine.settings.db_path) as db:
        (battle,) = db.query("select * from arena_battles order by created_at desc, rowid desc limit 1")
    # The page's pool is every text model in the session catalog (other tests may have added some), so the
    # drawn pair is whatever the battle row says.
    pair = [battle["model_a"], battle["model_b"]]
    assert shown == (battle["output_a"], battle["output_b"]), "each reply sits in its own model's position"
    assert not any(name in labels for name in pair), labels  # labels say only "Model A" / "Model B"
    assert battle["revealed_at"] is None

    votes.wait_for(state="visible")
    page.wait_for_function("() => !document.querySelector('#arena-vote-a').disabled", timeout=10_000)
    votes.click()
    reveal = page.locator("#arena-reveal")
    reveal.get_by_text("Vote counted").wait_for(timeout=30_000)
    for name in pair:  # the reveal can arrive in more than one render (fails after the timeout)
        reveal.get_by_text(name, exact=False).first.wait_for(timeout=15_000)
    assert votes.is_disabled(), "one vote per battle from the page"
    page.locator("#arena-prefer").click()
    status = page.locator("#arena-feedback-status")
    page.wait_for_function(  # the answer, success or error (an error's text says what went wrong); not the queue line
        "() => /[✅⚠]/.test(document.querySelector('#arena-feedback-status')?.innerText || '')", timeout=180_000
    )
    answer = status.inner_text()
    if " ".join(shown[0].split()) == " ".join(shown[1].split()):  # the pool is the session's models: two of them
        # (a version and its base) can answer alike, and then there is no preference to send, as the page says
        assert "The two replies are identical" in answer, answer
    else:
        assert "✅" in answer and "queue 'preferences'" in answer, answer
    with connect(engine.settings.db_path) as db:
        (vote_row,) = db.query("select * from arena_votes order by id desc limit 1")
    assert vote_row["winner"] == "a" and vote_row["counted"] == 1
