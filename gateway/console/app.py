"""The console's web layer: Starlette routes, Jinja2 templates, SSE, the token gate.

Starlette (on uvicorn) because the console is a handful of routes, server-side
templates and one long-lived SSE stream per open page: an ASGI toolkit gives
that on the same asyncio loop as the MQTT subscriber, without a framework's ORM,
admin or build step. Every page is a template with autoescape on, so any value
a device sent (ids, rejection details, payload excerpts) is text, never markup.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import (
    HTMLResponse,
    JSONResponse,
    Response,
    StreamingResponse,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from protocols.config import Config
from protocols.ids import ID_RE

from ..stores.centre import CentreReader
from ..stores.reading import StoreUnreadable
from .auth import COOKIE, TokenGate
from .live import LiveStatus
from .model import WINDOWS, Console
from .window import WindowError, parse_time, time_window

__all__ = ["COOKIE", "TokenGate", "build_app"]

HERE = Path(__file__).parent
SSE_PERIOD_S = 2.0
_ID = ID_RE  # the one id check (protocols/ids.py: \Z, no trailing newline)


def _iso(ts: float | None) -> str:
    if ts is None:
        return ""
    return dt.datetime.fromtimestamp(ts, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(HERE / "templates"),
                      autoescape=select_autoescape(default=True, default_for_string=True))
    env.filters["iso"] = _iso
    env.filters["tojson"] = lambda v: json.dumps(v, sort_keys=True).replace(
        "<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026").replace("'", "\\u0027")
    return env


def _parse_time(raw: str | None, default: float) -> float:
    """ISO 8601 (UTC if no offset) or Unix seconds, finite; ValueError otherwise
    (:func:`gateway.console.window.parse_time`)."""
    return parse_time(raw, default)


def build_app(cfg: Config, reader: CentreReader, live: LiveStatus | None = None,
              run_live: bool = True, stopping: asyncio.Event | None = None) -> Any:
    """The ASGI app; ``run_live`` starts the MQTT status subscription with it; setting
    ``stopping`` ends the SSE streams (so a SIGTERM does not wait for open pages)."""
    env = _environment()
    stop = stopping or asyncio.Event()
    live = live or LiveStatus(cfg)
    console = Console(cfg, reader, live)

    def page(request: Request, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        body = env.get_template(name).render(
            site=cfg.site, path=request.url.path, store_error=console.store_error,
            gateway_dir_missing=not console.files.exists, data_dir=str(cfg.gateway.data_dir),
            **ctx)
        return HTMLResponse(body, status_code=status)

    def not_found(request: Request, device: str) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"error": f"unknown device {device!r}"}, status_code=404)
        return page(request, "404.html", status=404, device=device)

    async def fleet_page(request: Request) -> Response:
        rows, gw = await asyncio.gather(console.fleet(), console.gateway())
        return page(request, "fleet.html", rows=rows, gateway=gw)

    async def device_page(request: Request) -> Response:
        device = request.path_params["device"]
        window = request.query_params.get("window", "24h")
        if window not in WINDOWS:
            window = "24h"
        doc = await console.device(device, WINDOWS[window][0]) if _ID.match(device) else None
        if doc is None:
            return not_found(request, device)
        return page(request, "device.html", d=doc, window=window, windows=list(WINDOWS))

    async def rejected_page(request: Request) -> Response:
        device = request.query_params.get("device") or None
        reason = request.query_params.get("reason") or None
        items, reasons = await asyncio.gather(
            asyncio.to_thread(console.files.rejections, device=device, reason=reason,
                              limit=500),
            asyncio.to_thread(console.files.reasons))
        return page(request, "rejected.html", items=items, reasons=reasons,
                    device=device or "", reason=reason or "")

    async def api_devices(request: Request) -> Response:
        return JSONResponse({"devices": await console.fleet(), "gateway": await console.gateway()})

    async def api_device(request: Request) -> Response:
        device = request.path_params["device"]
        doc = await console.device(device) if _ID.match(device) else None
        return JSONResponse(doc) if doc is not None else not_found(request, device)

    async def api_readings(request: Request) -> Response:
        device = request.path_params["device"]
        quantity = request.query_params.get("quantity", "")
        if not _ID.match(device):
            return not_found(request, device)
        if not re.match(r"^[a-z0-9_]{1,32}\Z", quantity):
            return JSONResponse({"error": "quantity=Q is required (e.g. quantity=co2)"},
                                status_code=400)
        now = time.time()
        span, step = WINDOWS.get(request.query_params.get("window", "24h"), WINDOWS["24h"])
        try:
            since, until = time_window(request.query_params.get("since"),
                                       request.query_params.get("until"), span, now)
        except WindowError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        step = max(int((until - since) / 300), 1) if "since" in request.query_params else step
        try:
            doc = await console.readings(device, quantity, int(since * 1000),
                                         int(until * 1000), step * 1000)
        except StoreUnreadable as exc:
            return JSONResponse({"error": str(exc)}, status_code=503)
        doc["since"], doc["until"] = _iso(since), _iso(until)
        return JSONResponse(doc)

    async def api_rejected(request: Request) -> Response:
        try:
            limit = min(max(int(request.query_params.get("limit", "200")), 1), 10_000)
        except ValueError:
            return JSONResponse({"error": "limit must be an integer"}, status_code=400)
        items = await asyncio.to_thread(
            console.files.rejections, device=request.query_params.get("device") or None,
            reason=request.query_params.get("reason") or None, limit=limit)
        return JSONResponse({"rejected": [r.as_json() for r in items]})

    async def api_gateway(request: Request) -> Response:
        return JSONResponse(await console.gateway())

    async def events(request: Request) -> Response:
        """SSE: the fleet rows that changed since the last event, and the gateway panel."""

        async def stream() -> AsyncIterator[bytes]:
            sent: dict[str, str] = {}
            last_gw = ""
            yield b"retry: 2000\n\n"
            while not stop.is_set() and not await request.is_disconnected():
                rows = await console.fleet()
                changed = []
                for row in rows:
                    text = json.dumps(row, sort_keys=True)
                    if sent.get(row["device"]) != text:
                        sent[row["device"]] = text
                        changed.append(row)
                gw = await console.gateway()
                gw_text = json.dumps(gw, sort_keys=True)
                if changed or gw_text != last_gw:
                    last_gw = gw_text
                    doc = {"rows": changed, "gateway": gw, "now": time.time()}
                    yield f"event: fleet\ndata: {json.dumps(doc)}\n\n".encode()
                else:
                    yield b": keep-alive\n\n"
                await console.wait_change(SSE_PERIOD_S, stop)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store",
                                          "X-Accel-Buffering": "no"})

    async def missing(request: Request, exc: Exception) -> Response:
        return not_found(request, request.url.path)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        tasks: list[asyncio.Task[Any]] = [asyncio.create_task(live.run())] if run_live else []
        # warm the store caches (the 24 h counts scan a day of readings) before a page asks
        tasks.append(asyncio.create_task(console.fleet()))
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, StoreUnreadable):
                    await task

    routes = [
        Route("/", fleet_page),
        Route("/devices/{device}", device_page),
        Route("/rejected", rejected_page),
        Route("/api/devices", api_devices),
        Route("/api/devices/{device}", api_device),
        Route("/api/devices/{device}/readings", api_readings),
        Route("/api/rejected", api_rejected),
        Route("/api/gateway", api_gateway),
        Route("/api/events", events),
    ]
    return assemble(cfg, env, routes, lifespan, missing, console=console)


def assemble(cfg: Config, env: Environment, routes: Sequence[Route], lifespan: Any,
             missing: Callable[..., Any], img_src: str = "", **state: Any
             ) -> Callable[..., Awaitable[None]]:
    """Both scopes' app around their routes: the static files, gzip (a 500-device fleet
    page is ~0.5 MB of HTML, ~10x less compressed; SSE excluded), the token gate and the
    security headers (``img_src``: the map tiles' origin, admitted by the CSP)."""
    mounts: list[Route | Mount] = [
        *routes, Mount("/static", StaticFiles(directory=HERE / "static"), name="static")]
    app = Starlette(routes=mounts, lifespan=lifespan, exception_handlers={404: missing},
                    middleware=[Middleware(GZipMiddleware, minimum_size=2048)])
    for name, value in state.items():
        setattr(app.state, name, value)
    handler: Callable[..., Awaitable[None]] = TokenGate(app, cfg.console.token, env,
                                                        cfg.console.session_s)
    return _with_headers(handler, img_src=img_src)


def _with_headers(app: Callable[..., Awaitable[None]],
                  img_src: str = "") -> Callable[..., Awaitable[None]]:
    """Security headers on every response: no framing, no sniffing, scripts only from us;
    ``img_src`` one more image origin (the city map's tile server)."""
    extra = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
             (b"referrer-policy", b"no-referrer"),
             (b"content-security-policy",
              b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
              b"img-src 'self' data:" + (b" " + img_src.encode() if img_src else b""))]

    async def wrapped(scope: Any, receive: Any, send: Any) -> None:
        async def send_with(message: Any) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + extra
            await send(message)
        await app(scope, receive, send_with)

    return wrapped
