"""One id check everywhere (issue 15): Python's `$` accepts a trailing newline, so every
id check goes through protocols/ids.py (anchored with \\Z)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from devices.inventory import Device
from gateway.stores.centre_rows import check_ids
from protocols.config import parse_config
from protocols.errors import ConfigError
from provisioning.errors import DeviceIdError
from provisioning.flash import check_device_id

ROOT = Path(__file__).resolve().parents[2]
BAD = ["air-0001\n", "air-0001\r\n", "Air-0001", "-air", "a" * 64, ""]


@pytest.mark.parametrize("bad", BAD)
def test_every_id_check_refuses(bad: str, tmp_path: Path) -> None:
    with pytest.raises(DeviceIdError):
        check_device_id(bad)
    if not re.fullmatch(r"[a-z0-9_]{1,64}", bad):  # the readers take names (domains) too
        with pytest.raises(ValueError):
            check_ids([bad])  # every id the store readers put into a query
    with pytest.raises(ValueError):
        Device(device=bad, site="lab", board="esp32")
    if bad:
        with pytest.raises(ConfigError):
            parse_config({"site": bad}, tmp_path, env={})


def test_the_console_live_status_refuses_a_newline_id(tmp_path: Path) -> None:
    from gateway.console.live import LiveStatus

    live = LiveStatus(parse_config({"site": "lab"}, tmp_path, env={}))
    assert not live.observe("livinglab/v1/lab/air-0001\n/status", b'{"state":"online"}')
    assert live.observe("livinglab/v1/lab/air-0001/status", b'{"state":"online"}')


def test_device_set_refuses_a_newline_id(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    from gateway.cli import main

    cfg = tmp_path / "c.toml"
    cfg.write_text('site = "lab"\n[gateway]\ndata_dir = "var"\n')
    assert main(["device", "set", "--config", str(cfg), "--device", "air-0001\n",
                 "--room", "r1"]) == 2
    assert "is not valid" in capsys.readouterr().err


def test_no_id_pattern_of_its_own_outside_protocols() -> None:
    own = re.compile(r"\[a-z0-9\]\[a-z0-9-\]\{0,62\}")
    offenders = []
    for pkg in ("gateway", "devices", "provisioning", "protocols"):
        for path in (ROOT / pkg).rglob("*.py"):
            rel = path.relative_to(ROOT).as_posix()
            if rel in ("protocols/ids.py", "protocols/topics.py"):
                continue
            for line in path.read_text().splitlines():
                # the forwarder's bytes regex finds a tag inside a line-protocol line
                if own.search(line) and "_DEVICE_TAG" not in line:
                    offenders.append(f"{rel}: {line.strip()}")
    assert offenders == []
