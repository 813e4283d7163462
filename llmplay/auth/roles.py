"""The one table of who may do what. Roles are a ladder: each can do all the ones below it can, plus more."""

from __future__ import annotations

from llmplay.errors import LlmplayError

ROLES = ("viewer", "labeler", "admin")  # lowest first

# permission -> the lowest role that has it
PERMISSIONS: dict[str, str] = {
    # read anything the app shows: tabs, results, leaderboards, listings, previews, exports of results
    "view": "viewer",
    # spend model time interactively: Playground, Compare, Arena battles, a template's test run
    "generate": "viewer",
    # say which answer is better: Arena votes, thumbs up/down, preferences sent from Compare
    "vote": "viewer",
    # label: claim and submit items of a queue, send corrections to a queue
    "label": "labeler",
    # change what others depend on: models, templates, datasets, evaluation runs, training, versions, loop
    # settings, run-once, promote, rollback, users, queue creation / import / export, adjudication
    "admin": "admin",
}


PUBLIC = "public"  # declared by what anyone may call, even not signed in (/health, the page's sign-in line)


def requires(permission: str):
    """Declare the permission a REST route needs (decorator); the server refuses to start with a route that
    declares none (llmplay/api/rest.py). Gradio handlers declare theirs through llmplay/ui/access.py."""
    if permission != PUBLIC:
        needed_role(permission)

    def mark(fn):
        fn.llmplay_permission = permission
        return fn

    return mark


def check_role(role: str) -> str:
    role = (role or "").strip().lower()
    if role not in ROLES:
        raise LlmplayError(f"Unknown role {role!r}: use one of {', '.join(ROLES)}.")
    return role


def needed_role(permission: str) -> str:
    try:
        return PERMISSIONS[permission]
    except KeyError:  # a typo in a handler's wiring must not open it up
        raise ValueError(f"unknown permission {permission!r}; known: {', '.join(PERMISSIONS)}") from None


def allows(role: str, permission: str) -> bool:
    """True when ``role`` has ``permission`` (an unknown role has none)."""
    if permission == PUBLIC:
        return True
    if role not in ROLES:
        return False
    return ROLES.index(role) >= ROLES.index(needed_role(permission))
