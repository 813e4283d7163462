"""Agreement between labelers of a queue, and the items where they disagree.

Figures come from well-kept libraries, not hand-written formulas: Cohen's kappa from scikit-learn (exactly two
labelers, on the items both answered), Fleiss' kappa from statsmodels (more than two labelers, on the items
with the same number of submitted responses). Only submitted responses to open items count. Labels, ratings
and preferences ('a' / 'b' / 'tie') are categories; corrections agree when equal after collapsing whitespace
(``accepted.agree_key``) and get percent agreement only: kappa needs a closed set of categories.

A figure that cannot be computed (one labeler, too few shared items, a single category used by everyone)
is None, and ``note`` says why; nothing here raises on odd data.
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

from sqlite_utils import Database

from llmplay.feedback.accepted import agree_key
from llmplay.feedback.store import (
    ITEMS,
    RESPONSES,
    Adjudication,
    Item,
    Queue,
    Response,
    get_adjudication,
    get_queue,
)
from llmplay.textdiff import Piece, diff_html, word_diff

KAPPA_TASKS = ("label", "rating", "preference")


@dataclass(frozen=True)
class LabelerStats:
    labeler: str
    submitted: int
    drafts: int
    discarded: int
    compared: int  # their submitted items where the other labelers have a majority answer
    agreement_with_others: float | None  # share of ``compared`` items where they gave that majority answer


@dataclass(frozen=True)
class QueueAgreement:
    queue: str
    task: str
    k: int
    labelers_count: int  # labelers with at least one submitted response
    items_compared: int  # open items with >= 2 submitted responses
    percent_agreement: float | None  # share of those items where every response agrees
    pairwise_agreement: float | None  # mean over those items of the share of agreeing response pairs
    cohen_kappa: float | None = None  # exactly two labelers
    cohen_items: int = 0  # items both answered
    weighted_kappa: float | None = None  # ratings, two labelers: Cohen's kappa with quadratic weights
    fleiss_kappa: float | None = None  # more than two labelers
    fleiss_items: tuple[int, ...] = ()  # the item ids Fleiss' kappa used (all with ``fleiss_raters`` responses)
    fleiss_raters: int = 0
    labelers: list[LabelerStats] = field(default_factory=list)
    note: str = ""  # why a figure is missing, and which items a figure used

    @property
    def kappa(self) -> float | None:
        """The headline kappa: Cohen's for two labelers, Fleiss' for more."""
        return self.cohen_kappa if self.cohen_kappa is not None else self.fleiss_kappa

    @property
    def summary(self) -> str:
        """One line for tables: '87% agree, kappa 0.71 (Cohen, 40 items)'."""
        if self.percent_agreement is None:
            return "not enough overlap yet"
        text = f"{self.percent_agreement:.0%} agree"
        if self.cohen_kappa is not None:
            text += f", kappa {self.cohen_kappa:.2f} (Cohen, {self.cohen_items} items)"
        elif self.fleiss_kappa is not None:
            text += f", kappa {self.fleiss_kappa:.2f} (Fleiss, {len(self.fleiss_items)} items)"
        return text


@dataclass(frozen=True)
class Disagreement:
    item: Item
    values: dict[str, Any]  # labeler -> submitted value, in submission order
    diff: list[Piece] | None  # corrections: word diff from the first labeler's text to the second's
    adjudication: Adjudication | None

    @property
    def diff_html(self) -> str | None:
        if self.diff is None:
            return None
        first, second = list(self.values.values())[:2]
        return diff_html(first, second)


def _submitted(db: Database, queue: Queue) -> dict[int, list[Response]]:
    """item id -> submitted responses (oldest first), open items only."""
    out: dict[int, list[Response]] = {}
    rows = db.query(
        f"""select r.* from {RESPONSES} r join {ITEMS} i on i.id = r.item_id
            where r.queue_id = ? and r.status = 'submitted' and i.status = 'open'
            order by coalesce(r.submitted_at, r.created_at), r.id""",
        [queue.id],
    )
    for row in rows:
        response = Response.from_row(row)
        out.setdefault(response.item_id, []).append(response)
    return out


def _counts(db: Database, queue: Queue) -> dict[str, Counter]:
    out: dict[str, Counter] = {}
    rows = db.execute(
        f"""select r.labeler, r.status, count(*) from {RESPONSES} r join {ITEMS} i on i.id = r.item_id
            where r.queue_id = ? and i.status = 'open' group by r.labeler, r.status""",
        [queue.id],
    ).fetchall()
    for labeler, status, n in rows:
        out.setdefault(labeler, Counter())[status] = n
    return out


def _quiet(fn, *args, **kwargs) -> float | None:
    """A library figure, or None where it is undefined (NaN, a division by zero, a degenerate table)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            value = float(fn(*args, **kwargs))
        except (ValueError, ZeroDivisionError, FloatingPointError, IndexError):
            return None
    return None if value != value else value  # NaN


