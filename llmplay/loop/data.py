"""What one update of a line trains on, and what its feedback gate holds out.

- A line's feedback: accepted answers (llmplay.feedback.accepted) of its queues (or, with none set, of every
  queue whose items were rendered with the line's template), correction and label tasks.
- Held out: a fixed share of those items, chosen by a hash of the item id (the same items for every line),
  so an item is held out for every update of the line and no update ever trains on it (gate a).
- New rows: accepted items no update of this line consumed yet; new pairs: accepted choices of the line's
  ``preference_queues`` (trained by a DPO step, the previous version as its reference). Replay: a seeded sample
  of the items earlier
  updates consumed (``replay_ratio`` x the new rows) and of the shipped general instructions
  (``general_ratio`` x the new rows; llmplay/loop/probe_data/general_replay.jsonl), answered with the base
  model's own replies (``with_base_replies``: self-rehearsal keeps how the base answers ordinary requests).
Rows become chat ``messages`` rendered through the same template path inference uses (template variables of
the item when it has them, else its stored prompt), plus the accepted answer as the assistant turn.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from sqlite_utils import Database

from llmplay.feedback.accepted import Accepted, accepted_items
from llmplay.feedback.store import get_queue
from llmplay.loop.lines import Line

PROBE_DATA = Path(__file__).parent / "probe_data"
TASKS = ("correction", "label")


def consumer_prefix(line: Line) -> str:
    return f"loop:{line.name}:"


def consumer_name(line: Line, update_id: int) -> str:
    return f"{consumer_prefix(line)}update-{update_id}"


def is_heldout(item_id: int, fraction: float) -> bool:
    """Whether a feedback item belongs to the held-out share ``fraction``: a hash of its id alone, so every line
    holds out the same items (lines that learn from one queue are judged on the same rows), and a smaller
    share is a subset of a larger one."""
    digest = hashlib.sha256(f"heldout:{item_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < fraction


def line_feedback(db: Database, line: Line) -> list[Accepted]:
    """Accepted answers of the line's queues (correction / label tasks) whose value is usable text."""
    if line.settings.queues:
        found = []
        for name in line.settings.queues:
            found += accepted_items(db, get_queue(db, name))
    else:
        template = line.template.split("@", 1)[0]
        found = [a for a in accepted_items(db) if (a.item.template or "").split("@", 1)[0] == template]
    return [a for a in found if a.queue.task in TASKS and isinstance(a.value, str) and a.value.strip()]


def _updates_by_outcome(db: Database, line: Line) -> tuple[set[str], set[str]]:
    """Consumer names of the line's promoted updates and of its rejected ones."""
    rows = db.execute(
        "select u.id, u.status from loop_updates u join loop_lines l on l.id = u.line_id where l.name = ?", [line.name]
    ).fetchall()
    named = {status: {consumer_name(line, i) for i, st in rows if st == status} for status in ("promoted", "rejected")}
    return named["promoted"], named["rejected"]


def general_rows() -> list[dict]:
    path = PROBE_DATA / "general_replay.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


@dataclass
class UpdateData:
    new: list[Accepted]
    replay: list[Accepted]
    general: list[dict]
    heldout: list[Accepted]
    notes: list[str] = field(default_factory=list)
    pairs: list[Accepted] = field(default_factory=list)  # new accepted preference pairs (a DPO step)
    earlier: list[Accepted] = field(default_factory=list)  # every replayable row (replay is a sample of them)

    @property
    def pair_ids(self) -> list[int]:
        return [a.item.id for a in self.pairs]

    @property
    def feedback_ids(self) -> list[int]:
        return [a.item.id for a in self.new]

    @property
    def replay_ids(self) -> list[int]:
        return [a.item.id for a in self.replay]


def gather(db: Database, line: Line, *, seed: int = 0) -> UpdateData:
    """Split the line's accepted feedback into held-out / new / earlier, and sample the replay rows."""
    s = line.settings
    promoted, rejected = _updates_by_outcome(db, line)
    heldout, new, earlier = [], [], []
    trained = promoted | rejected
    for a in line_feedback(db, line):
        consumed = set(a.consumed_by)
        # An item this line trained on is never held out, whatever the hash says (a raised heldout_fraction,
        # or a line from before the hash was per item): the gate only judges rows no update saw.
        if is_heldout(a.item.id, s.heldout_fraction) and not trained & consumed:
            heldout.append(a)
        elif promoted & consumed:
            earlier.append(a)  # trained into a version that became active: replayable
        elif not rejected & consumed:
            new.append(a)  # rows of a rejected update are spent: they made the model worse
    # (rows of a failed update were never marked consumed, so they are new again)
    pairs = []
    for name in s.preference_queues:
        for a in accepted_items(db, get_queue(db, name)):
            spent = (promoted | rejected) & set(a.consumed_by)
            if a.queue.task == "preference" and a.value in ("a", "b") and a.item.output_b and not spent:
                pairs.append(a)
    rng = random.Random(seed)
    replay = rng.sample(earlier, min(len(earlier), round(len(new) * s.replay_ratio)))
    general_pool = general_rows()
    general = rng.sample(general_pool, min(len(general_pool), round(len(new) * s.general_ratio)))
    notes = []
    if len(earlier) < round(len(new) * s.replay_ratio):
        notes.append(f"replay: {len(earlier)} earlier rows available of {round(len(new) * s.replay_ratio)} wanted")
    return UpdateData(new, replay, general, heldout, notes, pairs, earlier)


