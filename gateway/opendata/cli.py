"""``livinglab report delivery|gaps|capture`` and ``livinglab export``.

    livinglab report delivery --config FILE [--since T] [--until T] [--device ID]...
                              [--format table|csv|json] [--site S]...
    livinglab report gaps     (same options, no --site)
    livinglab report capture  (same options) [--domain D]... [--interval S]
    livinglab export --config FILE --since T --until T [--device ID]... [--domain D]...
                     --format csv|parquet|datapackage --out PATH [--site S]...

``--site S`` (repeatable): those sites, from the store alone (the centre: any
config with a ``[store]``, no ``site`` needed); rows gain a ``site`` column.
Without it: the config's own site (delivery and gaps from the gateway's files).
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

from protocols.config import Config, load_config

from .errors import ExportError
from .report import CaptureRow

ERRORS: tuple[type[Exception], ...] = (ExportError,)

# `--since -24h`: argparse takes a value starting with '-' for an option unless it looks
# like a negative number; teach these parsers that relative times are values too.
_RELATIVE = re.compile(r"^-\d+(\.\d+)?[smhdw]?$")


def _relative_ok(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    p._negative_number_matcher = _RELATIVE
    return p


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    rep = subparsers.add_parser("report", help="delivery accounting, gaps, data capture")
    sub = rep.add_subparsers(dest="report_command", metavar="REPORT", required=True)
    helps = {
        "delivery": "per device and UTC hour: received, accepted, duplicates, rejected, "
                    "missing, capture (the wire contract's delivery accounting)",
        "gaps": "the gap list: missing seq ranges, rejections and reboots, with their times "
                "and causes (offline when the device reported going offline)",
        "capture": "daily data capture per device and quantity (EU Air Quality Directive "
                   "style: an hour is valid with >= 75 %% of the expected samples; 90 %% "
                   "objective)",
    }
    for name, text in helps.items():
        p = _relative_ok(sub.add_parser(name, help=text.split(":")[0], description=text))
        p.add_argument("--config", required=True, type=Path, metavar="FILE")
        p.add_argument("--since", default="-24h", metavar="T",
                       help="RFC 3339 or relative (-24h, -7d); default -24h")
        p.add_argument("--until", default="now", metavar="T", help="default now")
        p.add_argument("--device", action="append", default=[], metavar="ID")
        p.add_argument("--format", choices=["table", "csv", "json"], default=None,
                       help="default: table on a terminal, csv when piped")
        if name != "gaps":  # gaps are in the gateway's files only, never in the store
            _site_option(p)
        if name == "capture":
            p.add_argument("--domain", action="append", default=[], metavar="D",
                           help="air, light, flow ... (default: all)")
            p.add_argument("--interval", type=int, default=None, metavar="S",
                           help="sampling interval of every device (default: the "
                                "[provisioning] interval_s of each device)")
        p.set_defaults(func=_report, report=name)

    ex = _relative_ok(subparsers.add_parser(
        "export", help="readings from the store: csv, parquet or an open-data package",
        description="Readings from the configured store in long format (one row per "
                    "reading, UTC), streamed in time chunks; written to a temporary name "
                    "and renamed to --out only when complete."))
    ex.add_argument("--config", required=True, type=Path, metavar="FILE")
    ex.add_argument("--since", required=True, metavar="T", help="RFC 3339 or relative (-7d)")
    ex.add_argument("--until", required=True, metavar="T", help="RFC 3339, relative or now")
    ex.add_argument("--device", action="append", default=[], metavar="ID")
    ex.add_argument("--domain", action="append", default=[], metavar="D",
                    help="air, light, flow ... (default: all sensor domains)")
    ex.add_argument("--format", required=True, choices=["csv", "parquet", "datapackage"])
    ex.add_argument("--out", required=True, type=Path, metavar="PATH")
    _site_option(ex)
    ex.set_defaults(func=_export)


def _site_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--site", action="append", default=[], metavar="S",
                   help="this site only, from the store alone (repeatable; any config with "
                        "a [store], site not needed); rows gain a site column")


def _sites(args: argparse.Namespace) -> tuple[str, ...]:
    from gateway.stores.centre_rows import ID

    sites = tuple(dict.fromkeys(getattr(args, "site", None) or ()))
    for s in sites:
        if not ID.match(s):
            raise ExportError(f"--site {s!r} is not a site id (lowercase letters, digits, "
                              "hyphen)")
    return sites


def _range(args: argparse.Namespace) -> tuple[float, float]:
    from .timespec import parse_time

    now = time.time()
    since = parse_time(args.since, now, "--since")
    until = parse_time(args.until, now, "--until")
    if since >= until:
        raise ExportError(f"--since {args.since} is not before --until {args.until} "
                          "(times are UTC)")
    return since, until


def _report(args: argparse.Namespace) -> int:
    from gateway.accounting.read import read_gaps, read_hours

    from . import report

    sites = _sites(args)
    cfg = load_config(args.config, need_site=not sites)
    since, until = _range(args)
    if args.format is None:
        args.format = "table" if sys.stdout.isatty() else "csv"
    if sites:
        out = _across_sites(cfg, args, sites, since, until)
    elif args.report == "delivery":
        out = report.format_delivery(read_hours(cfg.buffer_file, since, until, args.device),
                                     args.format)
    elif args.report == "gaps":
        out = report.format_gaps(read_gaps(cfg.buffer_file, since, until, args.device),
                                 args.format)
    else:
        out = report.format_capture(_capture(cfg, args, since, until), args.format)
    print(out)
    return 0


def _across_sites(cfg: Config, args: argparse.Namespace, sites: tuple[str, ...], since: float,
                  until: float) -> str:
    """``report delivery|capture --site``: the store's points, no gateway's files."""
    from gateway.accounting.delivery import HOUR_S
    from gateway.stores.readers import make_centre_reader
    from protocols import DOMAINS

    from . import report

    reader = make_centre_reader(cfg)
    try:
        reader.check()
        if args.report == "delivery":
            start = int(since // HOUR_S * HOUR_S * 1000)
            rows = [r for r in reader.delivery(start, int(until * 1000), sites)
                    if not args.device or r.device in args.device]
            rows.sort(key=lambda r: (r.site, r.device, r.hour_ms))
            return report.format_site_delivery(rows, args.format)
        intervals = {(d.site, d.device): int(d.fields.get("interval_s", 0.0))
                     for d in reader.devices(sites)}

        def site_interval(site: str, device: str) -> int:
            return int(args.interval or intervals.get((site, device)) or 60)

        rows_c = report.daily_capture(reader, since, until,  # type: ignore[arg-type]
                                      args.domain or list(DOMAINS), args.device,
                                      lambda d: 60, cfg.export.chunk_s, sites, site_interval)
        return report.format_capture(rows_c, args.format, with_site=True)
    finally:
        reader.close()


def _capture(cfg: Config, args: argparse.Namespace, since: float, until: float
             ) -> list[CaptureRow]:
    from gateway.stores import make_reader
    from protocols import DOMAINS

    from .report import daily_capture

    prov = cfg.provisioning

    def interval_of(device: str) -> int:
        if args.interval:
            return int(args.interval)
        d = prov.devices.get(device)
        return d.interval_s if d is not None and d.interval_s else prov.interval_s

    reader = make_reader(cfg.store, cfg.export)
    try:
        reader.check()
        return (daily_capture(reader, since, until, args.domain or list(DOMAINS),
                                  args.device, interval_of, cfg.export.chunk_s))
    finally:
        reader.close()


def _export(args: argparse.Namespace) -> int:
    from .export import export

    sites = _sites(args)
    cfg = load_config(args.config, need_site=not sites)
    since, until = _range(args)
    stats = export(cfg, since, until, args.format, args.out, args.device, args.domain,
                   progress=sys.stderr, sites=sites)
    print(f"exported {stats.readings} readings of {len(stats.devices)} devices"
          f"{f' and {stats.delivery_rows} delivery rows' if args.format == 'datapackage' else ''}"
          f" to {args.out} in {stats.seconds:.1f} s")
    return 0
