"""Migrations of the feedback store's tables (llmplay/feedback/) and of the stored Compare results
feedback refers to (llmplay/compare/results.py)."""

from __future__ import annotations

from sqlite_utils import Database

from llmplay.migrations.feedback_inbox import move_inbox


def m005_feedback_inbox(db: Database) -> None:
    # Training signal waiting for the feedback store / continual-learning loop to pick it up.
    db["feedback_inbox"].create(
        {
            "id": int,
            "kind": str,  # preference | correction
            "prompt": str,  # JSON: the prompt string or the chat messages
            "chosen": str,  # preference: the better reply
            "rejected": str,  # preference: the worse reply; correction: the reply being corrected
            "correction": str,  # correction: the answer the user wrote
            "model": str,  # who wrote chosen (preference) or the corrected reply
            "adapter": str,
            "rejected_model": str,  # preference: who wrote rejected
            "rejected_adapter": str,
            "template_version_id": int,
            "source": str,  # arena-vote:<id> | compare | playground ...
            "user": str,
            "created_at": str,
            "consumed_at": str,  # set by whatever turns the item into training data
        },
        pk="id",
        not_null={"kind", "prompt", "source", "created_at"},
    )
    db["feedback_inbox"].create_index(["source"])


def m007_feedback(db: Database) -> None:
    # The feedback store (llmplay/feedback/): queues of items that labelers answer; the arena's inbox moves here.
    db["feedback_queues"].create(
        {
            "id": int,
            "name": str,  # safe name, unique
            "task": str,  # correction | rating | label | preference
            "guidelines": str,  # Markdown shown beside each item
            "labels": str,  # JSON list: the label set of a label task (default: the template's labels)
            "rating_min": int,
            "rating_max": int,
            "k": int,  # submitted responses an item needs before it leaves the queue
            "show_reference": int,  # 1: the labeler sees the item's reference answer
            "accept_rule": str,  # auto | adjudicated | agreement | single (see feedback/accepted.py)
            "template": str,  # the template the queue's items were rendered with, when one
            "created_by": str,
            "created_at": str,
            "updated_at": str,
            "archived_at": str,
        },
        pk="id",
        not_null={"name", "task", "k", "created_at"},
    )
    db["feedback_queues"].create_index(["name"], unique=True)
    db["feedback_items"].create(
        {
            "id": int,
            "queue_id": int,
            "source": str,  # playground | compare | arena-vote:<id> | eval-run:<id> | upload | cli | inbox
            "input": str,  # JSON: the template's input variables (or {} when there were none)
            "prompt": str,  # JSON: the exact rendered prompt string or the chat messages
            "template": str,
            "template_version_id": int,
            "model": str,  # who wrote output
            "adapter": str,  # the adapter / model version label, when one
            "output": str,  # the reply under review (preference: reply A)
            "model_b": str,  # preference: who wrote output_b
            "adapter_b": str,
            "output_b": str,  # preference: reply B
            "reference": str,  # the expected answer, when the source had one (shown per the queue setting)
            "meta": str,  # JSON: anything else the source knows (eval run row, scores, thumbs)
            "dedupe_key": str,  # sha256 of what makes two items the same; unique per queue
            "status": str,  # open | discarded
            "created_by": str,
            "created_at": str,
        },
        pk="id",
        not_null={"queue_id", "source", "prompt", "status", "created_at", "dedupe_key"},
        foreign_keys=[("queue_id", "feedback_queues", "id")],
    )
    db["feedback_items"].create_index(["queue_id", "dedupe_key"], unique=True)
    db["feedback_items"].create_index(["queue_id", "status"])
    db["feedback_responses"].create(
        {
            "id": int,
            "item_id": int,
            "queue_id": int,
            "labeler": str,
            "kind": str,  # correction | rating | label | preference
            "value": str,  # JSON: text | int | label | "a" / "b" / "tie"
            "comment": str,
            "tags": str,  # JSON list of strings
            "status": str,  # draft | submitted | discarded
            "client_token": str,  # the same token twice is one response (double submit)
            "created_at": str,
            "updated_at": str,
            "submitted_at": str,
        },
        pk="id",
        not_null={"item_id", "queue_id", "labeler", "kind", "status", "created_at"},
        foreign_keys=[("item_id", "feedback_items", "id"), ("queue_id", "feedback_queues", "id")],
    )
    db["feedback_responses"].create_index(["item_id", "labeler"], unique=True)
    db["feedback_responses"].create_index(["client_token"], unique=True)
    db["feedback_responses"].create_index(["queue_id", "labeler", "status"])
    # A labeler holding an item's slot while they answer it; expired claims free the slot again.
    db["feedback_claims"].create(
        {"item_id": int, "labeler": str, "claimed_at": str, "expires_at": str},
        pk=("item_id", "labeler"),
        not_null={"claimed_at", "expires_at"},
        foreign_keys=[("item_id", "feedback_items", "id")],
    )
    db["feedback_adjudications"].create(
        {"item_id": int, "value": str, "adjudicator": str, "comment": str, "created_at": str, "updated_at": str},
        pk="item_id",
        not_null={"value", "adjudicator", "created_at"},
        foreign_keys=[("item_id", "feedback_items", "id")],
    )
    # Which training job / loop update turned an accepted item into training data.
    db["feedback_consumption"].create(
        {"id": int, "item_id": int, "consumer": str, "consumed_at": str},
        pk="id",
        not_null={"item_id", "consumer", "consumed_at"},
        foreign_keys=[("item_id", "feedback_items", "id")],
    )
    db["feedback_consumption"].create_index(["item_id", "consumer"], unique=True)
    # Every change to the feedback store: who, what, the row before and after (JSON).
    db["feedback_audit"].create(
        {
            "id": int,
            "at": str,
            "user": str,
            "action": str,
            "entity": str,
            "entity_id": int,
            "before": str,
            "after": str,
        },
        pk="id",
        not_null={"at", "action", "entity"},
    )
    db["feedback_audit"].create_index(["entity", "entity_id"])
    move_inbox(db)  # the m005 inbox's rows become items + responses


def m011_feedback_provenance(db: Database) -> None:
    # Feedback refers to outputs the server produced and stored (llmplay/feedback/provenance.py): finished
    # Compare results are kept here with the name of the caller who ran them.
    db["compare_results"].create(
        {"id": int, "user": str, "input": str, "columns": str, "created_at": str},  # JSON: the input, the columns
        pk="id",
        not_null={"columns", "created_at"},
    )
    db["compare_results"].create_index(["user"])
    db["feedback_items"].add_column("origin", str)  # JSON: the stored outputs it refers to, e.g. {"comparison": 3}
    db["feedback_responses"].add_column("role", str)  # the sender's role when sent from a reply; NULL: labeling
    db["feedback_queues"].add_column("accept_from", str)  # lowest role whose lone answer needs no review
