"""The city scope's web layer: every site from the shared store, its pages and JSON API.

Same templates as the gateway scope (a site page is the gateway scope's fleet
page with a site prefix), same token gate and security headers; the map page's
tile origin (``[console] map_tiles``) is the one addition to the CSP. Pages are
live through one SSE stream per open page, fed by the cached snapshot of
:class:`~gateway.console.city_model.City`, so a hundred open pages cost the
store what one does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from protocols.config import Config
from protocols.ids import ID_RE

from ..stores.centre import CentreReader
from ..stores.reading import StoreUnreadable
from ..stores.states import DEVICE_STATES
from .app import SSE_PERIOD_S, _environment, assemble
from .city import SHOWN_STATES, geojson, page_of, site_rows, site_summaries
from .city_model import City, FiringAlerts
from .model import WINDOWS
from .window import WindowError, time_window

__all__ = ["build_city_app", "tile_origin"]

_ID = ID_RE  # the one id check (protocols/ids.py)
_QUANTITY = re.compile(r"^[a-z0-9_]{1,32}$")


def tile_origin(template: str) -> str:
    """The origin of a tile URL template (``https://tile.example.org``), for the CSP;
    "" for none or one that is not http(s)."""
    parts = urllib.parse.urlsplit(template)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return ""
    host = parts.hostname.replace("{s}", "*")
    if not re.fullmatch(r"[a-z0-9*][a-z0-9.-]*", host):  # nothing that could end the CSP
        return ""
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


def _bytes(n: float) -> str:
    """1234567 -> "1.2 MB" (decimal units, as disks are sold)."""
    for unit in ("B", "kB", "MB", "GB"):
        if abs(n) < 1000:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"


def _finite(obj: Any) -> Any:
    """The document with NaN and infinities as null: they are not JSON."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def _dumps(doc: Any) -> str:
    """JSON a browser can always parse: no NaN, and ASCII only, so a lone surrogate in a
    string from the store is an escape, never an encoding error (a 500)."""
    return json.dumps(_finite(doc), ensure_ascii=True, allow_nan=False)


class JSON(JSONResponse):
    def render(self, content: Any) -> bytes:
        return _dumps(content).encode("ascii")


def _int(raw: str | None, default: int) -> int:
    try:
        return int(raw) if raw else default
    except ValueError:
        return default


def build_city_app(cfg: Config, reader: CentreReader, alerts: FiringAlerts | None = None,
                   stopping: asyncio.Event | None = None, city: City | None = None) -> Any:
    """The ASGI app of ``[console] scope = "city"``; ``stopping`` ends the SSE streams;
    ``city`` the model to serve (benches and tests that expire its cache)."""
    env = _environment()
    env.filters["bytes"] = _bytes
    stop = stopping or asyncio.Event()
    city = city or City(cfg, reader, alerts)
    tiles = cfg.console.map_tiles if tile_origin(cfg.console.map_tiles) else ""

    def page(request: Request, name: str, status: int = 200, **ctx: Any) -> HTMLResponse:
        ctx.setdefault("site", "city")
        body = env.get_template(name).render(
            scope="city", path=request.url.path, store_error=city.store_error,
            gateway_dir_missing=False, **ctx)
        # a lone surrogate from the store becomes U+FFFD, never a 500
        return HTMLResponse(body.encode("utf-8", "replace"), status_code=status)

    def not_found(request: Request, what: str) -> Response:
        if request.url.path.startswith("/api/"):
            return JSON({"error": f"unknown {what}"}, status_code=404)
        return page(request, "404.html", status=404, device=what)

    async def known_site(site: str) -> bool:
        snap = await city.snapshot()
        return bool(_ID.match(site)) and (site in snap.sites or site in city.configured)

    async def city_page(request: Request) -> Response:
        snap, firing = await asyncio.gather(city.snapshot(), city.alerts())
        return page(request, "city.html", sites=site_summaries(snap, firing),
                    states=SHOWN_STATES, alerts=firing)

    async def site_doc(request: Request) -> dict[str, Any] | None:
        site = request.path_params["site"]
        if not await known_site(site):
            return None
        state = request.query_params.get("state", "")
        state = state if state in DEVICE_STATES else ""
        snap, values = await asyncio.gather(city.snapshot(), city.values(site))
        rows, pages = page_of(site_rows(snap, site, values, state),
                              _int(request.query_params.get("page"), 1))
        summary = next((s for s in site_summaries(snap) if s["site"] == site),
                       {"site": site, "gateways": [], "devices": dict.fromkeys(SHOWN_STATES, 0),
                        "state": "down", "capture_24h": None})
        return {"site": site, "state": state, "rows": rows, "pages": pages,
                "page": min(max(_int(request.query_params.get("page"), 1), 1), pages),
                "summary": summary}

    async def site_page(request: Request) -> Response:
        doc = await site_doc(request)
        if doc is None:
            return not_found(request, f"site {request.path_params['site']!r}")
        q = {"state": doc["state"], "page": str(doc["page"])}
        events = f"/api/sites/{doc['site']}/events?" + urllib.parse.urlencode(q)
        return page(request, "fleet.html", site=doc["site"], rows=doc["rows"],
                    gateway=None, summary=doc["summary"], states=SHOWN_STATES,
                    state=doc["state"], pages=doc["pages"], page=doc["page"],
                    base=f"/sites/{doc['site']}", events=events)

    async def device_page(request: Request) -> Response:
        site, device = request.path_params["site"], request.path_params["device"]
        window = request.query_params.get("window", "24h")
        window = window if window in WINDOWS else "24h"
        doc = (await city.device(site, device)
               if _ID.match(site) and _ID.match(device) else None)
        if doc is None:
            return not_found(request, f"device {device!r} of site {site!r}")
        return page(request, "device.html", site=site, d=doc, window=window,
                    windows=list(WINDOWS), base=f"/sites/{site}",
                    api=f"/api/sites/{site}/devices/{device}")

    async def map_page(request: Request) -> Response:
        snap = await city.snapshot()
        no_location = sorted(k for k, s in snap.stations.items()
                             if s.lat is None or s.lon is None)
        focus = request.query_params.get("site", "")
        focus = focus if focus in snap.sites else ""
        return page(request, "map.html", tiles=tiles, stations=len(snap.stations), focus=focus,
                    no_location=no_location, states=SHOWN_STATES)

    async def alerts_page(request: Request) -> Response:
        firing = await city.alerts()
        return page(request, "alerts.html", alerts=firing, error=city.alerts_error,
                    configured=bool(cfg.alerts.alertmanager_url))

    async def api_sites(request: Request) -> Response:
        snap, firing = await asyncio.gather(city.snapshot(), city.alerts())
        return JSON(site_summaries(snap, firing))

    async def api_site_devices(request: Request) -> Response:
        site = request.path_params["site"]
        if not await known_site(site):
            return not_found(request, f"site {site!r}")
        snap, values = await asyncio.gather(city.snapshot(), city.values(site))
        return JSON(site_rows(snap, site, values,
                                      request.query_params.get("state", "")))

    async def api_device(request: Request) -> Response:
        site, device = request.path_params["site"], request.path_params["device"]
        doc = (await city.device(site, device)
               if _ID.match(site) and _ID.match(device) else None)
        return JSON(doc) if doc is not None else not_found(request, f"device {device!r}")

    async def api_readings(request: Request) -> Response:
        site, device = request.path_params["site"], request.path_params["device"]
        quantity = request.query_params.get("quantity", "")
        if not (_ID.match(site) and _ID.match(device)):
            return not_found(request, f"device {device!r}")
        if not _QUANTITY.match(quantity):
            return JSON({"error": "quantity=Q is required (e.g. quantity=co2)"},
                                status_code=400)
        now = time.time()
        span, step = WINDOWS.get(request.query_params.get("window", "24h"), WINDOWS["24h"])
        try:  # the gateway scope's window rules: finite, 2020..now + 1 day, <= 366 days
            since, until = time_window(request.query_params.get("since"),
                                       request.query_params.get("until"), span, now)
        except WindowError as exc:
            return JSON({"error": str(exc)}, status_code=400)
        if "since" in request.query_params:
            step = max(int((until - since) / 300), 1)
        try:
            doc = await city.series(site, device, quantity, int(since * 1000),
                                    int(until * 1000), step * 1000)
        except StoreUnreadable as exc:
            return JSON({"error": str(exc)}, status_code=503)
        doc["since"], doc["until"] = since, until
        return JSON(doc)

    async def api_stations(request: Request) -> Response:
        return JSON(geojson(await city.snapshot()),
                            media_type="application/geo+json")

    async def api_alerts(request: Request) -> Response:
        return JSON(await city.alerts())

    def sse(request: Request, events: Callable[[], Awaitable[tuple[str, Any] | None]]
            ) -> Response:
        async def stream() -> AsyncIterator[bytes]:
            yield b"retry: 2000\n\n"
            while not stop.is_set() and not await request.is_disconnected():
                got = await events()
                if got is None:
                    yield b": keep-alive\n\n"
                else:
                    yield f"event: {got[0]}\ndata: {_dumps(got[1])}\n\n".encode()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), SSE_PERIOD_S)
        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})

    async def city_events(request: Request) -> Response:
        """SSE for the city page: the site summaries whenever they change."""
        last = [""]

        async def next_event() -> tuple[str, Any] | None:
            snap, firing = await asyncio.gather(city.snapshot(), city.alerts())
            doc = {"sites": site_summaries(snap, firing), "store_error": city.store_error}
            text = json.dumps(doc, sort_keys=True)
            if text == last[0]:
                return None
            last[0] = text
            return "city", doc
        return sse(request, next_event)

    async def site_events(request: Request) -> Response:
        """SSE for a site page: the rows of the page shown that changed, and the ids."""
        sent: dict[str, str] = {}
        last = [""]

        async def next_event() -> tuple[str, Any] | None:
            doc = await site_doc(request)
            if doc is None:
                return None
            changed = []
            for row in doc["rows"]:
                text = json.dumps(row, sort_keys=True)
                if sent.get(row["device"]) != text:
                    sent[row["device"]] = text
                    changed.append(row)
            extra = json.dumps([doc["summary"], city.store_error, doc["pages"]], sort_keys=True)
            if not changed and extra == last[0]:
                return None
            last[0] = extra
            return "fleet", {"rows": changed, "ids": [r["device"] for r in doc["rows"]],
                             "summary": doc["summary"], "gateway": None,
                             "store_error": city.store_error, "now": time.time()}
        return sse(request, next_event)

    async def missing(request: Request, exc: Exception) -> Response:
        return not_found(request, request.url.path)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        task = asyncio.create_task(city.snapshot())  # warm before the first page asks
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await city.aclose()

    routes = [
        Route("/", city_page),
        Route("/sites/{site}", site_page),
        Route("/sites/{site}/devices/{device}", device_page),
        Route("/map", map_page),
        Route("/alerts", alerts_page),
        Route("/api/sites", api_sites),
        Route("/api/sites/{site}/devices", api_site_devices),
        Route("/api/sites/{site}/devices/{device}", api_device),
        Route("/api/sites/{site}/devices/{device}/readings", api_readings),
        Route("/api/sites/{site}/events", site_events),
        Route("/api/stations.geojson", api_stations),
        Route("/api/alerts", api_alerts),
        Route("/api/events", city_events),
    ]
    return assemble(cfg, env, routes, lifespan, missing, img_src=tile_origin(tiles), city=city)

