"""Report formats (the contract's JSON exactly) and the daily data-capture rule."""

from __future__ import annotations

import json
from collections.abc import Sequence

from gateway.accounting.delivery import Gap, HourRow
from gateway.opendata.report import daily_capture, format_capture, format_delivery, format_gaps
from gateway.stores import Reading

H = 1_764_028_800  # 2025-11-25T00:00:00Z


def test_delivery_json_csv_table() -> None:
    rows = [HourRow("air-1", H, 12, 8, 2, 1, 1), HourRow("air-2", H + 3600, 0, 0, 0, 0, 0)]
    js = json.loads(format_delivery(rows, "json"))
    assert js[0] == {"device": "air-1", "hour": "2025-11-25T00:00:00Z", "received": 12,
                     "accepted": 8, "duplicates": 2, "rejected": 1, "missing": 1,
                     "capture": 0.8}
    assert js[1]["capture"] == 1.0
    csv = format_delivery(rows, "csv").splitlines()
    assert csv[0] == "device,hour,received,accepted,duplicates,rejected,missing,capture"
    assert csv[1] == "air-1,2025-11-25T00:00:00Z,12,8,2,1,1,0.8"
    table = format_delivery(rows, "table")
    assert "CAPTURE" in table and "80.0%" in table
    assert format_delivery([], "table") == "no delivery records in this range"
    gaps = json.loads(format_gaps([Gap("air-1", 2, -1, -1, H, H + 5, "reboot"),
                                   Gap("air-1", 1, 3, 4, H, H + 9, "unknown")], "json"))
    assert gaps[0]["seq_from"] is None and gaps[1]["messages"] == 2


def test_daily_capture_75_percent_hours_and_90_percent_objective() -> None:
    # interval 60 s: 60 samples expected per hour, an hour is valid with >= 45
    per_hour = {h: 60 for h in range(24)}
    per_hour[3] = 45  # valid, just
    per_hour[4] = 44  # not valid
    per_hour[5] = 0
    per_hour[6] = 10

    class R:
        def check(self) -> None: ...

        def close(self) -> None: ...

        def window(self, a: int, b: int, d: Sequence[str], v: Sequence[str],
                   sites: Sequence[str] = ()) -> list[Reading]:
            out = []
            for h, n in per_hour.items():
                t0 = (H + h * 3600) * 1000
                out += [Reading(t0 + i * 60_000, "s", "air-1", "scd41", "air", "co2", 1.0)
                        for i in range(n) if a <= t0 + i * 60_000 < b]
            return out

    rows = daily_capture(R(), H, H + 86400, ["air"], [], lambda d: 60, 3600)
    assert len(rows) == 1
    r = rows[0]
    assert (r.day, r.hours, r.valid_hours) == ("2025-11-25", 24, 21)
    js = json.loads(format_capture(rows, "json"))[0]
    assert js["capture"] == 0.875 and js["day_valid"] is True and js["meets_90"] is False