def _cohen(queue: Queue, by_item: dict[int, list[Response]], pair: tuple[str, str]):
    from sklearn.metrics import cohen_kappa_score

    a, b = [], []
    for responses in by_item.values():
        values = {r.labeler: r.value for r in responses}
        if pair[0] in values and pair[1] in values:
            a.append(values[pair[0]])
            b.append(values[pair[1]])
    if len(a) < 2:
        return None, None, len(a), f"Cohen's kappa needs at least 2 items both labelers answered; they share {len(a)}."
    if len(set(a) | set(b)) < 2:
        return None, None, len(a), f"Cohen's kappa is undefined: both labelers gave {a[0]!r} to every shared item."
    labels = sorted(set(a) | set(b), key=str) if queue.task != "rating" else sorted(set(a) | set(b))
    kappa = _quiet(cohen_kappa_score, a, b, labels=labels)
    weighted = _quiet(cohen_kappa_score, a, b, labels=labels, weights="quadratic") if queue.task == "rating" else None
    note = f"Cohen's kappa on the {len(a)} items both {pair[0]} and {pair[1]} answered."
    if kappa is None:
        note = f"Cohen's kappa is undefined on these {len(a)} items (chance agreement is 1)."
    return kappa, weighted, len(a), note


def _fleiss(by_item: dict[int, list[Response]]):
    import numpy as np
    from statsmodels.stats.inter_rater import aggregate_raters, fleiss_kappa

    sizes = Counter(len(rs) for rs in by_item.values() if len(rs) >= 2)
    if not sizes:
        return None, (), 0, "Fleiss' kappa needs items with at least 2 responses."
    # Fleiss' kappa needs the same number of ratings per item: the most common count (ties: the larger one).
    raters = max(sizes, key=lambda n: (sizes[n], n))
    used = sorted(i for i, rs in by_item.items() if len(rs) == raters)
    left = sum(n for size, n in sizes.items() if size != raters)
    if len(used) < 2:
        return None, tuple(used), raters, f"Fleiss' kappa needs at least 2 items with {raters} responses each."
    categories = sorted({str(r.value) for i in used for r in by_item[i]})
    index = {c: n for n, c in enumerate(categories)}
    data = np.array([[index[str(r.value)] for r in by_item[i]] for i in used])
    table, _ = aggregate_raters(data, n_cat=len(categories))
    kappa = _quiet(fleiss_kappa, table, method="fleiss")
    note = f"Fleiss' kappa on the {len(used)} items with {raters} responses each"
    note += f" ({left} item(s) with another count left out)." if left else "."
    if len(categories) < 2:
        kappa, note = None, f"Fleiss' kappa is undefined: every response on the {len(used)} items is {categories[0]!r}."
    elif kappa is None:
        note = f"Fleiss' kappa is undefined on these {len(used)} items (chance agreement is 1)."
    return kappa, tuple(used), raters, note


