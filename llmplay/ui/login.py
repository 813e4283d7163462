"""Password login for Gradio's login page, and the gate that keeps everyone who is not signed in out.

With users configured, ``PasswordLogin.install`` puts three things around the Gradio app mounted at /:
- its own ``POST /login`` (before Gradio's, which it shadows): the throttled check of llmplay/auth/login.py,
  in a worker thread so argon2 never runs on the event loop; it answers as Gradio's does (400 for a wrong
  password, the session cookies on success) and 429 with Retry-After while the name or address is paused;
- the session store (llmplay/auth/sessions.py) as Gradio's token table, so sessions expire and end when their
  user is removed or gets another role, for every route that asks Gradio who is calling;
- a gate in front of everything: a caller without a valid session gets the login page at /, the files that
  page needs, and llmplay's own routes (which check their own credentials: HTTP Basic, /health), and a 401
  for all else. Gradio inlines the whole API description (endpoint, model, dataset, template and queue
  names) into its page even when it shows only the login form, and serves some routes without a login check;
  the gate's login page carries no config, and the list of what is open is short and explicit.
"""

from __future__ import annotations

import secrets

import anyio
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.security import OAuth2PasswordRequestForm
from starlette.routing import Match, Mount
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocketClose

from llmplay.auth.login import VERIFY_SLOTS, LoginThrottled, attempt
from llmplay.auth.roles import PUBLIC, requires
from llmplay.auth.sessions import Sessions
from llmplay.settings import Settings

# What the login page loads before anyone signs in (Gradio's front-end bundle, theme, icons); nothing here
# names an endpoint or the team's data.
PAGE_FILES = ("/assets/", "/static/", "/svelte/")
PAGE_PATHS = frozenset(
    ["/favicon.ico", "/robots.txt", "/manifest.json", "/pwa_icon", "/theme.css", "/gradio_api/theme.css", "/logout"]
)
_FORM = Depends()  # Gradio's login page and gradio_client send the name and password as a form
MESSAGE = (
    "Log in with the name and password an admin gave you (`llmplay users add`). "
    "After several wrong passwords, logins pause for a while."
)


def refuse_gradio_login(name: str, password: str) -> bool:
    """Gradio's own /login would check passwords on the event loop, unthrottled; llmplay's route shadows it
    (``PasswordLogin``), and this refuses whatever still reaches it. Set as Gradio's ``auth``, it also makes
    Gradio require a login on its routes."""
    return False


class PasswordLogin:
    """llmplay's login route, session store and gate for one server (see the module's doc)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.sessions = Sessions(settings)
        self._gradio = None  # Gradio's app, once mounted
        self._own_routes: list = []  # llmplay's routes on the server, not Gradio's
        self._limiter: anyio.CapacityLimiter | None = None

    def add_routes(self, app: FastAPI) -> None:
        """Before Gradio is mounted, so that its /login comes second."""

        @requires(PUBLIC)  # it is the way in
        async def login(request: Request, form: OAuth2PasswordRequestForm = _FORM):
            return await self._login(request, form.username, form.password)

        for path in ("/login", "/login/"):
            app.add_api_route(path, login, methods=["POST"], include_in_schema=False)

    def install(self, app: FastAPI) -> None:
        """After Gradio is mounted on ``app``: take over its sessions and put the gate in front."""
        self._gradio = self._gradio_mount(app).app
        self._gradio.tokens = self.sessions
        self._own_routes = [route for route in app.routes if route is not self._gradio_mount(app)]
        app.add_middleware(_Gate, login=self)

    async def _login(self, request: Request, name: str, password: str) -> JSONResponse:
        if self._limiter is None:  # made in the event loop, on first use
            self._limiter = anyio.CapacityLimiter(VERIFY_SLOTS)
        address = request.client.host if request.client else ""
        try:
            role = await anyio.to_thread.run_sync(
                attempt, self.settings, name, password, address, limiter=self._limiter
            )
        except LoginThrottled as exc:
            headers = {"Retry-After": str(exc.retry_after_s)}
            return JSONResponse({"detail": str(exc)}, status_code=429, headers=headers)
        if role is None:
            return JSONResponse({"detail": "Incorrect credentials."}, status_code=400)
        token = secrets.token_urlsafe(32)
        self.sessions[token] = name.strip()
        response = JSONResponse({"success": True})
        max_age = int(self.sessions.lifetime_s)
        cookie_id = self._gradio.cookie_id
        # the names and flags Gradio's own login sets: the secure one for HTTPS (and iframes), the other for HTTP
        response.set_cookie(
            f"access-token-{cookie_id}", token, max_age=max_age, httponly=True, samesite="none", secure=True
        )
        response.set_cookie(f"access-token-unsecure-{cookie_id}", token, max_age=max_age, httponly=True)
        return response

    def signed_in(self, request: Request) -> bool:
        cookie_id = self._gradio.cookie_id
        token = request.cookies.get(f"access-token-{cookie_id}") or request.cookies.get(
            f"access-token-unsecure-{cookie_id}"
        )
        return bool(token) and token in self.sessions

    @staticmethod
    def _gradio_mount(app: FastAPI):
        mounts = [route for route in app.routes if isinstance(route, Mount) and hasattr(route.app, "tokens")]
        if len(mounts) != 1:
            raise RuntimeError("PasswordLogin.install needs exactly one Gradio app mounted on the server")
        return mounts[0]

    def open_to_anyone(self, scope: Scope, path: str) -> bool:
        """The login page's files, and llmplay's own routes (each declares and checks its permission)."""
        if path in PAGE_PATHS or path.startswith(PAGE_FILES):
            return True
        return any(route.matches(scope)[0] is not Match.NONE for route in self._own_routes)

    def login_page(self, request: Request):
        """Gradio's page with only its login form: no components, no endpoints, no API description."""
        from gradio import route_utils
        from gradio.routes import templates

        blocks = self._gradio.get_blocks()
        root = route_utils.get_root_url(
            request=request,
            route_path="/",
            root_path=self._gradio.root_path or request.scope.get("root_path") or blocks.custom_mount_path,
        )
        config = {
            "auth_required": True,
            "auth_message": blocks.auth_message,
            "space_id": blocks.space_id,
            "root": root,
            "page": {"": {"layout": {}}},
            "pages": [""],
            "components": [],
            "dependencies": [],
            "current_page": "",
        }
        no_api = {"named_endpoints": {}, "unnamed_endpoints": {}}  # the shape the page reads
        context = {"base_url": "./", "config": config, "gradio_api_info": no_api}
        return templates.TemplateResponse(request=request, name="frontend/index.html", context=context)


class _Gate:
    """ASGI middleware: callers without a valid session reach only the login page and what is open to anyone."""

    def __init__(self, app: ASGIApp, login: PasswordLogin):
        self.app, self.login = app, login

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        request = Request(scope)
        path = scope["path"]
        root = scope.get("root_path") or ""
        if root and path.startswith(root):
            path = path[len(root) :] or "/"
        if self.login.open_to_anyone(scope, path) or self.login.signed_in(request):
            return await self.app(scope, receive, send)
        if scope["type"] == "websocket":
            return await WebSocketClose(code=1008)(scope, receive, send)
        if path == "/" and scope["method"] in ("GET", "HEAD"):
            response = self.login.login_page(request)
        else:
            detail = {"error": "Not authenticated", "auth_message": MESSAGE}
            response = JSONResponse({"detail": detail}, status_code=401)
        await response(scope, receive, send)
