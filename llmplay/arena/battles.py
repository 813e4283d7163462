"""Blind battles: two contestants from a pool in random positions, a vote, then the reveal.

A battle lives in SQLite (``arena_battles``) from the moment it is saved: the browser only ever holds
its random id and ``Battle.public()``, which leaves out who is who until the battle is revealed. Keeping
it in the database rather than in process memory means a vote still finds its identities after a
restart, from another worker thread or process, and that "already revealed" is decided atomically by
one UPDATE, so two racing clicks cannot both count.

The first vote reveals the identities. Any vote after the reveal (a second click, a vote after pressing
"reveal") is stored with ``counted = 0``: the voter knew who was who, so it is left out of the ratings.
"""

from __future__ import annotations

import itertools
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from sqlite_utils import Database

from llmplay.arena.ratings import WINNERS, Fit
from llmplay.arena.votes import Prompt, Vote, contestant_key, now, record_vote
from llmplay.errors import InvalidRequestError
from llmplay.store import immediate

BATTLES = "arena_battles"
DEFAULT_EXPLORE = 0.25  # share of draws that ignore the ratings, so every pair keeps being seen


@dataclass(frozen=True)
class Contestant:
    model: str
    adapter: str | None = None
    template_version_id: int | None = None  # set when template versions battle each other
    model_version: str | None = None  # weights fingerprint, recorded with the vote; not part of the identity

    @property
    def key(self) -> str:
        """The name it is rated under (see votes.contestant_key)."""
        return contestant_key(self.model, self.adapter, self.template_version_id)

    def describe(self) -> dict:
        return {"model": self.model, "adapter": self.adapter, "template_version_id": self.template_version_id}


@dataclass
class Battle:
    a: Contestant
    b: Contestant
    input: Prompt
    template: str | None = None  # template both sides' prompts were rendered from
    template_version_id: int | None = None
    params: dict | None = None
    user: str | None = None
    output_a: str | None = None  # None until generated
    output_b: str | None = None
    id: str = field(default_factory=lambda: secrets.token_hex(12))
    created_at: str = field(default_factory=now)
    revealed_at: str | None = None

    @property
    def revealed(self) -> bool:
        return self.revealed_at is not None

    def public(self) -> dict:
        """What may be sent to the browser: the input and both replies; identities only once revealed."""
        payload = {
            "id": self.id,
            "input": self.input,
            "template": self.template,
            "output_a": self.output_a,
            "output_b": self.output_b,
            "revealed": self.revealed,
        }
        if self.revealed:
            payload |= {"a": self.a.describe(), "b": self.b.describe()}
        return payload

    def row(self) -> dict:
        row = {
            "id": self.id,
            "created_at": self.created_at,
            "user": self.user,
            "template": self.template,
            "template_version_id": self.template_version_id,
            "input": json.dumps(self.input),
            "params": json.dumps(self.params) if self.params is not None else None,
            "output_a": self.output_a,
            "output_b": self.output_b,
            "revealed_at": self.revealed_at,
        }
        for side, c in (("a", self.a), ("b", self.b)):
            row |= {
                f"model_{side}": c.model,
                f"adapter_{side}": c.adapter,
                f"template_version_{side}": c.template_version_id,
                f"model_version_{side}": c.model_version,
            }
        return row

    @classmethod
    def from_row(cls, row: dict) -> Battle:
        columns = ("model", "adapter", "template_version", "model_version")
        sides = {side: Contestant(*(row[f"{column}_{side}"] for column in columns)) for side in ("a", "b")}
        return cls(
            a=sides["a"],
            b=sides["b"],
            input=json.loads(row["input"]),
            template=row["template"],
            template_version_id=row["template_version_id"],
            params=json.loads(row["params"]) if row["params"] else None,
            user=row["user"],
            output_a=row["output_a"],
            output_b=row["output_b"],
            id=row["id"],
            created_at=row["created_at"],
            revealed_at=row["revealed_at"],
        )


@dataclass(frozen=True)
class VoteResult:
    vote: Vote
    battle: Battle  # revealed
    counted: bool

    @property
    def message(self) -> str:
        if self.counted:
            return "Vote counted."
        return "The identities were already shown, so this vote is kept but not counted in the ratings."


def _distinct(pool: Sequence[Contestant]) -> list[Contestant]:
    seen: dict[str, Contestant] = {}
    for c in pool:
        seen.setdefault(c.key, c)
    if len(seen) < 2:
        raise InvalidRequestError("Pick at least two different models (or adapters / template versions) for a battle.")
    return list(seen.values())


