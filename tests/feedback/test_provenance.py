"""The provenance rule: feedback names stored outputs that are the sender's own (or visible to their role), every
item records what it refers to and every response who sent it, and a viewer's lone pair waits for review."""

from __future__ import annotations

import pytest

from llmplay.arena.battles import Contestant, cast_vote, draw_battle, save_battle
from llmplay.compare import correction_from_comparison, preference_from_comparison
from llmplay.compare.results import save_comparison
from llmplay.feedback.accepted import accepted_items
from llmplay.feedback.exports import export_rows
from llmplay.feedback.provenance import Sender
from llmplay.feedback.sources import correction_from_vote, preference_from_vote
from llmplay.feedback.store import FeedbackError, adjudicate, list_responses, update_queue
from tests.feedback.test_sources import finished_comparison

VIC, LAB, ADA = Sender("vic", "viewer"), Sender("lab", "labeler"), Sender("ada", "admin")
NOT_YOURS = "There is no {} of yours"


def arena_vote(db, user: str, winner: str = "a"):
    battle = draw_battle([Contestant("m1"), Contestant("m2")], "Capital of France?", rng=0, user=user)
    battle.output_a, battle.output_b = "Paris.", "Lyon."
    save_battle(db, battle)
    return cast_vote(db, battle.id, winner, user).vote


def test_a_comparison_is_used_only_by_who_ran_it_or_an_admin(db):
    mine = save_comparison(db, finished_comparison(), "vic")
    for sender in (LAB, Sender("vicky", "viewer")):
        with pytest.raises(FeedbackError, match=NOT_YOURS.format(f"comparison {mine}")):
            preference_from_comparison(db, mine, 1, 2, sender)
        with pytest.raises(FeedbackError, match=NOT_YOURS.format(f"comparison {mine}")):
            correction_from_comparison(db, mine, 2, "Hello!", sender)
    for missing in (mine + 1, "x", None, 2**70, {"columns": []}):  # the same words: ids cannot be probed
        with pytest.raises(FeedbackError, match="There is no comparison .* of yours"):
            preference_from_comparison(db, missing, 1, 2, VIC)
    assert db["feedback_items"].count == 0, "a refused send stores nothing"
    assert preference_from_comparison(db, mine, 1, 2, ADA).item.output == "Hello there!"  # an admin sees all


def test_a_pair_records_its_stored_outputs_and_sender_and_a_viewers_waits_for_review(db):
    stored = save_comparison(db, finished_comparison(), "vic")
    sent = preference_from_comparison(db, stored, 2, 1, VIC)

    assert sent.item.origin == {"comparison": stored, "columns": [2, 1]}
    assert (sent.item.output, sent.item.output_b) == ("Bye.", "Hello there!"), "the stored replies, not a client's"
    (response,) = list_responses(db, item_id=sent.item.id)
    assert (response.labeler, response.role, response.value) == ("vic", "viewer", "a")
    assert accepted_items(db, "preferences") == [], "a viewer's lone pair is not accepted without review"
    assert export_rows(db, "preferences", "dpo").rows == [], "so it is no DPO row"

    adjudicate(db, sent.item.id, "a", adjudicator="ada")  # a reviewer signs it off
    (accepted,) = accepted_items(db, "preferences")
    assert (accepted.item.id, accepted.how) == (sent.item.id, "adjudicated")


def test_a_labelers_pair_is_accepted_and_the_queue_decides_who_needs_review(db):
    labs = save_comparison(db, finished_comparison(), "lab")
    sent = preference_from_comparison(db, labs, 1, 2, LAB)
    assert [(a.item.id, a.how) for a in accepted_items(db, "preferences")] == [(sent.item.id, "single")]

    update_queue(db, "preferences", accept_from="admin", user="ada")  # this team reviews every pair
    assert accepted_items(db, "preferences") == []
    update_queue(db, "preferences", accept_from="viewer", user="ada")  # ... or trusts everyone's
    vics = preference_from_comparison(db, save_comparison(db, finished_comparison(), "vic"), 2, 1, VIC)
    assert {a.item.id for a in accepted_items(db, "preferences")} == {sent.item.id, vics.item.id}
    with pytest.raises(FeedbackError, match="accept_from must be a role"):
        update_queue(db, "preferences", accept_from="everyone", user="ada")


def test_arena_feedback_takes_only_the_senders_own_vote(db):
    vics = arena_vote(db, "vic")
    with pytest.raises(FeedbackError, match=NOT_YOURS.format(f"arena vote {vics.id}")):
        preference_from_vote(db, vics.id, LAB)
    with pytest.raises(FeedbackError, match=NOT_YOURS.format(f"arena vote {vics.id}")):
        correction_from_vote(db, vics.id, "b", "Paris.", Sender("lab", "labeler"))
    with pytest.raises(FeedbackError, match=NOT_YOURS.format(f"arena vote {vics.id + 1}")):
        preference_from_vote(db, vics.id + 1, VIC)

    sent = preference_from_vote(db, vics.id, VIC)
    assert sent.item.origin == {"vote": vics.id, "battle": vics.battle_id}
    assert (sent.response.labeler, sent.response.role) == ("vic", "viewer")
    assert accepted_items(db, "preferences") == []
    labs = arena_vote(db, "lab", "b")
    fixed = correction_from_vote(db, labs.id, "b", "Paris.", LAB)
    assert fixed.item.origin == {"vote": labs.id, "battle": labs.battle_id, "side": "b"}
    assert [a.item.id for a in accepted_items(db)] == [fixed.item.id]
