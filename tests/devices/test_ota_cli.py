"""`livinglab fleet update` without devices: packing, signing, one-line errors."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
from pathlib import Path

import pytest

import firmware
from devices.ota_pack import MAGIC, OtaError, control_message, pack, version_tuple
from tests.servers import free_port


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway.cli", "fleet", "update", *args],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)


def test_versions_compare_as_numbers() -> None:
    assert version_tuple("0.10.0") > version_tuple("0.9.9")
    for bad in ("", "v1", "1..2", "1.2.3.4.5", "1.2-rc1"):
        with pytest.raises(OtaError, match="not valid"):
            version_tuple(bad)


def test_pack_lists_every_slot_file_with_size_and_hash(tmp_path: Path) -> None:
    bp = pack("1.2.3", "pico_w", tmp_path)
    lines = bp.manifest.decode().splitlines()
    assert lines[:3] == [MAGIC, "version 1.2.3", "board pico_w"]
    rows = [ln.split() for ln in lines[3:]]
    assert [r[2] for r in rows] == [d for _, d in firmware.slot_files("pico_w")]
    for digest, size, path in rows:
        data = (bp.folder / path).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest and len(data) == int(size)
    assert b'FW_VERSION = "1.2.3"' in (bp.folder / "ll" / "version.py").read_bytes()
    assert (bp.folder / "ota.manifest").read_bytes() == bp.manifest
    assert not any(p.startswith("ll/sim/") for _, _, p in rows)


def test_control_message_is_small_and_signed_per_device(tmp_path: Path) -> None:
    bp = pack("1.2.3", "unix", tmp_path)
    k1, k2 = "11" * 32, "22" * 32
    m1 = control_message("1.2.3", "http://10.0.0.2:8123/1.2.3/unix/", k1, bp.manifest)
    m2 = control_message("1.2.3", "http://10.0.0.2:8123/1.2.3/unix/", k2, bp.manifest)
    assert len(m1) <= 600  # what the device takes
    d1 = json.loads(m1)
    assert d1["mac"] == hmac.new(bytes.fromhex(k1), bp.manifest, hashlib.sha256).hexdigest()
    assert d1["mac"] != json.loads(m2)["mac"]
    assert k1 not in m1.decode()


def test_bad_version_is_one_line_error(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text('site = "lab"\n')
    res = _cli("--config", str(cfg), "--version", "latest", "--all")
    assert res.returncode != 0
    assert res.stderr.strip().splitlines()[-1].startswith("livinglab: version 'latest'")
    assert "Traceback" not in res.stderr


def test_unreachable_broker_is_one_line_error(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'site = "lab"\n[gateway]\ndata_dir = "{tmp_path}/var"\n'
                   f'[mqtt]\nhost = "127.0.0.1"\nport = {free_port()}\n')
    res = _cli("--config", str(cfg), "--version", "0.2.0", "--device", "air-0001")
    assert res.returncode != 0 and "Traceback" not in res.stderr
    last = res.stderr.strip().splitlines()[-1]
    assert last.startswith("livinglab: broker 127.0.0.1:") and "unreachable" in last, last
