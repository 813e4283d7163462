"""HTTP routes served beside the Gradio app (``llmplay.ui.app.server_app`` mounts Gradio on the same FastAPI app).

- ``POST /api/labeling/next``   {"queue", "labeler"} -> the next item (claimed) or {} when none is left
- ``POST /api/labeling/submit`` {"queue", "labeler", "item_id", "value", "client_token"} -> {"response_id", ...}
- ``GET  /health``              the database, model cache, training queue and loop scheduler as JSON; 503 when
                                unhealthy (a broken database, or a scheduler thread that should run and does not)
A refused request answers 400 with {"error": message}. With users configured (``llmplay users add``) the labeling
routes need HTTP Basic credentials of a labeler or an admin (401 without, 403 for a viewer or for a "labeler"
field naming someone else; refusals go to the audit log); single-user mode needs none; /health is open.
A ``client_token`` already used for another item or labeler answers 409 (the same labeler, item and token
again returns the stored response).
These calls skip Gradio's event queue (its polling adds
~50-100 ms to every call, bench/load.py) and run in FastAPI's thread pool, so they are not queued behind model
generation either; the same functions serve the Labeling tab's Gradio endpoints (llmplay/feedback/api.py).
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Callable, Mapping

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from pydantic import BaseModel, Field

from llmplay.auth.access import AccessDenied, Caller, check, resolve_caller, single_user_mode
from llmplay.auth.login import LoginThrottled, attempt
from llmplay.auth.roles import PUBLIC, requires
from llmplay.errors import LlmplayError
from llmplay.feedback import api as labeling
from llmplay.feedback.records import ClientTokenConflict
from llmplay.settings import Settings

log = logging.getLogger(__name__)


class NextRequest(BaseModel):
    queue: str
    labeler: str


MAX_ID = 2**63 - 1  # SQLite's integer range: a bigger id is a bad request, not a server error


class SubmitRequest(BaseModel):
    queue: str
    labeler: str
    item_id: int = Field(ge=1, le=MAX_ID)
    value: str | int
    client_token: str | None = None


def _refused(exc: Exception) -> JSONResponse:
    if isinstance(exc, ClientTokenConflict):  # the token names another answer: a conflict, not a bad request
        return JSONResponse({"error": str(exc)}, status_code=409)
    if isinstance(exc, LlmplayError):
        return JSONResponse({"error": str(exc)}, status_code=400)
    log.exception("HTTP labeling call failed")
    return JSONResponse({"error": f"the server failed ({type(exc).__name__}); see its log"}, status_code=500)


_basic = HTTPBasic(auto_error=False)
_CREDENTIALS = Depends(_basic)  # optional: single-user mode needs none


def _labeler(settings: Settings, credentials: HTTPBasicCredentials | None, labeler: str, request: Request):
    """The name to record the call under, or the refusal to send back (str | JSONResponse)."""
    if single_user_mode(settings):
        return labeler
    try:  # the login page's throttle: wrong passwords pause this name and address (llmplay/auth/login.py)
        address = request.client.host if request.client else ""
        role = credentials and attempt(settings, credentials.username, credentials.password, address)
    except LoginThrottled as exc:
        return JSONResponse({"error": str(exc)}, status_code=429, headers={"Retry-After": str(exc.retry_after_s)})
    if role is None:
        with contextlib.suppress(AccessDenied):  # audited as a refused caller; the message says what to send
            resolve_caller(settings, None)
        message = "Log in: send HTTP Basic credentials of a labeler or admin (this instance has users)."
        return JSONResponse({"error": message}, status_code=401, headers={"WWW-Authenticate": 'Basic realm="llmplay"'})
    try:
        caller = check(settings, resolve_caller(settings, credentials.username), "label", "label items")
        if (labeler or "").strip() not in ("", caller.name):
            check(settings, Caller(caller.name, "viewer"), "admin", f"label items as {labeler!r}")
    except AccessDenied as exc:
        return JSONResponse({"error": str(exc)}, status_code=403)
    return caller.name


def health(settings: Settings, probes: Mapping[str, Callable[[], dict]] | None = None) -> tuple[bool, dict]:
    """(healthy, report): the database answers and passes a quick check; the rest is information, but for
    ``probes`` (name -> a report with ``ok``, e.g. the loop scheduler thread), each of which must be ok too."""
    report: dict = {}
    ok = True
    try:
        con = sqlite3.connect(f"file:{settings.db_path}?mode=ro", uri=True, timeout=5)
        try:
            check = con.execute("pragma quick_check").fetchone()[0]
            journal = con.execute("pragma journal_mode").fetchone()[0]
            jobs = dict(con.execute("select status, count(*) from training_jobs group by status").fetchall())
            updates = con.execute("select count(*) from loop_updates where status = 'running'").fetchone()[0]
        finally:
            con.close()
        report["database"] = {"ok": check == "ok", "check": check, "journal_mode": journal}
        report["training_jobs"] = {"queued": jobs.get("queued", 0), "running": jobs.get("running", 0)}
        report["loop"] = {"running_updates": updates}
        ok = check == "ok"
    except sqlite3.Error as exc:
        log.error("Health check: the database at %s fails: %s", settings.db_path, exc)  # the path in the log only
        report["database"] = {"ok": False, "error": type(exc).__name__}
        ok = False
    cache = settings.cache_dir
    report["model_cache"] = {"exists": cache.is_dir()}
    for name, probe in (probes or {}).items():
        try:
            report[name] = probe()
        except Exception as exc:  # a probe that fails is a part that is not healthy
            report[name] = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        ok = ok and bool(report[name].get("ok"))
    report["status"] = "ok" if ok else "unhealthy"
    return ok, report


def router(settings: Settings, probes: Mapping[str, Callable[[], dict]] | None = None) -> APIRouter:
    """The routes; ``probes`` join /health's report (see ``health``)."""
    r = APIRouter()

    @r.post("/api/labeling/next")
    @requires("label")
    def labeling_next(body: NextRequest, request: Request, credentials: HTTPBasicCredentials | None = _CREDENTIALS):
        labeler = _labeler(settings, credentials, body.labeler, request)
        if isinstance(labeler, JSONResponse):
            return labeler
        try:
            return labeling.next_payload(settings.db_path, body.queue, labeler)
        except Exception as exc:
            return _refused(exc)

    @r.post("/api/labeling/submit")
    @requires("label")
    def labeling_submit(body: SubmitRequest, request: Request, credentials: HTTPBasicCredentials | None = _CREDENTIALS):
        labeler = _labeler(settings, credentials, body.labeler, request)
        if isinstance(labeler, JSONResponse):
            return labeler
        try:
            response = labeling.submit(
                settings.db_path, body.queue, labeler, body.item_id, body.value, body.client_token
            )
            return {"response_id": response.id, "item_id": response.item_id, "status": response.status}
        except Exception as exc:
            return _refused(exc)

    @r.get("/health")
    @requires(PUBLIC)  # for load balancers and Docker's HEALTHCHECK: it names no path, user or queue
    def health_route():
        ok, report = health(settings, probes)
        return JSONResponse(report, status_code=200 if ok else 503)

    return r