def with_more_replay(data: UpdateData, templates: set[str], more_general: bool, seed: int) -> UpdateData | None:
    """The rows of a retry after a candidate forgot: twice the replayed rows (at least as many as the new ones),
    the added ones drawn first from earlier rows of the forgotten tasks' ``templates``; with ``more_general``
    (the general probe failed) twice the general rows too. None when there is nothing more to replay."""
    rng = random.Random(seed)
    taken = {a.item.id for a in data.replay}
    pool = [a for a in data.earlier if a.item.id not in taken]
    rng.shuffle(pool)
    pool.sort(key=lambda a: not any(same_template(a.item, t) for t in templates))  # stable: forgotten tasks first
    want = max(2 * len(data.replay), len(data.new))
    replay = data.replay + pool[: max(0, want - len(data.replay))]
    general = list(data.general)
    if more_general and data.general:
        used = {g["id"] for g in general}
        spare = [g for g in general_rows() if g["id"] not in used]
        general += rng.sample(spare, min(len(spare), len(general)))
    if len(replay) == len(data.replay) and len(general) == len(data.general):
        return None
    return UpdateData(data.new, replay, general, data.heldout, data.notes, data.pairs, data.earlier)


def with_base_replies(data: UpdateData, replies: dict[str, str]) -> UpdateData:
    """The general rows with the base model's reply to each prompt as their completion (probe.base_replies);
    a prompt the base gave no usable reply to is left out."""
    data.general = [g | {"completion": replies[g["prompt"]]} for g in data.general if replies.get(g["prompt"])]
    return data


def usable_heldout(data: UpdateData) -> int:
    """Held-out rows the feedback gate can evaluate (they carry the template's input variables)."""
    return sum(1 for a in data.heldout if a.item.input)


def same_template(item, name: str) -> bool:
    """Whether ``item`` was rendered with template ``name`` (any version), or names none (then the line's is
    assumed). A line that learns several tasks has items of other templates: they keep their own prompts."""
    return (item.template or "").split("@", 1)[0] in ("", name.split("@", 1)[0])


def messages_for(item, template, value: str) -> list[dict]:
    """The chat turns inference sends for this item (through the line's template when the item is of that
    template and has its variables, else the item's stored prompt), plus the accepted answer as the assistant's
    turn."""
    from llmplay.templates.render import build_messages

    if template is not None and item.input and same_template(item, template.name):
        turns = build_messages(template, item.input)
    elif isinstance(item.prompt, str):
        turns = [{"role": "user", "content": item.prompt}]
    else:
        turns = [dict(m) for m in item.prompt]
    return [*turns, {"role": "assistant", "content": value}]


def _turns(prompt: str, answer: str) -> list[dict]:
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}]


def training_records(data: UpdateData, template) -> list[dict]:
    """Inline rows (format messages) for the update's training job; ids say where each row came from."""
    rows = [{"id": f"fb{a.item.id}", "messages": messages_for(a.item, template, a.value)} for a in data.new]
    rows += [{"id": f"replay{a.item.id}", "messages": messages_for(a.item, template, a.value)} for a in data.replay]
    missing = [g["id"] for g in data.general if not g.get("completion")]
    if missing:  # general rows are answered by the base first (with_base_replies)
        raise ValueError(f"general rows {missing[:5]} have no completion: call with_base_replies first")
    rows += [
        {
            "id": f"general{g['id']}",
            "messages": [{"role": "user", "content": g["prompt"]}, {"role": "assistant", "content": g["completion"]}],
        }
        for g in data.general
    ]
    return rows


def preference_records(data: UpdateData, template) -> list[dict]:
    """Inline rows of the update's DPO job: the prompt's chat turns (as inference renders them), chosen and
    rejected replies by the accepted choice."""
    rows = []
    for a in data.pairs:
        turns = messages_for(a.item, template, "")[:-1]
        chosen, rejected = (a.item.output, a.item.output_b) if a.value == "a" else (a.item.output_b, a.item.output)
        rows.append({"id": f"pair{a.item.id}", "prompt": turns, "chosen": chosen, "rejected": rejected})
    return rows
