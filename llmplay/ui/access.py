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
from llmplay.auth.roles import allows
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


def _wrap(settings, permission, action, fn, user_param, refuse):
    signature = inspect.signature(fn)
    names = list(signature.parameters)
    if user_param is not None and user_param not in names:
        raise ValueError(f"{getattr(fn, '__name__', fn)!r} has no parameter {user_param!r}")

    def allowed(request, args, kwargs):
        """(args, kwargs) to call fn with, or raises AccessDenied."""
        caller = check(settings, caller_of(settings, request), permission, action)
        if user_param is not None and not caller.single_user:
            bound = signature.bind_partial(*args, **kwargs)
            bound.arguments[user_param] = caller.name
            return bound.args, bound.kwargs
        return args, kwargs

    def refused(exc: AccessDenied):
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


__all__ = ["Guard", "needs", "caller_of", "header_text", "role_of_request", "single_user_mode", "visible_for"]


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
