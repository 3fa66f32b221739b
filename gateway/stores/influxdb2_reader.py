"""The reader of ``influxdb2`` stores of the VictoriaMetrics flavour, for the centre
(:class:`~gateway.stores.centre.CentreReader`) and the exports (``window``).

VictoriaMetrics takes the InfluxDB write API but keeps Prometheus series: one per
(measurement, field, tags), named ``{measurement}_{field}``, the tags as labels;
it drops string fields (or keeps a string as the number it parses out of it),
so strings come from the ``{measurement}_info`` companions, whose series
``{measurement}_info_v`` carry them as labels. Read through its Prometheus API:

- "latest": ``last_over_time`` and ``tlast_over_time`` over ``[console]
  lookback_s`` (two instant queries: the values and their times), then the
  newest point per key is rebuilt from each series' last sample;
- windows and histories: ``/api/v1/export`` (raw samples, JSON lines);
- series: ``avg_over_time`` in ``/api/v1/query_range``, evaluated at the end of
  each step so a step is ``[t, t + step)`` like the other stores.

InfluxDB 2 (Flux) is ``flux_reader``; which one: ``readers.flavour_of``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Sequence
from typing import Any

from protocols.config import StoreSection

from .centre import (
    DeliveryRow,
    RejectionRow,
    SeriesPoint,
    is_reading_measurement,
)
from .centre_rows import (
    RESERVED_DOMAINS,
    STRING_FIELDS,
    PointsFromPrimitives,
    Sample,
    check_ids,
    delivery_row,
    latest_of,
    latest_strings,
    points_of,
    reading_order,
    rejection_row,
)
from .http_read import HttpReads
from .reading import Reading, StoreUnreadable, split_metric

__all__ = ["VictoriaMetricsReader", "vm_match"]

_END = 8_000_000_000_000  # ms, year 2223
#: every series that is not a reading: reserved measurements and the companions
_NOT_READING = "(" + "|".join(RESERVED_DOMAINS) + ")_.+|.+_info_v"
_SKIP_LABELS = frozenset({"__name__", "site", "device", "gateway", "db", "v"})


def vm_match(domains: Sequence[str], devices: Sequence[str], sites: Sequence[str] = ()) -> str:
    """The series selector of ``/api/v1/export`` for the domains (and devices, sites)."""
    sel = '__name__=~"(' + "|".join(domains) + ')_.+"'
    if devices:
        sel += ',device=~"' + "|".join(devices) + '"'
    if sites:
        sel += ',site=~"' + "|".join(check_ids(sites, "site")) + '"'
    return "{" + sel + "}"


def _sel(name: str, sites: Sequence[str] = (), devices: Sequence[str] = (),
         not_name: str = "") -> str:
    parts = [f'__name__=~"{name}"']
    if not_name:
        parts.append(f'__name__!~"{not_name}"')
    if sites:
        parts.append(f'site=~"{"|".join(check_ids(sites, "site"))}"')
    if devices:
        parts.append(f'device=~"{"|".join(check_ids(devices, "device"))}"')
    return "{" + ",".join(parts) + "}"


def _strings_of(measurement: str) -> str:
    """The series a string field leaves in VictoriaMetrics (a number parsed out of the
    string, or 0): never asked for."""
    fields = sorted(STRING_FIELDS.get(measurement, ()))
    return f"{measurement}_({'|'.join(fields)})" if fields else ""


def _ms(seconds: Any) -> int:
    return int(round(float(seconds) * 1000))


class VictoriaMetricsReader(PointsFromPrimitives):
    """Both readers of a VictoriaMetrics store; blocking, read-only."""

    def __init__(self, cfg: StoreSection, lookback_s: int = 30 * 86400, chunk_s: int = 3600,
                 domains: Sequence[str] = ()) -> None:
        self._lookback_s = lookback_s
        self._chunk_ms = chunk_s * 1000
        self._domains = tuple(domains)
        self.what = "VictoriaMetrics"
        headers = {"Authorization": f"Bearer {cfg.token}"} if cfg.token else {}
        self._http = HttpReads(cfg.reader_urls, cfg.timeout_s * 6, self.what, headers,
                               cfg.ca_file)

    # -- plumbing ---------------------------------------------------------------------
    def _json(self, path: str, params: dict[str, str]) -> Any:
        try:
            doc = json.loads(self._http.get(path, params))
        except ValueError:
            raise StoreUnreadable(f"{self.what} answered something that is not JSON "
                                  "(check [store] url and flavour)") from None
        if doc.get("status") != "success":
            raise StoreUnreadable(f"{self.what}: {doc.get('error', doc)}")
        return doc.get("data")

    def _instant(self, query: str) -> list[dict[str, Any]]:
        return list(self._json("/api/v1/query", {"query": query,
                                                 "time": f"{time.time():.3f}"})["result"])

    def _last(self, selector: str, since_ms: int | None = None
              ) -> list[tuple[dict[str, str], int, float]]:
        """(labels, time of the newest sample, its value) of every series matched, looking
        back ``lookback_s`` (or to ``since_ms``): two queries."""
        back_ms = self._lookback_s * 1000 if since_ms is None \
            else max(int(time.time() * 1000) - since_ms, 1)
        window = f"[{back_ms}ms]"
        values = self._instant(f"last_over_time({selector}{window}) keep_metric_names")
        times = self._instant(f"tlast_over_time({selector}{window}) keep_metric_names")
        at = {frozenset(r["metric"].items()): _ms(r["value"][1]) for r in times}
        out = []
        for r in values:
            t = at.get(frozenset(r["metric"].items()))
            if t is not None:
                out.append((dict(r["metric"]), t, float(r["value"][1])))
        return out

    def _export(self, selector: str, since_ms: int, until_ms: int
                ) -> Iterator[tuple[dict[str, str], int, float]]:
        """(labels, time, value) of every raw sample in ``[since_ms, until_ms)``."""
        body = self._http.get("/api/v1/export", {
            "match[]": selector, "start": f"{max(since_ms, 0) / 1000:.3f}",
            "end": f"{(until_ms - 1) / 1000:.3f}"})
        try:
            for line in body.splitlines():
                if not line.strip():
                    continue
                obj = json.loads(line)
                labels = dict(obj["metric"])
                for t, v in zip(obj["timestamps"], obj["values"], strict=True):
                    if since_ms <= t < until_ms and isinstance(v, (int, float)):
                        yield labels, int(t), float(v)
        except (ValueError, KeyError) as exc:
            raise StoreUnreadable(f"{self.what}: an export line does not parse: {exc}") \
                from None

    def _split(self, name: str) -> tuple[str, str]:
        """``air_pm2_5`` -> (air, pm2_5): the longest known domain, else the first ``_``."""
        known = split_metric(name, self._domains)
        if known is not None:
            return known
        head, _, tail = name.partition("_")
        return head, tail

    @staticmethod
    def _samples(measurement: str, key: str,
                 rows: Iterator[tuple[dict[str, str], int, float]] | list[Any]
                 ) -> tuple[list[Sample], list[tuple[tuple[str, str], int, dict[str, str]]]]:
        """Number samples of ``measurement`` and (key, time, strings) of its companion."""
        nums: list[Sample] = []
        infos: list[tuple[tuple[str, str], int, dict[str, str]]] = []
        info = f"{measurement}_info_v"
        strings = STRING_FIELDS.get(measurement, frozenset())
        for labels, t, v in rows:
            name = labels.get("__name__", "")
            site, k = labels.get("site", ""), labels.get(key, "")
            if name == info:
                infos.append(((site, k), t, {n: s for n, s in labels.items()
                                             if n not in _SKIP_LABELS}))
            elif name.startswith(measurement + "_"):
                field = name[len(measurement) + 1:]
                if field not in strings:
                    nums.append((site, k, t, field, v))
        return nums, infos

    def _latest(self, measurement: str, key: str, sites: Sequence[str]
                ) -> list[tuple[str, str, int, dict[str, float], dict[str, str]]]:
        rows = self._last(_sel(f"{measurement}_.+", sites, not_name=_strings_of(measurement)))
        nums, infos = self._samples(measurement, key, rows)
        strings = latest_strings(infos)
        return [(s, k, t, f, strings.get((s, k), {}))
                for (s, k), (t, f) in sorted(latest_of(nums).items())]

    def _history(self, measurement: str, key: str, sites: Sequence[str], since_ms: int,
                 until_ms: int) -> list[tuple[str, str, int, dict[str, float], dict[str, str]]]:
        rows = self._export(_sel(f"{measurement}_.+", sites, not_name=_strings_of(measurement)),
                            since_ms, until_ms)
        nums, infos = self._samples(measurement, key, rows)
        at = {(k[0], k[1], t): s for k, t, s in infos}
        return [(s, k, t, f, at.get((s, k, t), {}))
                for (s, k, t), f in sorted(points_of(nums).items(),
                                           key=lambda kv: (kv[0][2], kv[0][:2]))]

    # -- the CentreReader protocol ------------------------------------------------------
    def check(self) -> None:
        self._http.get("/health")

    def sites(self) -> list[str]:
        now = time.time()
        data = self._json("/api/v1/label/site/values",
                          {"start": f"{now - self._lookback_s:.0f}", "end": f"{now:.0f}"})
        return sorted(str(s) for s in data or [])

    def _reading_sel(self, sites: Sequence[str] = (), devices: Sequence[str] = (),
                     domains: Sequence[str] = (), quantities: Sequence[str] = ()) -> str:
        doms = "|".join(check_ids(domains, "domain")) if domains else ".+"
        qs = "|".join(check_ids(quantities, "quantity")) if quantities else ".+"
        return _sel(f"({doms})_({qs})", sites, devices, _NOT_READING)

    def latest_reading_times(self, sites: Sequence[str] = ()) -> dict[tuple[str, str], int]:
        q = (f"max by (site, device) (tlast_over_time({self._reading_sel(sites)}"
             f"[{self._lookback_s}s]))")
        return {(str(r["metric"].get("site", "")), str(r["metric"].get("device", ""))):
                _ms(r["value"][1]) for r in self._instant(q)}

    def _reading(self, labels: dict[str, str], t: int, v: float) -> Reading | None:
        domain, quantity = self._split(labels.get("__name__", ""))
        if not is_reading_measurement(domain):
            return None
        return Reading(t, labels.get("site", ""), labels.get("device", ""),
                       labels.get("sensor", ""), domain, quantity, v)

    def latest_values(self, sites: Sequence[str] = (), devices: Sequence[str] = (),
                      since_ms: int | None = None) -> list[Reading]:
        out = [r for labels, t, v in self._last(self._reading_sel(sites, devices), since_ms)
               if (r := self._reading(labels, t, v)) is not None
               and (since_ms is None or t >= since_ms)]
        out.sort(key=lambda r: (r.site, r.device, r.sensor, r.domain, r.quantity))
        return out

    def readings(self, since_ms: int, until_ms: int, sites: Sequence[str] = (),
                 devices: Sequence[str] = (), domains: Sequence[str] = (),
                 quantities: Sequence[str] = ()) -> Iterator[Reading]:
        sel = self._reading_sel(sites, devices, domains, quantities)
        start = since_ms
        while start < until_ms:
            end = min(until_ms, (start // self._chunk_ms + 1) * self._chunk_ms)
            rows = [r for labels, t, v in self._export(sel, start, end)
                    if (r := self._reading(labels, t, v)) is not None
                    and (not domains or r.domain in domains)
                    and (not quantities or r.quantity in quantities)]
            rows.sort(key=reading_order)
            yield from rows
            start = end

    def series(self, site: str, device: str, domain: str, quantity: str,
               since_ms: int, until_ms: int, step_ms: int) -> list[SeriesPoint]:
        check_ids([site, device, domain, quantity])
        step = max(int(step_ms), 1)
        first = since_ms // step * step
        sel = (f'{{__name__="{domain}_{quantity}",site="{site}",device="{device}"}}')
        # evaluated at t + step - 1 ms over [step]: the samples of [t, t + step); the
        # last evaluation is that of the bucket holding until_ms - 1, so a window that
        # ends mid-bucket (a chart up to now) keeps its newest, partial bucket
        last = (until_ms - 1) // step * step
        data = self._json("/api/v1/query_range", {
            "query": f"avg_over_time({sel}[{step}ms])", "nocache": "1",
            "start": f"{(first + step - 1) / 1000:.3f}",
            "end": f"{(last + step - 1) / 1000:.3f}", "step": f"{step}ms"})
        out = [SeriesPoint(str(r["metric"].get("sensor", "")), _ms(t) - step + 1, float(v))
               for r in data["result"] for t, v in r.get("values", [])]
        out.sort(key=lambda p: (p.sensor, p.time_ms))
        return out

    def delivery(self, since_ms: int, until_ms: int,
                 sites: Sequence[str] = ()) -> list[DeliveryRow]:
        nums, _ = self._samples("delivery", "device",
                                self._export(_sel("delivery_.+", sites), since_ms, until_ms))
        return [delivery_row(s, d, t, f)
                for (s, d, t), f in sorted(points_of(nums).items(),
                                           key=lambda kv: (kv[0][2], kv[0][:2]))]

    def rejections(self, since_ms: int, until_ms: int,
                   sites: Sequence[str] = ()) -> list[RejectionRow]:
        rows = [rejection_row(labels.get("site", ""), labels.get("device", ""),
                              labels.get("reason", ""), t, {"count": v})
                for labels, t, v in self._export(_sel("rejections_count", sites), since_ms,
                                                 until_ms)]
        rows.sort(key=lambda r: (r.hour_ms, r.site, r.device, r.reason))
        return rows

    def queries(self) -> int:
        return self._http.count

    # -- the export's window (StoreReader) ------------------------------------------------
    def window(self, since_ms: int, until_ms: int, domains: Sequence[str],
               devices: Sequence[str], sites: Sequence[str] = ()) -> list[Reading]:
        out: list[Reading] = []
        body = self._http.get("/api/v1/export", {
            "match[]": vm_match(domains, devices, sites), "start": f"{since_ms / 1000:.3f}",
            "end": f"{(until_ms - 1) / 1000:.3f}"})
        try:
            for line in body.splitlines():
                if line.strip():
                    self._series(json.loads(line), since_ms, until_ms, domains, out)
        except (ValueError, KeyError) as exc:
            raise StoreUnreadable(f"{self.what}: an export line does not parse: {exc}") \
                from None
        return out

    @staticmethod
    def _series(obj: dict[str, Any], since_ms: int, until_ms: int, domains: Sequence[str],
                out: list[Reading]) -> None:
        """One exported series' samples in the window as readings (string fields and the
        ``{m}_info_v`` companions, which ``{m}_.+`` matches too, never)."""
        m = obj["metric"]
        name = str(m.get("__name__", ""))
        split = split_metric(name, domains)
        if split is None or split[1] in STRING_FIELDS.get(split[0], ()) \
                or name.endswith("_info_v"):
            return
        domain, quantity = split
        site, device, sensor = m.get("site", ""), m.get("device", ""), m.get("sensor", "")
        for t, v in zip(obj["timestamps"], obj["values"], strict=True):
            if since_ms <= t < until_ms and isinstance(v, (int, float)):
                out.append(Reading(int(t), site, device, sensor, domain, quantity, float(v)))

    def close(self) -> None:
        pass
