"""The city console's one door to the store: a cached snapshot, bounded queries.

Every page of the city reads one :class:`~gateway.console.city.Snapshot`,
refreshed at most every ``SNAPSHOT_TTL_S`` by five store questions (sites,
gateways, devices, stations, latest reading times) and 24 h of delivery at most
every ``DELIVERY_TTL_S``, whatever the number of sites, devices or open pages; a
site page adds one (its latest values), a device page two (its latest values,
its rejections). Each question is a fixed number of store queries (the reader's
rule). The reader is blocking, so it runs in a worker thread, never on the event
loop, and a view never waits long for it (stale-while-revalidate). When the
store does not answer, pages keep the last snapshot and say why
(``store_error``); the next refresh that succeeds clears it, so a page recovers
by itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from protocols.config import Config

from ..alerts.errors import AlertsError
from ..stores.centre import CentreReader, DeliveryRow
from ..stores.reading import StoreUnreadable
from ..stores.states import device_states
from . import store
from .city import Key, Snapshot, device_doc, values_of

__all__ = ["SNAPSHOT_TTL_S", "City", "FiringAlerts"]

SNAPSHOT_TTL_S = 2.0
VALUES_TTL_S = 2.0
ALERTS_TTL_S = 5.0
#: delivery points change once a minute (the current hour is rewritten): 24 h of them,
#: the heaviest question, is asked at most this often
DELIVERY_TTL_S = 60.0
#: how long a view waits for a refresh before it shows the last answer
REFRESH_WAIT_S = 0.5
FIRST_WAIT_S = 15.0
DAY_MS = 86_400_000

T = TypeVar("T")
#: the firing alerts as ``/api/alerts`` rows (blocking; AlertsError when Alertmanager does
#: not answer): :func:`gateway.alerts.firing.firing_alerts`
FiringAlerts = Callable[[], list[dict[str, Any]]]


@dataclass
class _Slot:
    at: float = float("-inf")
    value: Any = None
    error: str = ""


def _now_ms() -> int:
    return int(time.time() * 1000)


class City:
    """The snapshot, the latest values per site and the firing alerts, cached."""

    def __init__(self, cfg: Config, reader: CentreReader,
                 alerts: FiringAlerts | None = None) -> None:
        self.cfg = cfg
        self.reader = reader
        self.registry = cfg.registry
        self.configured = tuple(cfg.console.sites)
        self._alerts = alerts
        self._slots: dict[str, _Slot] = {}
        self._tasks: dict[str, asyncio.Future[None]] = {}
        self._parts: tuple[object, object] = (None, None)
        self._joined: Snapshot | None = None
        self._store_error = ""

    async def _cached(self, key: str, ttl: float, fn: Callable[[], T], default: T,
                      errors: tuple[type[BaseException], ...] = (StoreUnreadable,)) -> T:
        """The last answer of ``fn``, asked again in a worker thread once it is older
        than ``ttl`` (one question in flight per key). A view waits for that answer at
        most ``REFRESH_WAIT_S`` (``FIRST_WAIT_S`` when there is none yet), then shows
        the last one: a slow store makes pages late by a refresh, never slow."""
        slot = self._slots.setdefault(key, _Slot())
        if time.monotonic() - slot.at >= ttl:
            task = self._tasks.get(key)
            if task is None or task.done():
                task = asyncio.ensure_future(self._refresh(key, slot, fn, errors))
                self._tasks[key] = task
            wait = FIRST_WAIT_S if slot.value is None else REFRESH_WAIT_S
            try:
                await asyncio.wait_for(asyncio.shield(task), wait)
            except TimeoutError:
                if slot.value is None and key != "alerts":
                    self._store_error = f"the store has not answered for {wait:.0f} s"
        return slot.value if slot.value is not None else default

    async def _refresh(self, key: str, slot: _Slot, fn: Callable[[], Any],
                       errors: tuple[type[BaseException], ...]) -> None:
        try:
            slot.value, slot.error = await asyncio.to_thread(fn), ""
        except errors as exc:
            slot.error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        slot.at = time.monotonic()
        if key != "alerts":  # the store's latest answer speaks for all its slots
            self._store_error = slot.error

    async def aclose(self) -> None:
        """Stop waiting for the questions in flight (their threads finish on their own)."""
        for task in self._tasks.values():
            task.cancel()
        for task in self._tasks.values():
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def expire(self) -> None:
        """Forget every cached answer: the next view asks the store again."""
        for slot in self._slots.values():
            slot.at = float("-inf")

    @property
    def store_error(self) -> str:
        """Why the store did not answer the last time it was asked ("" when it did)."""
        return self._store_error

    @property
    def alerts_error(self) -> str:
        slot = self._slots.get("alerts")
        return slot.error if slot is not None else ""

    def _sites(self) -> tuple[str, ...]:
        return self.configured or tuple(sorted(self.reader.sites()))

    def _read_snapshot(self) -> Snapshot:
        """Everything the states need: a fixed number of queries for any city."""
        r, now = self.reader, _now_ms()
        sel = self.configured
        sites = self._sites()
        if not sites:
            return Snapshot(now)
        gateways = tuple(r.gateways(sel))
        devices = {(d.site, d.device): d for d in r.devices(sel)}
        stations = {(s.site, s.device): s for s in r.stations(sel)}
        latest = r.latest_reading_times(sel)
        shown = set(sites)
        states = {k: v for k, v in device_states(
            now, gateways=gateways, devices=devices.values(), stations=stations.values(),
            latest_reading=latest).items() if k[0] in shown}
        return Snapshot(now, sites, gateways, devices, stations, latest, states)

    def _read_delivery(self) -> dict[Key, tuple[DeliveryRow, ...]]:
        """(site, device) -> its delivery points of the last 24 h, oldest first."""
        now = _now_ms()
        out: dict[Key, list[DeliveryRow]] = {}
        for row in self.reader.delivery(now - DAY_MS, now + 1, self.configured):
            out.setdefault((row.site, row.device), []).append(row)
        return {k: tuple(sorted(v, key=lambda d: d.hour_ms)) for k, v in out.items()}

    async def snapshot(self) -> Snapshot:
        """The cached snapshot with the (more slowly refreshed) delivery of 24 h."""
        empty: dict[Key, tuple[DeliveryRow, ...]] = {}
        snap, delivery = await asyncio.gather(
            self._cached("snapshot", SNAPSHOT_TTL_S, self._read_snapshot, Snapshot(_now_ms())),
            self._cached("delivery", DELIVERY_TTL_S, self._read_delivery, empty))
        # the same parts: the same object, so what it memoises (per-site groups) holds
        if self._parts[0] is not snap or self._parts[1] is not delivery \
                or self._joined is None:
            self._parts = (snap, delivery)
            self._joined = dataclasses.replace(snap, delivery=delivery)
        return self._joined

    async def values(self, site: str) -> Mapping[Key, dict[str, dict[str, Any]]]:
        """(site, device) -> quantity -> latest value, for one site (one query)."""
        return await self._cached(
            f"values:{site}", VALUES_TTL_S,
            lambda: values_of(self.reader.latest_values((site,)), self.registry), {})

    async def device(self, site: str, device: str) -> dict[str, Any] | None:
        """The device page's document; None when the store knows no such device."""
        snap = await self.snapshot()
        key = (site, device)
        if key not in snap.states:
            return None
        values = (await self.values(site)).get(key, {})

        def rejections() -> list[dict[str, Any]]:
            now = _now_ms()
            rows = [r for r in self.reader.rejections(now - DAY_MS, now + 1, (site,))
                    if r.device == device]
            return [{"at": r.hour_ms / 1000, "reason": r.reason, "count": r.count,
                     "detail": f"{r.count} in the hour"}
                    for r in sorted(rows, key=lambda r: (-r.hour_ms, r.reason))]
        nothing: list[dict[str, Any]] = []
        rej = await self._cached(f"rejections:{site}:{device}", VALUES_TTL_S, rejections,
                                 nothing)
        return device_doc(snap, key, values, rej)

    async def alerts(self) -> list[dict[str, Any]]:
        """The firing alerts (empty without ``[alerts] alertmanager_url``)."""
        if self._alerts is None:
            return []
        return await self._cached("alerts", ALERTS_TTL_S, self._alerts, [],
                                  errors=(AlertsError, OSError, ValueError))

    async def series(self, site: str, device: str, quantity: str, since_ms: int,
                     until_ms: int, step_ms: int) -> dict[str, Any]:
        """One quantity of one device, averaged per step in the store, one line per sensor."""
        values = (await self.values(site)).get((site, device), {})
        doc = await asyncio.to_thread(
            store.series, self.reader, self.registry, site, device, quantity, since_ms,
            until_ms, step_ms, values.get(quantity, {}).get("domain", ""))
        return {"site": site, "device": device, "quantity": quantity,
                "unit": self.registry.unit_of(quantity) or "", "since_ms": since_ms,
                "until_ms": until_ms, "step_ms": step_ms, **doc}
