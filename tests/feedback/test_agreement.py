"""Agreement figures against hand computations on fixed tables of responses."""

from __future__ import annotations

import pytest

from llmplay.feedback import store as fs
from llmplay.feedback.agreement import disagreements, queue_agreement


def _fill(db, queue, table: dict[str, list], task="label"):
    """table: labeler -> values per item (None = no response); one item per column."""
    n = len(next(iter(table.values())))
    items = [
        i
        for i, _ in fs.add_items(
            db, queue, [{"source": "test", "prompt": f"q{i}", "output": f"o{i}"} for i in range(n)]
        )
    ]
    for labeler, values in table.items():
        for item, value in zip(items, values):
            if value is not None:
                fs.respond(db, item.id, labeler, value)
    return items


def test_cohen_kappa_two_labelers_equals_hand_computation(db):
    fs.create_queue(db, "sentiment", "label", labels=["p", "n"], k=2)
    _fill(db, "sentiment", {"ann": list("pppppnnnnp"), "bob": list("ppppnnnnpp")})
    a = queue_agreement(db, "sentiment")
    # Observed agreement: items 1-4, 6-8 and 10 agree -> po = 8/10 = 0.8.
    # Marginals: ann p 6/10, n 4/10; bob p 6/10, n 4/10 -> pe = 0.6*0.6 + 0.4*0.4 = 0.52.
    # kappa = (0.8 - 0.52) / (1 - 0.52) = 0.28 / 0.48 = 0.583333...
    assert a.items_compared == 10 and a.cohen_items == 10
    assert a.percent_agreement == pytest.approx(0.8)
    assert a.pairwise_agreement == pytest.approx(0.8)  # one pair per item
    assert a.cohen_kappa == pytest.approx(0.28 / 0.48)
    assert a.fleiss_kappa is None and a.weighted_kappa is None
    assert a.kappa == a.cohen_kappa
    stats = {s.labeler: s for s in a.labelers}
    assert stats["ann"].submitted == 10 and stats["ann"].agreement_with_others == pytest.approx(0.8)
    assert "10 items both ann and bob answered" in a.note


def test_weighted_kappa_for_ratings_equals_hand_computation(db):
    fs.create_queue(db, "stars", "rating", rating_min=1, rating_max=3, k=2)
    _fill(db, "stars", {"ann": [1, 2, 3, 3], "bob": [1, 3, 3, 2]}, task="rating")
    a = queue_agreement(db, "stars")
    # Unweighted: po = 2/4 = 0.5; both marginals (1: .25, 2: .25, 3: .5) -> pe = .0625+.0625+.25 = .375;
    # kappa = (.5 - .375) / .625 = 0.2.
    assert a.cohen_kappa == pytest.approx(0.2)
    # Quadratic weights w = (i-j)^2 / (3-1)^2: observed mean disagreement (0 + .25 + 0 + .25) / 4 = .125;
    # expected = 2*(.25*.25*.25) + 2*(.25*.5*1) + 2*(.25*.5*.25) = .03125 + .25 + .0625 = .34375;
    # kappa_w = 1 - .125 / .34375 = 0.636363...
    assert a.weighted_kappa == pytest.approx(1 - 0.125 / 0.34375)


def test_fleiss_kappa_three_labelers_equals_hand_computation(db):
    fs.create_queue(db, "topics", "label", labels=["x", "y", "z"], k=3)
    items = _fill(
        db,
        "topics",
        {
            "l1": ["x", "x", "y", "x", "x", "x"],
            "l2": ["x", "x", "y", "y", "x", "y"],
            "l3": ["x", "y", "y", "y", "x", None],  # item 6 has only two responses: left out of Fleiss
        },
    )
    a = queue_agreement(db, "topics")
    # Items 1-5, n = 3 raters: P_i = (sum_j n_ij^2 - 3) / 6 -> 1, 1/3, 1, 1/3, 1; mean P = 11/15 = 0.7333.
    # p_x = 9/15 = .6, p_y = 6/15 = .4 -> Pe = .36 + .16 = .52.
    # kappa = (11/15 - .52) / (1 - .52) = 0.213333 / 0.48 = 0.444444...
    assert a.fleiss_kappa == pytest.approx((11 / 15 - 0.52) / 0.48)
    assert a.fleiss_items == tuple(i.id for i in items[:5]) and a.fleiss_raters == 3
    assert "1 item(s) with another count left out" in a.note
    assert a.cohen_kappa is None
    # Percent agreement over the 6 items with >= 2 responses: items 1, 3, 5 agree -> 3/6.
    assert a.items_compared == 6 and a.percent_agreement == pytest.approx(0.5)
    # Pairwise: (1 + 1/3 + 1 + 1/3 + 1 + 0) / 6.
    assert a.pairwise_agreement == pytest.approx((3 + 2 / 3) / 6)
    # Against the others' majority: l1 matches on 1, 3, 5; misses 4 (others y, y) and 6 (other y);
    # item 2's others split (x, y) -> not compared: 3/5. l2: items 2 and 4 split -> 3 of 4.
    stats = {s.labeler: s for s in a.labelers}
    assert (stats["l1"].compared, stats["l1"].agreement_with_others) == (5, pytest.approx(0.6))
    assert (stats["l2"].compared, stats["l2"].agreement_with_others) == (4, pytest.approx(0.75))
    assert (stats["l3"].compared, stats["l3"].agreement_with_others) == (4, pytest.approx(0.75))


