"""The state: transitions, the payload Alertmanager gets, and the file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.alerts.errors import StateFileError
from gateway.alerts.model import Alert, Memory
from gateway.alerts.state import AlertState, advance, delivered, load_state, payloads, save_state

NOW = 1_800_000_000_000


def alert(device: str, since: int | None = None) -> Alert:
    return Alert({"alertname": "DeviceSilent", "severity": "warning", "site": "s",
                  "device": device}, f"{device} is silent", since)


def test_starts_at_kept_while_firing_and_resolution_queued() -> None:
    s1 = advance(AlertState(), [alert("a", NOW - 5000), alert("b")], Memory(), NOW)
    assert {t.starts_ms for t in s1.active.values()} == {NOW - 5000, NOW}
    s2 = advance(s1, [alert("a", NOW + 999)], Memory(), NOW + 30_000)
    assert [t.starts_ms for t in s2.active.values()] == [NOW - 5000]  # kept, hint ignored
    assert [(t.labels["device"], t.ends_ms) for t in s2.outbox.values()] == [("b", NOW + 30_000)]
    # not delivered: the resolution stays queued through more cycles
    s3 = advance(s2, [alert("a")], Memory(), NOW + 60_000)
    assert [t.ends_ms for t in s3.outbox.values()] == [NOW + 30_000]
    assert delivered(s3).outbox == {}


def test_future_hint_is_clamped() -> None:
    s = advance(AlertState(), [alert("a", NOW + 10_000)], Memory(), NOW)
    assert next(iter(s.active.values())).starts_ms == NOW


def test_payload_is_alertmanager_v2() -> None:
    s = advance(AlertState(), [alert("a", NOW - 1000), alert("b")], Memory(), NOW)
    s = advance(s, [alert("a")], Memory(), NOW + 30_000)
    body = payloads(s, NOW + 30_000, 30.0)
    assert body[0]["labels"]["device"] == "b"  # the resolution goes first
    assert body[0]["endsAt"] == "2027-01-15T08:00:30.000Z"
    assert body[1] == {
        "labels": {"alertname": "DeviceSilent", "severity": "warning", "site": "s",
                   "device": "a"},
        "annotations": {"summary": "a is silent",
                        "runbook_url": "https://livinglab.example.org/docs/alerts.md"
                                       "#devicesilent"},
        "startsAt": "2027-01-15T07:59:59.000Z",
        "endsAt": "2027-01-15T08:02:30.000Z",  # now + 4 x interval_s
    }


def test_file_round_trip_and_atomic(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "alerts.json"
    assert load_state(path) == AlertState()
    s = advance(AlertState(), [alert("a", NOW - 1000), alert("b")],
                Memory({"s/x": NOW}, {"s/y": ("1.2", "refused", NOW - 7)}), NOW)
    s = advance(s, [alert("a")], s.memory, NOW + 1)
    save_state(path, s)
    assert load_state(path) == s
    assert not (tmp_path / "sub" / "alerts.json.tmp").exists()
    assert json.loads(path.read_text())["version"] == 1


@pytest.mark.parametrize("body", ["{", "[]", '{"version": 9}', '{"version": 1, "active": 3}'])
def test_bad_state_file_is_one_line(tmp_path: Path, body: str) -> None:
    path = tmp_path / "alerts.json"
    path.write_text(body)
    with pytest.raises(StateFileError, match="move it aside"):
        load_state(path)
