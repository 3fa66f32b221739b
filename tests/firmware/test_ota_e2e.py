"""Over-the-air updates end to end: `livinglab fleet simulate` (the real firmware under
the MicroPython unix port, in a Pico W sized heap) against a real Mosquitto, updated
with `livinglab fleet update` and with hand-made bad updates."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import firmware
from devices.ota_pack import control_message, pack
from devices.ota_rollout import Broker, Outcome, PackServer, Target, update_one_wave
from provisioning import otakey
from tests.firmware.device import PREFIX, SITE, Observer
from tests.servers import Mosquitto, stop_pid, wait_for

DEVICES = ["air-0001", "light-0001", "flow-0001", "air-0002", "light-0002"]


def _cli(cfg: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway.cli", *args, "--config", str(cfg)],
                          capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def _boots(obs: Observer, device: str) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for t in obs.telemetry(device):
        out.setdefault(t["boot"], []).append(t["seq"])
    return out


def _published(obs: Observer, device: str, boot: int, n: int) -> Callable[[], bool]:
    """A ``wait_for`` condition: ``device`` sent at least ``n`` messages in ``boot``."""
    return lambda: len(_boots(obs, device).get(boot, [])) >= n


def publishing_from_zero(obs: Observer, device: str, boot: int) -> None:
    """The device runs boot ``boot`` and numbers its telemetry from 0 without gaps."""
    wait_for(lambda: len(_boots(obs, device).get(boot, [])) >= 3, 30,
             what=f"{device} telemetry of boot {boot}")
    seqs = sorted(_boots(obs, device)[boot])
    assert seqs == list(range(len(seqs))), (device, boot, seqs)


def last_status(obs: Observer, device: str) -> dict[str, Any]:
    return obs.of(device, "status")[-1].json()  # type: ignore[no-any-return]


@pytest.fixture
def fleet(tmp_path: Path, mosquitto: Mosquitto) -> Iterator[tuple[Path, Observer]]:
    cfg = tmp_path / "livinglab.toml"
    cfg.write_text(f'site = "{SITE}"\n[gateway]\ndata_dir = "var"\n'
                   f'[mqtt]\nhost = "127.0.0.1"\nport = {mosquitto.port}\n'
                   '[fleet]\nheapsize = "160k"\nota_confirm_after_s = 2\n')
    env = dict(os.environ, LIVINGLAB_WDT_MS="1500")
    with Observer(mosquitto.port, "ota-e2e") as obs:
        proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "fleet", "simulate",
                                 "--config", str(cfg), "--devices", "5", "--interval", "1"],
                                cwd=tmp_path, env=env, stdout=open(tmp_path / "sim.log", "w"),
                                stderr=subprocess.STDOUT, start_new_session=True)
        try:
            for d in DEVICES:
                wait_for(_published(obs, d, 1, 2), 30,
                         what=f"{d} publishing")
            yield cfg, obs
        finally:
            os.kill(proc.pid, signal.SIGTERM)
            try:
                proc.wait(20)
            except subprocess.TimeoutExpired:
                stop_pid(proc.pid)


def _one(cfg: Path, tmp: Path, device: str, version: str, source: Path = firmware.FIRMWARE_DIR,
         key: str | None = None, tamper: bool = False) -> Outcome:
    """Send one hand-made update to ``device`` and wait for its outcome."""
    secrets_dir = cfg.parent / "var" / "broker" / "secrets"
    folder = tmp / f"pack-{version}-{secrets.token_hex(2)}"
    bp = pack(version, "unix", folder, source)
    if tamper:  # one bit flipped in a file after the manifest was made
        target = bp.folder / "ll" / "app.py"
        data = bytearray(target.read_bytes())
        data[10] ^= 1
        target.write_bytes(bytes(data))
    port = int(cfg.read_text().split("port = ")[1].split()[0])
    broker = Broker("127.0.0.1", port, "", "", PREFIX, SITE)
    server = PackServer(folder, "127.0.0.1", 0, "127.0.0.1")
    try:
        broker.seen_devices(0.5)
        real_key = otakey.load(secrets_dir, device)
        (out,) = update_one_wave(broker, [Target(device, "unix", key or real_key)], version,
                                 {"unix": bp}, server.url, 60)
        return out
    finally:
        server.close()
        broker.close()


def _replay(cfg: Path, tmp: Path, device: str, version: str) -> str:
    """What an attacker with write access to the topic can do: send a valid, signed
    control message of a version that is not newer; returns the refusal reason."""
    secrets_dir = cfg.parent / "var" / "broker" / "secrets"
    bp = pack(version, "unix", tmp / f"replay-{version}")
    key = otakey.load(secrets_dir, device)
    assert key is not None
    port = int(cfg.read_text().split("port = ")[1].split()[0])
    broker = Broker("127.0.0.1", port, "", "", PREFIX, SITE)
    try:
        since = time.monotonic()
        broker.publish_update(device, control_message(version, "http://127.0.0.1:9/", key,
                                                      bp.manifest))

        def refused() -> str:
            st = broker.latest(device, since) or {}
            u = st.get("update") or {}
            ours = u.get("state") == "refused" and u.get("version") == version
            return str(u.get("reason", "")) if ours else ""

        return wait_for(refused, 20, what=f"{device} refusing a replay")
    finally:
        broker.close()


def _broken_source(tmp: Path, name: str, line: str) -> Path:
    src = tmp / name
    shutil.copytree(firmware.FIRMWARE_DIR, src, ignore=shutil.ignore_patterns("__pycache__"))
    app = src / "ll" / "app.py"
    app.write_text(app.read_text().replace("_BOOT_FILE = ", line + "\n_BOOT_FILE = ", 1))
    return src


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_fleet_update_in_waves_then_bad_updates(fleet: tuple[Path, Observer],
                                                tmp_path: Path) -> None:
    cfg, obs = fleet
    # 1. the whole fleet, two at a time
    res = _cli(cfg, "fleet", "update", "--version", "0.2.0", "--all", "--wave", "2",
               "--timeout", "60")
    assert res.returncode == 0, res.stdout + res.stderr
    lines = [ln for ln in res.stdout.splitlines() if ln.split(":")[0] in DEVICES]
    assert len(lines) == 5 and all("ok 0.2.0 confirmed" in ln for ln in lines), res.stdout
    assert res.stdout.strip().endswith("5/5 devices on 0.2.0")
    for d in DEVICES:
        st = last_status(obs, d)
        assert st["fw"] == "0.2.0" and st["update"]["state"] == "confirmed", st
        publishing_from_zero(obs, d, 2)
    # running it again changes nothing and says so
    again = _cli(cfg, "fleet", "update", "--version", "0.2.0", "--device", "air-0001")
    assert again.returncode == 0 and "already running" in again.stdout, again.stdout

    dev = "flow-0001"
    # 2. refused: wrong key, a tampered file, a replayed (not newer) manifest
    out = _one(cfg, tmp_path, dev, "0.3.0", key=secrets.token_hex(32))
    assert not out.ok and "refused 0.3.0: manifest not authenticated" in out.text, out
    out = _one(cfg, tmp_path, dev, "0.3.0", tamper=True)
    assert not out.ok and "refused 0.3.0: ll/app.py: sha256 mismatch" in out.text, out
    assert _replay(cfg, tmp_path, dev, "0.2.0") == "version 0.2.0 is not newer than 0.2.0"
    assert _replay(cfg, tmp_path, dev, "0.1.10") == "version 0.1.10 is not newer than 0.2.0"
    assert last_status(obs, dev)["fw"] == "0.2.0"
    publishing_from_zero(obs, dev, 2)  # refusals do not reboot

    # 3. a build that raises at import: rolled back by itself
    crash = _broken_source(tmp_path, "crash", 'raise RuntimeError("broken build")')
    out = _one(cfg, tmp_path, dev, "0.3.0", source=crash)
    assert not out.ok and out.text.startswith("rolled_back 0.3.0"), out
    assert "RuntimeError" in out.text and "(running 0.2.0)" in out.text, out
    boot = last_status(obs, dev)["boot"]
    publishing_from_zero(obs, dev, boot)

    # 4. a build that hangs: the watchdog resets it, then it is rolled back
    hang = _broken_source(tmp_path, "hang", "while True:\n    pass")
    out = _one(cfg, tmp_path, dev, "0.4.0", source=hang)
    assert not out.ok and out.text.startswith("rolled_back 0.4.0"), out
    assert "hang, watchdog" in out.text and "(running 0.2.0)" in out.text, out
    log = (cfg.parent / "var" / "fleet" / dev / "device.log").read_text()
    assert log.count("loader: watchdog expired") == 3, log[-3000:]  # MAX_TRIES resets
    boot = last_status(obs, dev)["boot"]
    publishing_from_zero(obs, dev, boot)
    # the others never stopped
    for d in DEVICES[:2]:
        wait_for(_published(obs, d, 2, 20), 30, what=f"{d} still on")
