"""The upload quota where uploads land: Gradio 6.31 receives every file at ``POST /gradio_api/upload`` (the page
and gradio_client both send files there first), so a middleware in front of the mounted app admits or refuses
each upload before its body is read, and counts what it stored (llmplay/upload_quota.py keeps the counts).

The uploader: the login name of the Gradio session cookie (the same lookup Gradio's routes make), else, in
single-user mode, the client address.
"""

from __future__ import annotations

import json
import logging
from http.cookies import SimpleCookie
from pathlib import Path

from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from llmplay.settings import Settings
from llmplay.upload_quota import UploadQuota, UploadQuotaError

log = logging.getLogger(__name__)

UPLOAD_PATH = "/gradio_api/upload"
MAX_ANSWER_BYTES = 1 << 20  # Gradio answers an upload with the stored paths; more is not an upload answer


def _gradio_app(app):
    mounts = [r.app for r in getattr(app, "routes", []) if isinstance(r, Mount) and hasattr(r.app, "cookie_id")]
    return mounts[0] if mounts else None


class UploadQuotaMiddleware:
    def __init__(self, app: ASGIApp, quota: UploadQuota, outer=None):
        self.app, self.quota, self.outer = app, quota, outer

    def uploader(self, scope: Scope) -> str:
        gradio = _gradio_app(self.outer)
        headers = dict(scope.get("headers") or [])
        if gradio is not None and b"cookie" in headers:
            cookies = SimpleCookie()
            cookies.load(headers[b"cookie"].decode("latin-1"))
            for name in (f"access-token-{gradio.cookie_id}", f"access-token-unsecure-{gradio.cookie_id}"):
                if name in cookies:
                    user = gradio.tokens.get(cookies[name].value)
                    if user:
                        return f"user:{user}"
        client = scope.get("client") or ("unknown", 0)
        return f"address:{client[0]}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "").rstrip("/")
        if scope["type"] != "http" or scope.get("method") != "POST" or not path.endswith(UPLOAD_PATH):
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        try:
            size = int(headers[b"content-length"])
        except (KeyError, ValueError):
            await _answer(send, 411, "An upload must say its size (Content-Length).")
            return
        user = self.uploader(scope)
        try:
            ticket = self.quota.admit(user.split(":", 1)[1], size)
        except UploadQuotaError as exc:
            log.info("Upload of %d bytes by %s refused: over quota", size, user)
            await _answer(send, 413, str(exc))
            return
        status, body = 0, bytearray()

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body" and len(body) < MAX_ANSWER_BYTES:
                body.extend(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            self.quota.settle(ticket, _stored_sizes(body) if status == 200 else None)


def _stored_sizes(body: bytes) -> list[int] | None:
    """The sizes of the files Gradio says it stored (its answer is their paths)."""
    try:
        paths = json.loads(body)
    except ValueError:
        return []
    sizes = []
    for p in paths if isinstance(paths, list) else []:
        try:
            sizes.append(Path(p).stat().st_size)
        except (OSError, TypeError):
            continue
    return sizes


async def _answer(send: Send, status: int, text: str) -> None:
    body = text.encode()
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def add_upload_quota(app, settings: Settings) -> UploadQuota:
    """Count and cap uploads per user on ``app`` (the FastAPI app with Gradio mounted); after the mount."""
    quota = UploadQuota(settings)
    app.add_middleware(UploadQuotaMiddleware, quota=quota, outer=app)
    return quota
