"""The Gradio side of roles: ``Guard`` wraps handlers so that each checks its caller's role on the server.

Gradio's ``auth`` only checks that someone logged in; the role check is here, per handler, on
``request.username`` (llmplay/auth/access.py). Gradio injects a ``gr.Request`` into a parameter annotated with
it (helpers.special_args reads the signature and the type hints, positional parameters only), so the wrapper
shows Gradio the handler's own signature with one extra, first parameter of that type.

Hiding tabs a role cannot use (``role_visibility``) is cosmetic; the guarded handlers are what count.
"""

from __future__ import annotations

import functools
import inspect
import typing
from collections.abc import Callable

import gradio as gr

from llmplay.auth.access import AccessDenied, Caller, check, resolve_caller, single_user_mode
from llmplay.auth.oauth import OAuthConfig
from llmplay.auth.roles import PUBLIC, allows, needed_role
from llmplay.settings import Settings

_REQUEST = "llmplay_request"


def caller_of(settings: Settings, request: gr.Request | None) -> Caller:
    """The caller behind a Gradio request: its login (password or Hugging Face) or single-user mode."""
    username = getattr(request, "username", None) if request is not None else None
    if username is None and request is not None and oauth_enabled():
        username = _hub_user(request)
    return resolve_caller(settings, username)


def _hub_user(request: gr.Request) -> str | None:
    """The Hugging Face login in the session (what gr.OAuthProfile is built from); None when logged out."""
    try:
        info = request.session.get("oauth_info") or {}
    except (AttributeError, AssertionError):  # no SessionMiddleware: OAuth is not mounted
        return None
    return (info.get("userinfo") or {}).get("preferred_username")


class Guard:
    """``guard(permission, action, fn)``: ``fn`` that first checks its caller (decorator form without fn).

    ``user_param``: a parameter holding the name a write is recorded under (a labeler field); with users
    configured it is replaced by the login name, so nobody acts as someone else. ``refuse``: turns the
    refusal message into the handler's own error return (e.g. ``{"error": msg}``); default: ``gr.Error``.
    """

    def __init__(self, settings: Settings):
        self.settings = settings

    def __call__(
        self,
        permission: str,
        action: str,
        fn: Callable | None = None,
        *,
        user_param: str | None = None,
        refuse: Callable[[str], typing.Any] | None = None,
    ):
        if fn is None:
            return lambda f: self(permission, action, f, user_param=user_param, refuse=refuse)
        return _wrap(self.settings, permission, action, fn, user_param, refuse)


class _QuietlySkipped(AccessDenied):
    """A page load of a part the caller's role cannot use: it does nothing, says nothing, audits nothing."""


