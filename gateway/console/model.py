"""What the pages show, assembled from the gateway's files, the live status and the store.

:class:`Console` is the one object the web layer talks to. Store answers are
cached briefly (``LATEST_TTL_S`` for latest values) so any number of open pages
costs the store one query per period, and the store is asked from a worker
thread, never the event loop. Delivery over the last 24 h (received, accepted,
duplicates, rejected, missing, capture) is the gateway's own accounting, read
from its buffer file (cached ``DELIVERY_TTL_S``), not a count of stored readings.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from gateway.accounting.delivery import Gap, HourRow, capture
from protocols.config import Config

from ..stores.centre import CentreReader
from ..stores.reading import StoreUnreadable
from . import store
from .live import LiveStatus
from .state import GatewayFiles, InventoryRow, SeenRow, fetch_healthz

__all__ = ["WINDOWS", "Console"]

LATEST_TTL_S = 2.0
#: how far back the fleet page's latest values look
LATEST_WINDOW_S = 3600
DELIVERY_TTL_S = 5.0
GAPS_SHOWN = 50
COUNTS = ("received", "accepted", "duplicates", "rejected", "missing")
ONLINE_WITHOUT_STATUS_S = 300.0
DAY_S = 86400.0
#: window name -> (seconds, downsampling step in seconds): ~300 points per chart at most
WINDOWS: dict[str, tuple[int, int]] = {"1h": (3600, 15), "24h": (86400, 300),
                                       "7d": (7 * 86400, 1800)}

T = TypeVar("T")


@dataclass
class _Cached:
    at: float = float("-inf")
    value: Any = None
    error: str = ""


def _counts(counts: Sequence[int]) -> dict[str, Any]:
    """The contract's counts and capture = accepted / (accepted + rejected + missing)."""
    doc: dict[str, Any] = dict(zip(COUNTS, counts, strict=True))
    doc["capture"] = round(capture(doc["accepted"], doc["rejected"], doc["missing"]), 6)
    return doc


def _totals(rows: list[HourRow]) -> dict[str, dict[str, Any]]:
    """device -> the counts summed over its hour rows, with the capture of the sums."""
    sums: dict[str, list[int]] = {}
    for r in rows:
        t = sums.setdefault(r.device, [0] * len(COUNTS))
        for i, n in enumerate(r.counts()):
            t[i] += n
    return {d: _counts(t) for d, t in sums.items()}