def _labeler_stats(queue: Queue, by_item: dict[int, list[Response]], counts: dict[str, Counter]) -> list[LabelerStats]:
    matched: Counter = Counter()
    compared: Counter = Counter()
    for responses in by_item.values():
        for r in responses:
            others = Counter(agree_key(queue, o.value) for o in responses if o.labeler != r.labeler)
            if not others:
                continue
            top, n = others.most_common(1)[0]
            if n * 2 <= sum(others.values()):  # no majority among the others: nothing to agree with
                continue
            compared[r.labeler] += 1
            matched[r.labeler] += agree_key(queue, r.value) == top
    return [
        LabelerStats(
            labeler=name,
            submitted=c["submitted"],
            drafts=c["draft"],
            discarded=c["discarded"],
            compared=compared[name],
            agreement_with_others=matched[name] / compared[name] if compared[name] else None,
        )
        for name, c in sorted(counts.items())
    ]


def queue_agreement(db: Database, queue: str | int | Queue) -> QueueAgreement:
    """Agreement figures for one queue (see the module docstring for what is computed on which items)."""
    queue = get_queue(db, queue)
    by_item = _submitted(db, queue)
    counts = _counts(db, queue)
    labelers = sorted({r.labeler for rs in by_item.values() for r in rs})
    overlap = {i: rs for i, rs in by_item.items() if len(rs) >= 2}
    notes = []
    if overlap:
        keys = {i: [agree_key(queue, r.value) for r in rs] for i, rs in overlap.items()}
        percent = sum(len(set(v)) == 1 for v in keys.values()) / len(keys)
        pairwise = sum(sum(x == y for x, y in combinations(v, 2)) / (len(v) * (len(v) - 1) / 2) for v in keys.values())
        pairwise /= len(keys)
    else:
        percent = pairwise = None
        notes.append("No item has two submitted responses yet, so there is nothing to compare.")
    figures: dict[str, Any] = {}
    if queue.task not in KAPPA_TASKS:
        notes.append("Kappa is for labels, ratings and preferences; corrections get percent agreement only.")
    elif len(labelers) < 2:
        notes.append(f"Kappa needs at least two labelers; {len(labelers)} answered so far.")
    elif len(labelers) == 2:
        kappa, weighted, n, note = _cohen(queue, by_item, (labelers[0], labelers[1]))
        figures |= {"cohen_kappa": kappa, "weighted_kappa": weighted, "cohen_items": n}
        notes.append(note)
    else:
        kappa, used, raters, note = _fleiss(by_item)
        figures |= {"fleiss_kappa": kappa, "fleiss_items": used, "fleiss_raters": raters}
        notes.append(note)
    return QueueAgreement(
        queue=queue.name,
        task=queue.task,
        k=queue.k,
        labelers_count=len(labelers),
        items_compared=len(overlap),
        percent_agreement=percent,
        pairwise_agreement=pairwise,
        labelers=_labeler_stats(queue, by_item, counts),
        note=" ".join(notes),
        **figures,
    )


def disagreements(db: Database, queue: str | int | Queue) -> list[Disagreement]:
    """Open items whose submitted responses differ (corrections: after collapsing whitespace), oldest first,
    with each labeler's value, a word diff of the first two corrections, and the adjudication if any."""
    queue = get_queue(db, queue)
    out = []
    for item_id, responses in sorted(_submitted(db, queue).items()):
        if len({_hashable(agree_key(queue, r.value)) for r in responses}) < 2:
            continue
        values = {r.labeler: r.value for r in responses}
        diff = None
        if queue.task == "correction":
            first, second = list(values.values())[:2]
            diff = word_diff(str(first), str(second))
        out.append(Disagreement(_item(db, item_id), values, diff, get_adjudication(db, item_id)))
    return out


def _hashable(value: Any) -> Any:
    return value if isinstance(value, str | int | float | bool | None) else repr(value)


def _item(db: Database, item_id: int) -> Item:
    return Item.from_row(db[ITEMS].get(item_id))