def test_undefined_kappa_is_none_with_a_reason(db):
    fs.create_queue(db, "same", "label", labels=["p", "n"], k=2)
    _fill(db, "same", {"ann": ["p", "p", "p"], "bob": ["p", "p", "p"]})
    a = queue_agreement(db, "same")
    assert a.percent_agreement == 1.0
    assert a.cohen_kappa is None and "undefined" in a.note and "'p'" in a.note

    fs.create_queue(db, "lonely", "label", labels=["p", "n"], k=1)
    _fill(db, "lonely", {"ann": ["p", "n"]})
    a = queue_agreement(db, "lonely")
    assert a.percent_agreement is None and a.kappa is None
    assert "at least two labelers" in a.note and "nothing to compare" in a.note

    fs.create_queue(db, "three-same", "label", labels=["p", "n"], k=3)
    _fill(db, "three-same", {"a": ["p", "p"], "b": ["p", "p"], "c": ["p", "p"]})
    a = queue_agreement(db, "three-same")
    assert a.fleiss_kappa is None and "undefined" in a.note


def test_labeler_counts_include_drafts_and_discards(db):
    fs.create_queue(db, "counts", "label", labels=["p", "n"], k=2)
    items = _fill(db, "counts", {"ann": ["p", None, None], "bob": ["n", None, None]})
    fs.respond(db, items[1].id, "ann", None, status="draft")
    fs.respond(db, items[2].id, "ann", None, status="discarded")
    stats = {s.labeler: s for s in queue_agreement(db, "counts").labelers}
    assert (stats["ann"].submitted, stats["ann"].drafts, stats["ann"].discarded) == (1, 1, 1)
    assert stats["ann"].agreement_with_others == 0.0


def test_disagreements_list_differing_corrections_with_a_word_diff(db):
    fs.create_queue(db, "fix", "correction", k=2)
    same, differ = _fill(
        db,
        "fix",
        {
            "ann": ["Paris is the capital.", "The answer is 4."],
            "bob": ["Paris  is the\ncapital.", "The answer is four."],
        },
        task="correction",
    )
    found = disagreements(db, "fix")
    assert [d.item.id for d in found] == [differ.id]  # whitespace-only differences agree
    d = found[0]
    assert d.values == {"ann": "The answer is 4.", "bob": "The answer is four."}
    assert [(p.op, p.text) for p in d.diff if p.op != "equal"] == [("delete", "4"), ("insert", "four")]
    assert "<del" in d.diff_html and d.adjudication is None
    fs.adjudicate(db, differ.id, "The answer is 4 (four).", adjudicator="lead")
    assert disagreements(db, "fix")[0].adjudication.value == "The answer is 4 (four)."
    assert queue_agreement(db, "fix").percent_agreement == 0.5


def test_disagreements_for_labels_skip_agreeing_items(db):
    fs.create_queue(db, "lbl", "label", labels=["p", "n"], k=2)
    items = _fill(db, "lbl", {"ann": ["p", "n"], "bob": ["p", "p"]})
    found = disagreements(db, "lbl")
    assert [(d.item.id, d.values, d.diff) for d in found] == [(items[1].id, {"ann": "n", "bob": "p"}, None)]


def test_preferences_are_categories_for_kappa(db):
    fs.create_queue(db, "pairs", "preference", k=2)
    items = fs.add_items(
        db, "pairs", [{"source": "t", "prompt": f"p{n}", "output": f"A{n}", "output_b": f"B{n}"} for n in range(4)]
    )
    for (item, _), (ann, bob) in zip(items, [("a", "a"), ("b", "b"), ("tie", "a"), ("a", "a")]):
        fs.respond(db, item.id, "ann", ann)
        fs.respond(db, item.id, "bob", bob)
    a = queue_agreement(db, "pairs")
    # po = 3/4; ann a 2/4, b 1/4, tie 1/4; bob a 3/4, b 1/4 -> pe = .5*.75 + .25*.25 = .4375;
    # kappa = (.75 - .4375) / (1 - .4375) = 0.5555...
    assert a.cohen_kappa == pytest.approx(0.3125 / 0.5625)
    assert [(d.values["ann"], d.values["bob"]) for d in disagreements(db, "pairs")] == [("tie", "a")]