def _wrap(settings, permission, action, fn, user_param, refuse, audit=True, skip_outputs=None):
    """``skip_outputs``: a count of outputs; a caller whose role lacks ``permission`` gets that many unchanged
    outputs instead of an error (page-load handlers of admins' tabs run for every visitor)."""
    signature = inspect.signature(fn)
    names = list(signature.parameters)
    if user_param is not None and user_param not in names:
        raise ValueError(f"{getattr(fn, '__name__', fn)!r} has no parameter {user_param!r}")

    def allowed(request, args, kwargs):
        """(args, kwargs) to call fn with, or raises AccessDenied."""
        if skip_outputs is not None:
            who = caller_of(settings, request)
            if not allows(who.role, permission):
                raise _QuietlySkipped("")
        caller = check(settings, caller_of(settings, request), permission, action, audit=audit)
        if user_param is not None and not caller.single_user:
            bound = signature.bind_partial(*args, **kwargs)
            bound.arguments[user_param] = caller.name
            return bound.args, bound.kwargs
        return args, kwargs

    def refused(exc: AccessDenied):
        if isinstance(exc, _QuietlySkipped):
            return gr.skip() if skip_outputs == 1 else tuple(gr.skip() for _ in range(skip_outputs))
        if refuse is not None:
            return refuse(str(exc))
        raise gr.Error(str(exc), title="Not allowed") from None

    if inspect.isasyncgenfunction(fn):

        async def wrapper(llmplay_request, *args, **kwargs):
            try:
                args, kwargs = allowed(llmplay_request, args, kwargs)
            except AccessDenied as exc:
                yield refused(exc)
                return
            async for item in fn(*args, **kwargs):
                yield item
    elif inspect.isgeneratorfunction(fn) or inspect.isgeneratorfunction(getattr(fn, "func", None)):

        def wrapper(llmplay_request, *args, **kwargs):
            try:
                args, kwargs = allowed(llmplay_request, args, kwargs)
            except AccessDenied as exc:
                yield refused(exc)
                return
            yield from fn(*args, **kwargs)
    elif inspect.iscoroutinefunction(fn):

        async def wrapper(llmplay_request, *args, **kwargs):
            try:
                args, kwargs = allowed(llmplay_request, args, kwargs)
            except AccessDenied as exc:
                return refused(exc)
            return await fn(*args, **kwargs)
    else:

        def wrapper(llmplay_request, *args, **kwargs):
            try:
                args, kwargs = allowed(llmplay_request, args, kwargs)
            except AccessDenied as exc:
                return refused(exc)
            return fn(*args, **kwargs)

    functools.update_wrapper(wrapper, fn, assigned=("__module__", "__name__", "__qualname__", "__doc__"))
    request_param = inspect.Parameter(_REQUEST, inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=gr.Request)
    wrapper.__signature__ = signature.replace(parameters=[request_param, *signature.parameters.values()])
    wrapper.__annotations__ = {**_resolved_hints(fn), _REQUEST: gr.Request}
    wrapper.llmplay_permission = permission  # read by tests and by the check that every handler is guarded
    return wrapper


def declare(permission: str, action: str | None = None, *, read: bool = False):
    """Mark a handler with the permission it needs (decorator); ``secure_app`` wraps it in that check when the
    app is built. ``action`` names it in a refusal and in the audit log. ``read``: it only reads (a listing, a
    poll), so an admin's allowed call is not audited (a refusal always is)."""
    if permission != PUBLIC:
        needed_role(permission)  # a typo fails when the module loads, not when a hostile caller finds it

    def mark(fn):
        fn.llmplay_declared = (permission, action or _DEFAULT_ACTIONS.get(permission, permission), read)
        return fn

    return mark


def declared(permission: str, fn: Callable, action: str | None = None, *, read: bool = False) -> Callable:
    """``fn`` (a lambda, a partial, a method) marked like ``declare`` does; a bound method is wrapped, since
    attributes cannot be set on one."""
    if inspect.ismethod(fn):
        method = fn
        fn = functools.wraps(method)(lambda *args, **kwargs: method(*args, **kwargs))
        fn.__signature__ = inspect.signature(method)
    return declare(permission, action, read=read)(fn)


def checks_inside(permission: str, fn: Callable) -> Callable:
    """Mark ``fn`` as checking ``permission`` itself (it calls a Guard-wrapped function with the request)."""
    fn.llmplay_permission = permission
    return fn


_DEFAULT_ACTIONS = {"view": "view this page", "generate": "run models", "vote": "vote", "label": "label items"}


class UndeclaredEndpoint(RuntimeError):
    """An event handler that declares no permission: the app refuses to start rather than serve it open."""


def _declaration(fn) -> tuple[str, str, bool] | None:
    for target in (fn, getattr(fn, "func", None), getattr(fn, "__func__", None)):
        found = getattr(target, "llmplay_declared", None) if target is not None else None
        if found is not None:
            return found
    return None


