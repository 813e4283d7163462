import pytest

from llmplay.arena.battles import Contestant, cast_vote, draw_battle, save_battle
from llmplay.arena.ratings import Comparison
from llmplay.arena.votes import comparisons, list_votes, vote_templates
from llmplay.errors import InvalidRequestError
from llmplay.feedback.accepted import accepted_items
from llmplay.feedback.provenance import Sender
from llmplay.feedback.sources import correction_from_vote, preference_from_vote
from llmplay.feedback.store import list_items, list_responses, mark_consumed
from llmplay.store import connect, open_db

ANN = Sender("ann", "labeler")  # the voter
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Capital of France?"}]


def vote(db, winner="a", *, models=("m1", "m2"), template="geo", created_at=None, input=MESSAGES, user="ann"):
    pool = [Contestant(models[0], model_version="v1"), Contestant(models[1], adapter="lora")]
    battle = draw_battle(pool, input, rng=0, template=template, template_version_id=4, user=user)
    battle.output_a, battle.output_b = f"reply of {battle.a.model}", f"reply of {battle.b.model}"
    battle = save_battle(db, battle)
    result = cast_vote(db, battle.id, winner)
    if created_at:
        db["arena_votes"].update(result.vote.id, {"created_at": created_at})
    return result.vote


def test_votes_survive_a_restart(settings):
    db = open_db(settings.db_path)
    stored = vote(db, "b")
    db.close()

    reopened = open_db(settings.db_path)  # a new connection on the same file
    try:
        (back,) = list_votes(reopened)
    finally:
        reopened.close()
    assert back == stored
    assert back.input == MESSAGES  # chat messages round-trip as JSON
    assert back.winner == "b" and back.counted and back.user == "ann"
    assert back.template == "geo" and back.template_version_id == 4
    assert {back.model_a, back.model_b} == {"m1", "m2"}
    m2_side = "a" if back.model_a == "m2" else "b"
    assert getattr(back, f"adapter_{m2_side}") == "lora"
    assert getattr(back, f"output_{m2_side}") == "reply of m2"
    assert back.created_at.startswith("20")


def test_filters_by_template_time_model_and_counted(settings):
    with connect(settings.db_path) as db:
        early = vote(db, template="geo", created_at="2025-01-10T12:00:00+00:00")
        middle = vote(db, template="math", created_at="2025-02-10T12:00:00+00:00")
        late = vote(db, models=("m1", "m3"), template="geo", created_at="2025-03-10T12:00:00+00:00")
        ids = lambda votes: [v.id for v in votes]  # noqa: E731
        assert ids(list_votes(db)) == [early.id, middle.id, late.id]
        assert ids(list_votes(db, template="geo")) == [early.id, late.id]
        assert ids(list_votes(db, since="2025-02-01", until="2025-03-10T12:00:00Z")) == [middle.id]
        assert ids(list_votes(db, since="2025-02-10T12:00:00+00:00")) == [middle.id, late.id]  # since is inclusive
        assert ids(list_votes(db, model="m3")) == [late.id]
        assert sorted(vote_templates(db)) == ["geo", "math"]
        with pytest.raises(InvalidRequestError, match="not a date"):
            list_votes(db, since="last tuesday")


def test_comparisons_use_contestant_keys_and_skip_uncounted_votes(settings):
    with connect(settings.db_path) as db:
        counted = vote(db, "a")
        again = cast_vote(db, counted.battle_id, "b").vote  # after the reveal
        votes = list_votes(db, counted_only=False)
        assert [v.id for v in votes] == [counted.id, again.id]
        (comparison,) = comparisons(votes)
        assert comparison == Comparison(counted.key_a, counted.key_b, "a")
        assert {counted.key_a, counted.key_b} == {"m1", "m2+lora"}


def test_a_vote_becomes_a_preference_pair(settings):
    with connect(settings.db_path) as db:
        v = vote(db, "b")
        sent = preference_from_vote(db, v.id, ANN)
        item = sent.item
        assert (sent.queue.name, sent.kind, item.source) == ("preferences", "preference", f"arena-vote:{v.id}")
        assert item.output == v.output_b and item.output_b == v.output_a, "output is the chosen reply"
        assert item.model == v.model_b and item.model_b == v.model_a and item.adapter_b == v.adapter_a
        assert item.prompt == MESSAGES and item.template_version_id == 4 and item.template == "geo"
        assert item.meta["vote_id"] == v.id and item.meta.get("model_version_b") == v.model_version_a
        assert (sent.response.labeler, sent.response.value, sent.response.status) == ("ann", "a", "submitted")
        assert preference_from_vote(db, v.id, ANN).item.id == item.id  # a second click sends nothing new
    with connect(settings.db_path) as db:
        assert [i.id for i in list_items(db, "preferences")] == [item.id]
        assert len(list_responses(db, queue="preferences")) == 1


def test_ties_have_no_preference_but_take_corrections(settings):
    with connect(settings.db_path) as db:
        v = vote(db, "both_bad", input="Capital of France?")
        with pytest.raises(InvalidRequestError, match="correct answer"):
            preference_from_vote(db, v.id, ANN)
        sent = correction_from_vote(db, v.id, "a", "Paris.", Sender("bo", "admin"))  # an admin sees every vote
        assert (sent.queue.name, sent.kind, sent.response.value, sent.response.labeler) == (
            "inbox",
            "correction",
            "Paris.",
            "bo",
        )
        assert (sent.item.output, sent.item.model) == (v.output_a, v.model_a)
        assert sent.item.prompt == "Capital of France?"
        with pytest.raises(InvalidRequestError, match="empty"):
            correction_from_vote(db, v.id, "b", "   ", ANN)
        with pytest.raises(InvalidRequestError, match="side"):
            correction_from_vote(db, v.id, "c", "Paris.", ANN)
        assert len(list_items(db, "inbox")) == 1, "refused corrections store no item"


def test_vote_feedback_is_accepted_training_signal_until_consumed(settings):
    with connect(settings.db_path) as db:
        v1, v2 = vote(db, "a"), vote(db, "b")
        p1 = preference_from_vote(db, v1.id, ANN).item
        c2 = correction_from_vote(db, v2.id, "b", "Paris.", ANN).item
        assert [a.item.id for a in accepted_items(db)] == [c2.id, p1.id], "inbox, then preferences (by name)"
        mark_consumed(db, [p1.id], "training-job:1")
        assert [a.item.id for a in accepted_items(db, unconsumed_by="training-job:")] == [c2.id]
        (fix,) = accepted_items(db, task="correction")
        assert (fix.value, fix.how, fix.labelers) == ("Paris.", "single", ("ann",))