def _per_hour(rows: list[HourRow], now: float) -> list[dict[str, Any]]:
    """The last 24 whole UTC hours plus the current one; an hour without a row (nothing
    received) has zero counts and capture None."""
    got = {r.hour: r for r in rows}
    first = (int(now) // 3600 - 24) * 3600
    out = []
    for h in range(first, first + 25 * 3600, 3600):
        row = got.get(h)
        counts = _counts(row.counts()) if row is not None else {
            **dict.fromkeys(COUNTS, 0), "capture": None}
        out.append({"hour_ms": h * 1000, **counts})
    return out


def _gap(g: Gap) -> dict[str, Any]:
    """One gap as ``livinglab report gaps`` has it; times in Unix seconds."""
    seqs = g.lo >= 0
    return {"start": g.start, "end": g.end, "boot": g.boot,
            "seq_from": g.lo if seqs else None, "seq_to": g.hi if seqs else None,
            "messages": g.hi - g.lo + 1 if seqs else 0, "cause": g.cause}


def _update_of(status: Mapping[str, Any]) -> dict[str, str] | None:
    """The status's ``update`` (OTA progress) when it has the contract's shape: the live
    subscription hands the console unvalidated JSON."""
    u = status.get("update")
    if not isinstance(u, dict):
        return None
    version, state, reason = u.get("version"), u.get("state"), u.get("reason")
    if not isinstance(version, str) or not isinstance(state, str):
        return None
    return {"version": version[:40], "state": state[:20],
            "reason": reason[:200] if isinstance(reason, str) else ""}


class Console:
    def __init__(self, cfg: Config, reader: CentreReader, live: LiveStatus) -> None:
        self.cfg = cfg
        #: the site's quantities (built-ins plus ``[quantities.NAME]``): units, domains
        self.registry = cfg.registry
        self.files = GatewayFiles(cfg.gateway.data_dir)
        self.reader = reader
        self.live = live
        self._cache: dict[str, _Cached] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def unit_of(self, quantity: str) -> str:
        """The quantity's canonical unit; "" for one the site does not (or no longer) know."""
        return self.registry.unit_of(quantity) or ""

    async def _cached(self, key: str, ttl: float, fn: Callable[[], T], default: T) -> T:
        """``fn`` in a thread at most once per ``ttl``; on StoreUnavailable the last value."""
        c = self._cache.setdefault(key, _Cached())
        lock = self._locks.setdefault(key, asyncio.Lock())
        async with lock:
            if time.monotonic() - c.at >= ttl:
                try:
                    c.value, c.error = await asyncio.to_thread(fn), ""
                except StoreUnreadable as exc:
                    c.error = str(exc)
                c.at = time.monotonic()
        return c.value if c.value is not None else default

    @property
    def store_error(self) -> str:
        return next((c.error for c in self._cache.values() if c.error), "")

    async def _latest(self) -> store.Latest:
        return await self._cached("latest", LATEST_TTL_S, lambda: store.latest(
            self.reader, self.cfg.site, LATEST_WINDOW_S), {})

    async def _delivery(self) -> dict[str, dict[str, Any]]:
        """device -> delivery over the last 24 h (the accounting's hours that overlap it)."""
        def read() -> dict[str, dict[str, Any]]:
            now = time.time()
            return _totals(self.files.delivery_hours(now - DAY_S, now + 1))
        return await self._cached("delivery", DELIVERY_TTL_S, read, {})

    def _state(self, device: str, inv: InventoryRow | None, seen: SeenRow | None) -> str:
        if inv is not None and inv.retired:
            return "retired"
        live = self.live.devices.get(device)
        if live is not None:
            return live.state
        if seen is not None:
            if seen.state in ("online", "offline"):
                return seen.state
            fresh = time.time() - seen.last_seen < ONLINE_WITHOUT_STATUS_S
            return "online" if fresh else "offline"
        return "never-seen"

    def _row(self, device: str, inv: InventoryRow | None, seen: SeenRow | None,
             values: dict[str, tuple[float, int]], rejected: int,
             delivery: dict[str, Any] | None) -> dict[str, Any]:
        live = self.live.devices.get(device)
        status: dict[str, Any] = dict(seen.status) if seen is not None else {}
        if live is not None:
            status.update(live.fields)
        last_seen = seen.last_seen if seen is not None else None
        if live is not None and live.fields.get("fw") is not None:  # heard from, not just a will
            last_seen = max(last_seen or 0.0, live.at)
        fw = status.get("fw")
        return {
            "device": device,
            "state": self._state(device, inv, seen),
            "board": (inv.board if inv is not None else "") or str(status.get("board", "")),
            "firmware": str(fw or "") or (inv.fw_version if inv is not None else ""),
            "fw": str(fw) if fw is not None else None,
            "update": _update_of(status),
            "location": inv.location if inv is not None else "",
            "last_seen": last_seen,
            "values": {q: {"value": v, "unit": self.unit_of(q), "time_ms": t or None}
                       for q, (v, t) in sorted(values.items())},
            "rejected_24h": rejected,
            "delivery_24h": delivery,
        }

    async def fleet(self) -> list[dict[str, Any]]:
        """One row per device of the inventory, ever seen, or with a live status."""
        inventory, seen, rejected = await asyncio.gather(
            asyncio.to_thread(self.files.inventory), asyncio.to_thread(self.files.lastseen),
            asyncio.to_thread(self.files.rejection_counts, DAY_S))
        latest, delivery = await asyncio.gather(self._latest(), self._delivery())
        inv = {r.device: r for r in inventory}
        seen_by = {r.device: r for r in seen}
        ids = sorted(set(inv) | set(seen_by) | set(self.live.devices) | set(latest))
        return [self._row(d, inv.get(d), seen_by.get(d), latest.get(d, {}),
                          rejected.get(d, 0), delivery.get(d))
                for d in ids]

    async def device(self, device: str, window_s: int = 3600) -> dict[str, Any] | None:
        """The fleet row plus status fields, metadata, rejections and the quantities with
        readings in the window (one chart each); None if unknown."""
        rows = {r["device"]: r for r in await self.fleet()}
        row = rows.get(device)
        if row is None:
            return None
        inventory = {r.device: r for r in await asyncio.to_thread(self.files.inventory)}
        seen = {r.device: r for r in await asyncio.to_thread(self.files.lastseen)}
        status: dict[str, Any] = dict(seen[device].status) if device in seen else {}
        live = self.live.devices.get(device)
        if live is not None:
            status.update(live.fields)
        inv = inventory.get(device)
        rejections = await asyncio.to_thread(self.files.rejections, device=device, limit=50)
        now = time.time()
        first = (int(now) // 3600 - 24) * 3600
        hours, gaps = await asyncio.gather(
            asyncio.to_thread(self.files.delivery_hours, first, now + 1, device),
            asyncio.to_thread(self.files.delivery_gaps, now - DAY_S, now + 1, device))
        nothing: dict[str, tuple[float, int]] = {}
        in_window = await self._cached(
            f"window:{device}:{window_s}", LATEST_TTL_S,
            lambda: store.latest(self.reader, self.cfg.site, window_s, device).get(device, {}),
            nothing)
        charts = {q: {"value": v, "unit": self.unit_of(q)}
                  for q, (v, _) in sorted(in_window.items())}
        return {**row, "status": status, "charts": charts,
                "metadata": None if inv is None else {
                    "board": inv.board, "sensors": list(inv.sensors), "location": inv.location,
                    "fw_version": inv.fw_version, "provisioned_at": inv.provisioned_at,
                    "retired": inv.retired},
                "rejections": [r.as_json() for r in rejections],
                "delivery_per_hour": _per_hour(hours, now),
                "delivery_gaps": [_gap(g) for g in reversed(gaps[-GAPS_SHOWN:])]}

    async def readings(self, device: str, quantity: str, since_ms: int, until_ms: int,
                       step_ms: int) -> dict[str, Any]:
        doc = await asyncio.to_thread(store.series, self.reader, self.registry, self.cfg.site,
                                      device, quantity, since_ms, until_ms, step_ms)
        return {"device": device, "quantity": quantity, "unit": self.unit_of(quantity),
                "since_ms": since_ms, "until_ms": until_ms, "step_ms": step_ms, **doc}

    async def gateway(self) -> dict[str, Any]:
        """Broker connected, buffer depth and oldest age, store reachable."""
        g = self.cfg.gateway
        health, store_ok = await asyncio.gather(
            asyncio.to_thread(fetch_healthz, g.health_host, g.health_port),
            self._store_ok())
        status = self.live.gateways.get(g.id)
        return {
            "gateway": g.id,
            "data_dir_exists": self.files.exists,
            "state": status.state if status is not None else ("online" if health else "unknown"),
            "healthz": health is not None,
            "broker_connected": bool(health["mqtt_connected"]) if health else None,
            "buffer_depth": (health or {}).get("buffer_depth",
                                               (status.fields if status else {}).get(
                                                   "buffer_depth")),
            "oldest_age_s": (health or {}).get("oldest_age_s"),
            "store_down_s": (health or {}).get("store_down_s"),
            "store_reachable": store_ok,
            "store": store.describe(self.cfg.store),
            "store_error": self.store_error,
            "console_broker": self.live.connected,
            "console_broker_error": self.live.error,
            "console_statuses_skipped": self.live.skipped,
        }

    async def _store_ok(self) -> bool:
        def ping() -> bool:
            self.reader.check()
            return True
        ok = await self._cached("ping", LATEST_TTL_S, ping, False)
        return ok and not self._cache["ping"].error

    async def wait_change(self, timeout: float, stop: asyncio.Event) -> None:
        """Return when a live status changes, ``stop`` is set, or after ``timeout``."""
        cond = self.live.changed
        seen = self.live.version

        async def changed() -> None:
            async with cond:
                await cond.wait_for(lambda: self.live.version != seen)
        waiters = [asyncio.ensure_future(changed()), asyncio.ensure_future(stop.wait())]
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for w in waiters:
                w.cancel()

