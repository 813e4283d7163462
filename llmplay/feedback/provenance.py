"""Where a piece of feedback comes from, and whether it may be trusted without review: the one provenance rule.

- Feedback refers to outputs the server produced and stored (a Compare result, an Arena vote): the sources
  take the stored output's id, never the model's text from the client.
- The stored output must be the sender's own (they ran the comparison, cast the vote) or visible to their
  role (an admin sees everyone's); anyone else's id is refused as if it did not exist.
- Each feedback item records which stored outputs it refers to (``origin``), each response who sent it and,
  when it came from a reply rather than a labeling queue, the sender's role.
- A queue's ``accept_from`` is the lowest role whose lone answer is accepted without review (default:
  labeler); a viewer's pair waits for a reviewer's adjudication before it becomes training data.
"""

from __future__ import annotations

from dataclasses import dataclass

from llmplay.auth.roles import ROLES, allows, check_role
from llmplay.feedback.records import FeedbackError, labeler_name

DEFAULT_ACCEPT_FROM = "labeler"
SEES_EVERYONES = "admin"  # the permission that lets a sender refer to other people's outputs


@dataclass(frozen=True)
class Sender:
    """Who sends feedback: the name it is recorded under and their role (single-user mode: admin)."""

    name: str
    role: str

    def __post_init__(self):
        object.__setattr__(self, "name", labeler_name(self.name))
        object.__setattr__(self, "role", check_role(self.role))

    def may_use(self, owner: str | None) -> bool:
        """Whether this sender may refer to an output stored for ``owner`` (their own, or any for an admin)."""
        return allows(self.role, SEES_EVERYONES) or (owner is not None and labeler_name(owner) == self.name)


def sender_for(settings, name: str | None) -> Sender:
    """The sender behind a handler's ``user`` (the login name once Guard replaced it; typed in single-user mode)."""
    from llmplay.auth.access import resolve_caller  # auth records its refusals through the feedback records

    caller = resolve_caller(settings, name)
    return Sender(name if caller.single_user else caller.name, caller.role)


def not_yours(what: str) -> FeedbackError:
    """The refusal for a stored output that is missing or someone else's: the same words, so that ids cannot
    be probed for whose they are."""
    return FeedbackError(f"There is no {what} of yours; feedback goes with your own comparisons, votes and replies.")


def check_owner(sender: Sender, owner: str | None, what: str) -> None:
    """Refuse ``what`` (e.g. "comparison 12") unless ``sender`` may use it."""
    if not sender.may_use(owner):
        raise not_yours(what)


def accepts_alone(accept_from: str | None, role: str | None) -> bool:
    """Whether a lone answer sent with ``role`` is accepted without review under a queue's ``accept_from``.
    ``role`` None: an answer given in a labeling queue, which only labelers and admins can submit."""
    if role is None:
        return True
    return role in ROLES and ROLES.index(role) >= ROLES.index(check_role(accept_from or DEFAULT_ACCEPT_FROM))
