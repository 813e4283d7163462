"""Feedback provenance on a real server with users (admin ada, labeler lab, viewer vic): Compare and Arena
feedback name stored outputs of the caller's own; a viewer cannot plant a pair, cannot file someone else's vote,
and their own pair waits for review. The columns' model is an OpenAI-compatible endpoint served by a small local
HTTP server (each reply a new text), so nothing loads."""

from __future__ import annotations

import itertools
import json
import sqlite3
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from gradio_client import Client

from llmplay.arena.battles import Contestant, cast_vote, draw_battle, save_battle
from llmplay.feedback.accepted import accepted_items
from llmplay.feedback.exports import export_rows
from llmplay.models.catalog import Catalog, ModelSpec
from llmplay.store import connect
from tests.auth.team import add_team, make_settings, start

MODEL = "fake-chat"


class FakeChat:
    """An OpenAI-compatible chat endpoint answering every request with the next 'reply N' (plain JSON)."""

    def __init__(self):
        counter = itertools.count(1)

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                self.rfile.read(int(self.headers.get("content-length") or 0))
                text = f"reply {next(counter)}"
                body = {
                    "choices": [
                        {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
                    ],
                    "usage": {"prompt_tokens": 3, "completion_tokens": 2},
                }
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def team(tmp_path_factory, model_cache_dir):
    fake = FakeChat()
    settings = make_settings(tmp_path_factory.mktemp("provenance") / "data", model_cache_dir)
    add_team(settings)
    spec = ModelSpec(name=MODEL, kind="chat", source="endpoint", location=fake.url, api_model="fake")
    Catalog(settings.models_file, settings=settings).add(spec)
    running = start(settings)
    yield running
    running.served.close()
    fake.close()


@pytest.fixture(scope="module")
def clients(team):
    made = {name: Client(team.url, auth=team.auth(name), verbose=False) for name in ("ada", "lab", "vic")}
    yield made
    for c in made.values():
        c.close()


def compare(client: Client) -> dict:
    columns = [{"model": MODEL, "max_new_tokens": 8}, {"model": MODEL, "max_new_tokens": 8}]
    result = client.predict("Capital of France?", columns, {}, "", [], api_name="/compare")
    assert result["done"] and [c["state"] for c in result["columns"]] == ["done", "done"], result
    return result


def rows(team, sql: str, args=()) -> list[tuple]:
    with sqlite3.connect(team.settings.db_path) as con:
        return con.execute(sql, args).fetchall()


def vote_of(team, user: str) -> int:
    with connect(team.settings.db_path) as db:
        battle = draw_battle([Contestant("m1"), Contestant("m2")], "Capital of France?", rng=0, user=user)
        battle.output_a, battle.output_b = "Paris.", "Lyon."
        save_battle(db, battle)
        return cast_vote(db, battle.id, "a", user).vote.id


def test_a_viewer_cannot_plant_a_pair_and_their_own_pair_waits_for_review(team, clients):
    vic = clients["vic"]
    mine = compare(vic)

    planted = json.loads(json.dumps(mine))  # the client's copy, with replies the server never produced
    planted["columns"][0]["text"], planted["columns"][1]["text"] = "Visit evil.example now!", "Paris."
    planted["columns"][0]["result"]["text"] = "Visit evil.example now!"
    answer = vic.predict({"columns": planted["columns"]}, 1, 2, "vic", api_name="/compare_preference")
    assert answer.startswith("⚠️") and "Run a comparison first" in answer
    vic.predict(planted, 1, 2, "vic", api_name="/compare_preference")  # of a result, only its id is read
    assert rows(team, "select count(*) from feedback_items where output like '%evil%'") == [(0,)]
    assert rows(team, "select output from feedback_items") == [(mine["columns"][0]["text"],)]
    assert rows(team, "select user from compare_results where id = ?", [mine["id"]]) == [("vic",)]

    lab_result = compare(clients["lab"])
    answer = vic.predict(lab_result["id"], 1, 2, "vic", api_name="/compare_preference")
    assert f"There is no comparison {lab_result['id']} of yours" in answer

    answer = vic.predict(mine["id"], 2, 1, "someone-else", api_name="/compare_preference")
    assert answer.startswith("✅"), answer
    stored = rows(
        team,
        "select i.output, i.output_b, i.origin, r.labeler, r.role from feedback_items i "
        "join feedback_responses r on r.item_id = i.id where i.source = 'compare' and i.output = ?",
        [mine["columns"][1]["text"]],
    )
    texts = [c["text"] for c in mine["columns"]]
    origin = json.dumps({"comparison": mine["id"], "columns": [2, 1]})
    assert stored == [(texts[1], texts[0], origin, "vic", "viewer")], "the stored replies, sent under vic's login"
    with connect(team.settings.db_path) as db:
        assert accepted_items(db, "preferences") == [], "a viewer's pair is not accepted without review"
        assert export_rows(db, "preferences", "dpo").rows == []


def test_nobody_files_someone_elses_arena_vote(team, clients):
    adas, vics = vote_of(team, "ada"), vote_of(team, "vic")
    answer = clients["vic"].predict(adas, "vic", api_name="/arena_preference")
    assert f"There is no arena vote {adas} of yours" in answer
    answer = clients["lab"].predict(adas, "a", "Paris.", "lab", api_name="/arena_correction")
    assert f"There is no arena vote {adas} of yours" in answer
    assert rows(team, "select count(*) from feedback_items where source = ?", [f"arena-vote:{adas}"]) == [(0,)]

    assert clients["vic"].predict(vics, "vic", api_name="/arena_preference").startswith("✅")
    assert clients["ada"].predict(vics, "b", "Paris!", "ada", api_name="/arena_correction").startswith("✅")
    sent = rows(
        team,
        "select r.labeler, r.role, i.origin from feedback_items i join feedback_responses r on r.item_id = i.id "
        "where i.source = ? order by r.id",
        [f"arena-vote:{vics}"],
    )
    assert [(labeler, role) for labeler, role, _ in sent] == [("vic", "viewer"), ("ada", "admin")]
    assert all(json.loads(origin)["vote"] == vics for _, _, origin in sent)


def chat(client: Client, message: str) -> list[dict]:
    history, status = client.predict(message, [], MODEL, "", 8, api_name="/chat")
    assert status.startswith("✅"), status
    return history


def rate(client: Client, history: list[dict], liked: bool) -> str:
    return client.predict(history, len(history) - 1, liked, MODEL, "", "", api_name="/playground_rate")


def test_playground_feedback_names_a_reply_the_server_made_for_the_caller(team, clients):
    labs = chat(clients["lab"], "Capital of Peru?")
    answer = rate(clients["vic"], labs, False)  # lab's reply, sent by vic
    assert "There is no Playground reply like this one of yours" in answer, answer

    vics = chat(clients["vic"], "Capital of Chile?")
    forged = json.loads(json.dumps(vics))
    forged[-1]["content"] = [{"type": "text", "text": "Visit evil.example now!"}]
    assert "There is no Playground reply" in rate(clients["vic"], forged, False)
    forged = vics[:1] + [{"role": "assistant", "content": labs[-1]["content"]}]  # lab's text on vic's question
    assert "There is no Playground reply" in rate(clients["vic"], forged, False)
    with pytest.raises(Exception, match="may not send corrections"):  # labelers' (of real replies, too)
        clients["vic"].predict(forged, "Santiago.", MODEL, "", "", api_name="/playground_correction")
    assert rows(team, "select count(*) from feedback_items where source = 'playground'") == [(0,)]

    assert rate(clients["vic"], vics, False).startswith("✅")
    stored = rows(
        team,
        "select i.output, i.prompt, i.origin, r.labeler, r.role, r.value from feedback_items i "
        "join feedback_responses r on r.item_id = i.id where i.source = 'playground'",
    )
    (reply_id,) = rows(team, "select id from chat_replies where user = 'vic'")[0]
    reply = vics[-1]["content"][0]["text"] if isinstance(vics[-1]["content"], list) else vics[-1]["content"]
    prompt = json.dumps([{"role": "user", "content": "Capital of Chile?"}])
    assert [(o, json.loads(p), json.loads(g), u, r, v) for o, p, g, u, r, v in stored] == [
        (reply, json.loads(prompt), {"chat_reply": reply_id}, "vic", "viewer", "0")
    ]
    fix = clients["lab"].predict(labs, "Lima.", MODEL, "", "", api_name="/playground_correction")
    assert fix.startswith("✅"), fix
