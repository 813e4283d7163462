"""The Playground's turns without a server: decoding speed after the first token, the stats note each reply
carries, where retry / undo / edit cut a chat, and Stop as a request the running reply honours."""

from __future__ import annotations

import pytest

from llmplay.engine import GenerationResult
from llmplay.errors import InvalidRequestError
from llmplay.ui.decoding import decode_rate, format_stats
from llmplay.ui.tabs.chat_turns import (
    Stops,
    cut_for_rerun,
    is_note,
    kept_before,
    note,
    reply_at,
    stats_line,
    stopped_status,
    without_notes,
)
from llmplay.ui.tabs.playground import history_to_messages


def test_tokens_per_second_counts_decoding_after_the_first_token():
    # 11 tokens in 3 s, the first after 1 s: 10 tokens decoded in the 2 s after it -> 5 tokens/s (not 11 / 3)
    assert decode_rate(11, 3.0, 1.0) == pytest.approx(5.0)
    # a one-token reply has no decoding speed (was: 1 / latency, e.g. 0.2 tok/s for a slow first token)
    assert decode_rate(1, 5.0, 5.0) is None
    assert decode_rate(0, 1.0, None) is None
    # a provider that reports no first-token time: tokens over the whole latency
    assert decode_rate(10, 2.0, None) == pytest.approx(5.0)


def test_the_stats_show_the_decoding_speed_with_the_time_to_first_token_beside_it():
    result = GenerationResult(text="x", prompt_tokens=7, completion_tokens=11, latency_s=3.0, time_to_first_token_s=1.0)
    stats = format_stats(result)
    assert "**5.0 tokens/s** after the first token" in stats and "first token 1.00 s" in stats, stats
    one = GenerationResult(text="x", completion_tokens=1, latency_s=5.0, time_to_first_token_s=5.0)
    assert "0.2 tokens/s" not in format_stats(one) and "n/a" in format_stats(one)
    assert "5.0 tokens/s" in stats_line(result) and "11 tokens" in stats_line(result)


def test_a_stopped_reply_reports_its_own_figures():
    partial = GenerationResult(
        text="Paris is", completion_tokens=3, latency_s=1.5, time_to_first_token_s=0.5, finish_reason="stopped"
    )
    status = stopped_status(partial)
    assert status.startswith("⏹️ Stopped") and "2.0 tokens/s" in status and "3 tokens in 1.50 s" in status
    assert stats_line(partial).startswith("⏹️") and "stopped" in stats_line(partial)
    assert stopped_status(GenerationResult(text="")) == "⏹️ Stopped before the first token."


CHAT = [
    {"role": "user", "content": "Hi"},
    note("✅ 5.0 tokens/s"),
    {"role": "assistant", "content": "Hello!"},
    {"role": "user", "content": [{"type": "text", "text": "Capital of France?"}]},
    note("✅ 6.0 tokens/s"),
    {"role": "assistant", "content": "Paris."},
]


def test_stats_notes_are_never_sent_to_the_model_and_stand_for_their_reply():
    assert [is_note(m) for m in CHAT] == [False, True, False, False, True, False]
    assert history_to_messages(CHAT) == [
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello!"},
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris."},
    ]
    # the Chatbot reports a reply group's first message (its note): that means the reply after it
    assert reply_at(CHAT, 1) == (2, "Hello!")
    assert reply_at(CHAT, 4) == (5, "Paris.")
    assert reply_at(CHAT, None) == (5, "Paris.")  # the last reply, not its note
    with pytest.raises(InvalidRequestError, match="Only the model's replies"):
        reply_at(CHAT, 0)
    assert len(without_notes(CHAT)) == 4


def test_retry_undo_and_edit_cut_the_chat_at_the_user_message():
    before, text = cut_for_rerun(CHAT, 3)
    assert before == CHAT[:3] and text == "Capital of France?"
    with pytest.raises(IndexError):
        cut_for_rerun(CHAT, 9)
    # the stored-reply ids of replies that are cut go: a retried reply is a new stored reply
    sent = {"2": {"reply_id": 1}, "5": {"reply_id": 2}}
    assert kept_before(sent, len(before)) == {"2": {"reply_id": 1}}


def test_stop_reaches_only_the_session_s_running_reply():
    stops = Stops()
    assert stops.stop("s1") is False  # nothing runs
    mine, theirs = stops.begin("s1"), stops.begin("s2")
    assert stops.stop("s1") is True
    assert mine.is_set() and not theirs.is_set()
    stops.end("s1", mine)
    assert stops.stop("s1") is False


def test_a_stopped_reply_s_first_token_is_timed_from_the_end_of_the_model_load(monkeypatch):
    from llmplay.ui.tabs import chat_turns

    clock = iter([0.0, 5.0, 5.5, 7.5])  # made, load ends, first text, stopped
    monkeypatch.setattr(chat_turns.time, "perf_counter", lambda: next(clock))
    timer = chat_turns.PartialTimer()
    timer.loading()
    timer.text()
    result = timer.result("m", "Once upon", 5)
    assert result.time_to_first_token_s == pytest.approx(0.5) and result.latency_s == pytest.approx(2.5)
    assert decode_rate(result.completion_tokens, result.latency_s, result.time_to_first_token_s) == pytest.approx(2.0)


# ---- with the real model: retry and edit keep the stored replies honest -----------------------------------------
@pytest.mark.slow
def test_a_retried_or_edited_reply_is_a_new_stored_reply(engine):
    from llmplay.chat_replies import REPLIES
    from llmplay.store import connect
    from llmplay.ui.tabs.playground import Playground, content_text
    from tests.conftest import CHAT_MODEL

    pg = Playground(engine)
    settings = (CHAT_MODEL, "", 8, 0.0, 1.0, 0, 1.0, "", "", "", "")  # model .. backend, greedy

    def last(updates):
        history, status, sent = list(updates)[-1]
        assert status.startswith("✅"), status
        reply_id = sent[str(len(history) - 1)]["reply_id"]  # the id the page keeps for the last reply
        with connect(engine.settings.db_path) as db:
            (row,) = db.query(f"select prompt, output from {REPLIES} where id = ?", [reply_id])
        assert row["output"] == content_text(history[-1]["content"]), "the stored reply is the one shown"
        return history, sent, reply_id, row

    history, sent, first, _ = last(pg.chat_kept("Name a colour. One word.", [], *settings))
    assert is_note(history[1]) and len(history) == 3  # question, its reply's stats note, the reply

    retried, sent2, second, _ = last(pg.rerun(history, 0, None, *settings, sent=sent))
    assert second != first and len(retried) == 3, "a retry replaces the reply with a new stored one"
    assert list(sent2) == ["2"], "only the replies still shown keep an id"

    edited, _, third, row = last(pg.rerun(retried, 0, "Name a fruit. One word.", *settings, sent=sent2))
    assert third not in (first, second)
    assert content_text(edited[0]["content"]) == "Name a fruit. One word." and "Name a fruit" in row["prompt"]