def secure_app(demo: gr.Blocks, settings: Settings) -> dict[int, str]:
    """Deny by default, in one place: every event handler of ``demo`` (UI events and API endpoints alike;
    Gradio lets any client call any of them by its index, private ones included) either is Guard-wrapped or
    declares its permission (``declare``), which is wrapped in the same check here. Raises UndeclaredEndpoint,
    naming every handler that declares nothing. Returns {fn index: permission} (the tests call each)."""
    permissions: dict[int, str] = {}
    missing = []
    for index, block_fn in demo.fns.items():
        fn = block_fn.fn
        if fn is None:  # a front-end-only event (js): nothing runs on the server
            continue
        if getattr(fn, "llmplay_permission", None) is None:
            found = _declaration(fn)
            if found is None:
                missing.append(f"{block_fn.name} ({getattr(fn, '__module__', '?')}: {getattr(fn, '__qualname__', fn)})")
                continue
            permission, action, read = found
            if permission == PUBLIC:
                fn.llmplay_permission = PUBLIC
            else:
                # Page loads run for every visitor: those of admins' tabs do nothing for the other roles.
                on_load = {event for _, event in block_fn.targets} == {"load"}
                skip = max(1, len(block_fn.outputs)) if on_load else None
                block_fn.fn = _wrap(settings, permission, action, fn, None, None, audit=not read, skip_outputs=skip)
        permissions[index] = block_fn.fn.llmplay_permission
    if missing:
        raise UndeclaredEndpoint(
            "These event handlers declare no permission (llmplay.ui.access.declare or Guard): " + "; ".join(missing)
        )
    return permissions


def _resolved_hints(fn) -> dict:
    """The handler's type hints as objects (gr.api derives its API schema from them); {} when they do not
    resolve, as Gradio itself would then see none."""
    target = fn if inspect.isfunction(fn) or inspect.ismethod(fn) else getattr(fn, "func", None)
    if target is None:
        return {}
    try:
        hints = typing.get_type_hints(target)
    except (NameError, TypeError):
        return {}
    if target is not fn:  # a partial: its bound parameters are gone from the signature
        keep = set(inspect.signature(fn).parameters) | {"return"}
        hints = {k: v for k, v in hints.items() if k in keep}
    return hints


def header_text(settings: Settings, request: gr.Request | None) -> str:
    try:
        return caller_of(settings, request).describe()
    except AccessDenied as exc:
        return f"not signed in: {exc}"


def role_of_request(settings: Settings, request: gr.Request | None) -> str | None:
    try:
        return caller_of(settings, request).role
    except AccessDenied:
        return None


def visible_for(role: str | None, permission: str) -> bool:
    return role is not None and allows(role, permission)


def oauth_enabled() -> bool:
    return OAuthConfig.from_env() is not None


__all__ = [
    "Guard",
    "UndeclaredEndpoint",
    "checks_inside",
    "declare",
    "declared",
    "secure_app",
    "needs",
    "caller_of",
    "header_text",
    "role_of_request",
    "single_user_mode",
    "visible_for",
]


def needs(permission: str, *components: gr.components.Component | gr.blocks.BlockContext) -> None:
    """Mark components that only roles with ``permission`` see; app.py shows or hides them on page load."""
    for component in components:
        component.llmplay_needs = permission


AUDIT_HEADERS = ["At", "User", "Role", "Action", "Target", "Allowed"]


def build_audit_panel(settings: Settings) -> None:
    """Admins' view of the users and the audit log (refused attempts, admin actions), newest first."""
    from llmplay.auth.access import audit_rows
    from llmplay.auth.users import list_users

    def show(limit: float | None = 100) -> tuple:
        rows = audit_rows(settings, int(limit or 100))
        table = [
            [r["at"], r["user"], r["role"], r["action"], r["target"], "yes" if r["allowed"] else "REFUSED"]
            for r in rows
        ]
        people = list_users(settings)
        listed = ", ".join(f"{u.name} ({u.role})" for u in people) or "none: single-user mode"
        return f"**Users:** {listed}", table

    with gr.Accordion("Users & audit log", open=False, elem_id="audit-panel") as panel:
        with gr.Row():
            limit = gr.Number(100, precision=0, minimum=1, maximum=10_000, label="Rows", scale=0)
            refresh = gr.Button("Refresh", scale=0)
        users = gr.Markdown()
        table = gr.Dataframe(headers=AUDIT_HEADERS, interactive=False, wrap=True, max_height=360, elem_id="audit-log")
    needs("admin", panel)
    # Reading the log is an admin action too (it names who tried what).
    refresh.click(Guard(settings)("admin", "view the audit log", show), limit, [users, table], api_name="audit_log")
    # opening the panel reads the log afresh (it is never shown stale)
    panel.expand(Guard(settings)("admin", "view the audit log", show), limit, [users, table], api_visibility="private")