class UndeclaredRoute(RuntimeError):
    """A route that declares no permission: the server refuses to start rather than serve it open."""


def check_declared(app) -> None:
    """Deny by default: every route of llmplay's own (not Gradio's, mounted below them) declares its permission
    with ``requires``, whether added to the app or through an included router; FastAPI's generated docs are off
    (server_app). Gradio's mounted app is checked handler by handler (llmplay/ui/access.py secure_app)."""
    from starlette.routing import Mount, Route

    def routes(container):
        for route in container.routes:
            included = getattr(route, "original_router", None)  # FastAPI >= 0.160 keeps include_router's as one
            if included is not None:
                yield from routes(included)
            elif isinstance(route, Route) and not isinstance(route, Mount):
                yield route

    missing = [
        f"{sorted(route.methods or [])} {route.path}"
        for route in routes(app)
        if getattr(route.endpoint, "llmplay_permission", None) is None
    ]
    if missing:
        raise UndeclaredRoute("These routes declare no permission (llmplay.auth.roles.requires): " + ", ".join(missing))


async def bad_request(request, exc) -> JSONResponse:
    """A body of the wrong shape (a missing field, an id past SQLite's range) is a 400 with what is wrong."""
    problems = "; ".join(
        f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'body'}: {e.get('msg', 'invalid')}" for e in exc.errors()
    )
    return JSONResponse({"error": f"Bad request: {problems}"}, status_code=400)
