"""Accepted feedback for loop tests: label items of the financial-sentiment template, answered by one labeler."""

from __future__ import annotations

from llmplay.feedback import store

SENTENCES = [
    ("Operating profit rose 25 % to EUR 10 mn.", "positive"),
    ("The company swung to a net loss of EUR 3 mn.", "negative"),
    ("The annual general meeting will be held in Espoo.", "neutral"),
    ("Net sales doubled and the order book hit a record.", "positive"),
    ("The group will lay off 300 employees after sales fell.", "negative"),
    ("The company has offices in Finland and Sweden.", "neutral"),
]


def add_accepted(db, n: int, *, queue: str = "fpb-review", start: int = 0, wrong: bool = False) -> list[int]:
    """``n`` accepted label answers (k = 1), item ids returned. ``wrong`` answers every item with a wrong label other
    than "positive" (negative, or neutral for the negative ones): SmolLM2 answers "positive" to every sentence here,
    so each wrong answer pulls the model away from what it says (with "positive" among them a candidate could learn
    them and still answer as the base does)."""
    if queue not in {q.name for q in store.list_queues(db)}:
        store.create_queue(db, queue, "label", labels=["positive", "negative", "neutral"], user="admin")
    ids = []
    for i in range(start, start + n):
        text, label = SENTENCES[i % len(SENTENCES)]
        text = f"{text} (report {i})"
        item, _ = store.add_item(
            db, queue, source="test", prompt=text, output="neutral", input={"text": text},
            template="financial-sentiment", user="test",
        )  # fmt: skip
        answer = ("neutral" if label == "negative" else "negative") if wrong else label
        store.respond(db, item.id, "ann", answer)
        ids.append(item.id)
    return ids