def pair_probabilities(
    pool: Sequence[Contestant], fit: Fit | None = None, explore: float = DEFAULT_EXPLORE
) -> dict[tuple[str, str], float]:
    """Chance of drawing each pair (keys in pool order): proportional to the probability that the current
    fit has their order wrong, mixed with a uniform share ``explore``. Pairs with few votes or close
    ratings come first, since one more vote there tells the most; pairs never seen count as a coin flip."""
    if not 0 <= explore <= 1:
        raise InvalidRequestError("explore must be between 0 and 1")
    pairs = list(itertools.combinations(_distinct(pool), 2))
    doubt = np.array([fit.order_uncertainty(a.key, b.key) if fit else 0.5 for a, b in pairs])
    focused = doubt / doubt.sum() if doubt.sum() > 0 else np.full(len(pairs), 1 / len(pairs))
    probs = (1 - explore) * focused + explore / len(pairs)
    return {(a.key, b.key): float(p) for (a, b), p in zip(pairs, probs, strict=True)}


def pick_pair(
    pool: Sequence[Contestant],
    fit: Fit | None = None,
    rng: np.random.Generator | int | None = None,
    explore: float = DEFAULT_EXPLORE,
) -> tuple[Contestant, Contestant]:
    """Two different contestants, favouring the pair whose order is least certain, in random positions."""
    rng = np.random.default_rng(rng)
    contestants = {c.key: c for c in _distinct(pool)}
    probs = pair_probabilities(pool, fit, explore)
    pairs = list(probs)
    first, second = pairs[rng.choice(len(pairs), p=np.array(list(probs.values())))]
    if rng.random() < 0.5:
        first, second = second, first
    return contestants[first], contestants[second]


def draw_battle(
    pool: Sequence[Contestant],
    input: Prompt,
    *,
    fit: Fit | None = None,
    rng: np.random.Generator | int | None = None,
    explore: float = DEFAULT_EXPLORE,
    template: str | None = None,
    template_version_id: int | None = None,
    params: dict | None = None,
    user: str | None = None,
) -> Battle:
    """A new (unsaved) battle on ``input``; generate both replies, then ``save_battle``."""
    if not input or (isinstance(input, str) and not input.strip()):
        raise InvalidRequestError("Write a prompt for the battle first; it is empty.")
    a, b = pick_pair(pool, fit, rng, explore)
    return Battle(a, b, input, template, template_version_id, params, user)


def save_battle(db: Database, battle: Battle) -> Battle:
    """Insert or update (e.g. with the replies once generated); the reveal state in the database wins."""
    row = battle.row()
    if db[BATTLES].exists() and db[BATTLES].count_where("id = ?", [battle.id]):
        row.pop("revealed_at")
        row.pop("created_at")
        db[BATTLES].update(battle.id, row)
    else:
        db[BATTLES].insert(row)
    return load_battle(db, battle.id)


def set_outputs(db: Database, battle_id: str, output_a: str, output_b: str) -> Battle:
    load_battle(db, battle_id)  # a clear error for an unknown id
    db[BATTLES].update(battle_id, {"output_a": output_a, "output_b": output_b})
    return load_battle(db, battle_id)


def load_battle(db: Database, battle_id: str) -> Battle:
    rows = list(db[BATTLES].rows_where("id = ?", [battle_id])) if db[BATTLES].exists() else []
    if not rows:
        raise InvalidRequestError(f"Unknown battle {battle_id!r}; start a new battle.")
    return Battle.from_row(rows[0])


def _mark_revealed(db: Database, battle_id: str) -> bool:
    """True when this call revealed the battle, False when it was already revealed (atomic)."""
    sql = f"update {BATTLES} set revealed_at = ? where id = ? and revealed_at is null"
    return db.execute(sql, [now(), battle_id]).rowcount == 1


def reveal(db: Database, battle_id: str) -> Battle:
    """Show who is who without voting; any vote on this battle from now on is not counted."""
    load_battle(db, battle_id)
    _mark_revealed(db, battle_id)
    return load_battle(db, battle_id)


def cast_vote(db: Database, battle_id: str, winner: str, user: str | None = None) -> VoteResult:
    """Record a vote (a | b | tie | both_bad) and reveal the battle. Only the first vote cast before any
    reveal counts; later ones are stored with counted = 0."""
    if winner not in WINNERS:
        raise InvalidRequestError(f"Unknown vote {winner!r}: choose one of {', '.join(WINNERS)}.")
    battle = load_battle(db, battle_id)
    if battle.output_a is None or battle.output_b is None:
        raise InvalidRequestError("Wait until both replies are there before voting.")
    with immediate(db):
        counted = _mark_revealed(db, battle_id)
        row = next(db[BATTLES].rows_where("id = ?", [battle_id]))
        vote = record_vote(db, row, winner, counted=counted, user=user if user is not None else battle.user)
    return VoteResult(vote, load_battle(db, battle_id), counted)
