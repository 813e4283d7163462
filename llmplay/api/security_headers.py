"""Security headers on every answer of the server (its own routes, Gradio's, errors and refusals alike).

- The page may not be framed (clickjacking): ``frame-ancestors 'none'`` and ``X-Frame-Options: DENY``. On a
  Hugging Face Space (``SPACE_ID`` set), the Hub's page frames the app, so it alone may.
- Browsers take files as the type they are sent as (``nosniff``) and send no referrer to other sites.
- A Content-Security-Policy that Gradio's page works with: its scripts and styles from this server (it
  inlines its config and some styles, hence 'unsafe-inline'; its event handlers' ``js=`` code and several
  components run through ``Function()``, hence 'unsafe-eval': without it the page never leaves "Loading..."),
  and fetches only to this server. Images and
  media only from this server, data: and blob: URLs: markdown a user wrote (queue guidelines, templates,
  chat replies) cannot pull a remote image, which would tell a tracker who looked at it and when.
"""

from __future__ import annotations

import os

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

HUB = "https://huggingface.co"


def content_security_policy(frame_ancestors: str) -> str:
    return "; ".join(
        [
            "default-src 'self'",
            "script-src 'self' 'unsafe-inline' 'unsafe-eval'",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data: blob:",
            "media-src 'self' data: blob:",
            "font-src 'self' data:",
            "connect-src 'self'",
            "worker-src 'self' blob:",
            "frame-src 'self'",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            f"frame-ancestors {frame_ancestors}",
        ]
    )


def security_headers(on_space: bool) -> dict[str, str]:
    headers = {
        "Content-Security-Policy": content_security_policy(HUB if on_space else "'none'"),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }
    if not on_space:  # X-Frame-Options cannot name an allowed framer; the CSP above does on a Space
        headers["X-Frame-Options"] = "DENY"
    return headers


class SecurityHeaders:
    """ASGI middleware that sets ``headers`` on every HTTP response (replacing a route's own values)."""

    def __init__(self, app: ASGIApp, headers: dict[str, str]):
        self.app, self.headers = app, headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in self.headers.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, send_with_headers)


def add_security_headers(app) -> None:
    """Wrap ``app`` (FastAPI/Starlette); call it after every other middleware so that it is the outermost."""
    app.add_middleware(SecurityHeaders, headers=security_headers(on_space=bool(os.environ.get("SPACE_ID"))))
