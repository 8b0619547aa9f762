"""The monitor's HTTP app (aiohttp): the page, its assets and ``GET /api/status``.

Read-only by construction: there are GET routes only (anything else gets 405), and the
routes only read the latest snapshots. Every asset comes from ``static/`` beside this
file; the Content-Security-Policy forbids the page to load anything from elsewhere.
With a token (a monitor bound beyond loopback), every request must carry it: as
``Authorization: Bearer``, as ``?token=`` (the page link; a cookie then keeps it), or
as that cookie.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol

from aiohttp import web

STATIC = Path(__file__).resolve().parent / "static"
ASSETS = {"monitor.js": "application/javascript", "monitor.css": "text/css"}
COOKIE = "v6ray_monitor_token"
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; "
                               "frame-ancestors 'none'; form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


class SnapshotSource(Protocol):
    def latest(self) -> dict[str, Any] | None: ...
    def by_seq(self, seq: int) -> dict[str, Any] | None: ...


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _auth_middleware(token: str) -> Any:
    @web.middleware
    async def require_token(request: web.Request, handler: Handler) -> web.StreamResponse:
        given = request.query.get("token") or request.cookies.get(COOKIE) or ""
        header = request.headers.get("Authorization", "")
        if header.lower().startswith("bearer "):
            given = header[7:].strip()
        if not hmac.compare_digest(given.encode(), token.encode()):
            return web.Response(status=401, text="monitor token required (see `v6ray monitor`)")
        response = await handler(request)
        if request.query.get("token"):
            response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path="/")
        return response

    return require_token


@web.middleware
async def _headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    response.headers.update(SECURITY_HEADERS)
    return response


def make_app(source: SnapshotSource, token: str | None = None) -> web.Application:
    middlewares = [_headers] + ([_auth_middleware(token)] if token else [])
    app = web.Application(middlewares=middlewares)

    async def index(request: web.Request) -> web.StreamResponse:
        return web.FileResponse(STATIC / "index.html",
                                headers={"Content-Type": "text/html; charset=utf-8"})

    async def asset(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in ASSETS:  # a fixed list: no path ever reaches the file system
            raise web.HTTPNotFound()
        return web.FileResponse(STATIC / name, headers={"Content-Type": ASSETS[name]})

    async def status(request: web.Request) -> web.StreamResponse:
        seq = request.query.get("seq")
        if seq is not None:
            if not seq.isdigit():
                raise web.HTTPBadRequest(text="seq must be a whole number")
            snapshot = source.by_seq(int(seq))
        else:
            snapshot = source.latest()
        if snapshot is None:
            return web.json_response({"error": "no snapshot yet" if seq is None else
                                      f"snapshot {seq} is no longer kept"}, status=404)
        return web.json_response(snapshot, headers={"Cache-Control": "no-store"})

    app.router.add_get("/", index)
    app.router.add_get("/static/{name}", asset)
    app.router.add_get("/api/status", status)
    return app
