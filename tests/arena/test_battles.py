import json
from collections import Counter

import numpy as np
import pytest

from llmplay.arena.battles import (
    Contestant,
    cast_vote,
    draw_battle,
    load_battle,
    pair_probabilities,
    pick_pair,
    reveal,
    save_battle,
    set_outputs,
)
from llmplay.arena.ratings import Comparison, fit_bradley_terry
from llmplay.arena.votes import list_votes
from llmplay.errors import InvalidRequestError
from llmplay.store import connect

ALPHA = Contestant("secret-model-alpha", template_version_id=9101)
BETA = Contestant("secret-model-beta", adapter="hidden-adapter-xyz")
GAMMA = Contestant("secret-model-gamma")


def new_battle(db, seed=0, **kwargs):
    battle = draw_battle([ALPHA, BETA], "Name a prime number.", rng=seed, template="primes", **kwargs)
    battle.output_a, battle.output_b = "Seven.", "Four."
    return save_battle(db, battle)


def test_public_payload_hides_identities_until_the_vote(settings):
    with connect(settings.db_path) as db:
        battle = new_battle(db)
        before = json.dumps(battle.public())
        for secret in ("secret-model", "hidden-adapter-xyz", "9101", "alpha", "beta"):
            assert secret not in before
        assert battle.public()["output_a"] == "Seven." and battle.public()["revealed"] is False

        result = cast_vote(db, battle.id, "a", user="ann")
        after = result.battle.public()
        assert after["revealed"] is True
        assert {after["a"]["model"], after["b"]["model"]} == {"secret-model-alpha", "secret-model-beta"}
        assert after["a"]["model"] == battle.a.model  # the reveal matches the hidden positions


def test_only_the_first_blind_vote_counts(settings):
    with connect(settings.db_path) as db:
        battle = new_battle(db)
        first = cast_vote(db, battle.id, "a", user="ann")
        second = cast_vote(db, battle.id, "b", user="ann")
        assert first.counted and first.vote.counted
        assert not second.counted and not second.vote.counted
        assert "not counted" in second.message
        assert [v.id for v in list_votes(db)] == [first.vote.id]
        assert len(list_votes(db, counted_only=False)) == 2  # every vote is kept


def test_a_vote_after_reveal_is_not_counted(settings):
    with connect(settings.db_path) as db:
        battle = new_battle(db)
        shown = reveal(db, battle.id)
        assert shown.revealed and shown.public()["a"]["model"] == battle.a.model
        result = cast_vote(db, battle.id, "tie")
        assert not result.counted
        assert list_votes(db) == []


def test_an_invalid_vote_leaves_the_battle_blind(settings):
    with connect(settings.db_path) as db:
        battle = new_battle(db)
        with pytest.raises(InvalidRequestError, match="Unknown vote"):
            cast_vote(db, battle.id, "A is better")
        assert not load_battle(db, battle.id).revealed
        assert cast_vote(db, battle.id, "both_bad").counted


def test_voting_needs_both_replies_and_a_known_battle(settings):
    with connect(settings.db_path) as db:
        battle = save_battle(db, draw_battle([ALPHA, BETA], "Hi", rng=1))
        with pytest.raises(InvalidRequestError, match="both replies"):
            cast_vote(db, battle.id, "a")
        set_outputs(db, battle.id, "Hello!", "")  # an empty reply is still a reply
        assert cast_vote(db, battle.id, "a").counted
        with pytest.raises(InvalidRequestError, match="Unknown battle"):
            cast_vote(db, "no-such-battle", "a")


def test_battle_survives_a_restart(settings):
    with connect(settings.db_path) as db:
        battle = new_battle(db, params={"temperature": 0.7}, user="ann")
    with connect(settings.db_path) as db:  # a new connection, as after a restart
        result = cast_vote(db, battle.id, "b")
    assert result.counted
    vote = result.vote
    assert (vote.model_a, vote.model_b) == (battle.a.model, battle.b.model)
    assert (vote.output_a, vote.output_b, vote.user) == ("Seven.", "Four.", "ann")
    assert vote.params == {"temperature": 0.7} and vote.template == "primes"


def test_positions_are_randomised():
    orders = Counter(tuple(c.model for c in pick_pair([ALPHA, BETA], rng=seed)) for seed in range(200))
    assert set(orders) == {(ALPHA.model, BETA.model), (BETA.model, ALPHA.model)}
    assert 60 <= orders[(ALPHA.model, BETA.model)] <= 140
    rng = np.random.default_rng(0)  # one generator, many draws, also mixes
    firsts = {draw_battle([ALPHA, BETA, GAMMA], "x", rng=rng).a.model for _ in range(50)}
    assert firsts == {ALPHA.model, BETA.model, GAMMA.model}


def test_pair_selection_favours_uncertain_pairs_but_sees_every_pair():
    # alpha beat beta clearly and often; gamma is new, so its order against both is unknown.
    fit = fit_bradley_terry([Comparison(ALPHA.key, BETA.key, "a")] * 60 + [Comparison(ALPHA.key, BETA.key, "b")] * 2)
    probs = pair_probabilities([ALPHA, BETA, GAMMA], fit)
    assert sum(probs.values()) == pytest.approx(1)
    settled = probs[(ALPHA.key, BETA.key)]
    assert settled < probs[(ALPHA.key, GAMMA.key)] / 3
    rng = np.random.default_rng(0)
    drawn = Counter(frozenset(c.key for c in pick_pair([ALPHA, BETA, GAMMA], fit, rng)) for _ in range(600))
    assert len(drawn) == 3  # every pair is still seen
    assert drawn[frozenset((ALPHA.key, BETA.key))] < 600 / 6
    # Without ratings every pair is equally likely.
    assert list(pair_probabilities([ALPHA, BETA, GAMMA]).values()) == pytest.approx([1 / 3] * 3)


def test_pool_must_hold_two_different_contestants():
    with pytest.raises(InvalidRequestError, match="at least two"):
        draw_battle([ALPHA, Contestant("secret-model-alpha", template_version_id=9101)], "x")
    with pytest.raises(InvalidRequestError, match="prompt"):
        draw_battle([ALPHA, BETA], "  ")
    # The same model with and without an adapter are different contestants.
    a, b = pick_pair([GAMMA, Contestant(GAMMA.model, adapter="lora1")], rng=0)
    assert {a.key, b.key} == {"secret-model-gamma", "secret-model-gamma+lora1"}
