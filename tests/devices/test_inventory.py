"""The SQLite inventory: rows round-trip, retire keeps the record, concurrent writers."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

import pytest

from devices.errors import DeviceNotFoundError
from devices.inventory import Device, Inventory, SensorSpec


def test_upsert_get_list_retire(tmp_path: Path) -> None:
    with Inventory(tmp_path / "inv.sqlite") as inv:
        dev = Device(device="air-0001", site="lab", board="pico_w",
                     sensors=(SensorSpec(kind="scd41", bus="i2c0", address=0x62),
                              SensorSpec(kind="pms5003", uart=1)),
                     location="room 1", fw_version="0.1.0", fw_hash="ab",
                     credential_ref="broker/secrets/air-0001.json")
        inv.upsert(dev)
        inv.upsert(Device(device="air-0000", site="lab", board="esp32"))
        assert inv.get("air-0001") == dev
        assert [d.device for d in inv.list()] == ["air-0000", "air-0001"]
        retired = inv.retire("air-0000", now=123.0)
        assert retired.retired and retired.retired_at == 123.0
        assert [d.device for d in inv.list(include_retired=False)] == ["air-0001"]
        assert len(inv.list()) == 2
        with pytest.raises(DeviceNotFoundError, match="air-9"):
            inv.retire("air-9")
        with pytest.raises(DeviceNotFoundError):
            inv.get("air-9")
    # durable: a new connection sees the same rows
    with Inventory(tmp_path / "inv.sqlite") as again:
        assert again.get("air-0001").sensors[1].uart == 1


def test_reprovisioning_unretires(tmp_path: Path) -> None:
    with Inventory(tmp_path / "inv.sqlite") as inv:
        inv.upsert(Device(device="a-1", site="lab", board="unix"))
        inv.retire("a-1")
        inv.upsert(Device(device="a-1", site="lab", board="unix"))
        assert not inv.get("a-1").retired


def test_seen_is_recorded(tmp_path: Path) -> None:
    with Inventory(tmp_path / "inv.sqlite") as inv:
        inv.record_seen("a-1", "online", 10.0)
        inv.record_seen("a-1", "online", 20.0)
        assert inv.seen() == {"a-1": ("online", 20.0)}


def _add_many(path: str, prefix: str, n: int) -> None:
    with Inventory(Path(path)) as inv:
        for i in range(n):
            inv.upsert(Device(device=f"{prefix}-{i}", site="lab", board="unix"))


def test_concurrent_processes_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "inv.sqlite"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_add_many, args=(str(path), f"p{k}", 25)) for k in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    with Inventory(path) as inv:
        assert len(inv.list()) == 50


def test_concurrent_threads_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "inv.sqlite"
    Inventory(path).close()
    threads = [threading.Thread(target=_add_many, args=(str(path), f"t{k}", 30))
               for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    with Inventory(path) as inv:
        assert {d.device for d in inv.list()} == {f"t{k}-{i}" for k in range(4)
                                                  for i in range(30)}
