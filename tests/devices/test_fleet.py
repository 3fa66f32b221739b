"""``livinglab fleet simulate`` as a user runs it, against a real Mosquitto.

The CLI runs as a subprocess; a paho subscriber collects what the devices send
and checks it with the gateway's own validator, so a firmware or orchestration
change that breaks the wire contract fails here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from devices.fleet import Fleet, FleetEvent
from devices.fleet_errors import FleetError
from devices.fleet_monitor import Tally
from devices.fleet_plan import (
    BrokerTarget,
    DeviceSpec,
    device_config,
    parse_settings,
    plan_counts,
    plan_round_robin,
)
from protocols import validate_telemetry
from tests.servers import Mosquitto, wait_for

SITE = "bdnc-lab"
PREFIX = "livinglab/v1"


def _cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "gateway.cli", *args], capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def _write_config(tmp_path: Path, port: int) -> Path:
    cfg = tmp_path / "livinglab.toml"
    cfg.write_text(f'site = "{SITE}"\n[gateway]\ndata_dir = "var"\n'
                   f'[mqtt]\nhost = "127.0.0.1"\nport = {port}\n')
    return cfg


class Collector:
    """Every telemetry message per device, as (topic, payload, received_at)."""

    def __init__(self, port: int) -> None:
        self.lock = threading.Lock()
        self.messages: dict[str, list[tuple[str, bytes, float]]] = defaultdict(list)
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="fleet-test")
        self.client.on_message = self._on_message
        self.subscribed = threading.Event()
        self.client.on_subscribe = lambda *a: self.subscribed.set()
        self.client.connect("127.0.0.1", port)
        self.client.subscribe(f"{PREFIX}/{SITE}/+/telemetry", qos=1)
        self.client.loop_start()
        assert self.subscribed.wait(10), "collector did not get SUBACK"

    def _on_message(self, client: object, userdata: object, msg: mqtt.MQTTMessage) -> None:
        device = msg.topic.split("/")[3]
        with self.lock:
            self.messages[device].append((msg.topic, bytes(msg.payload), time.time()))

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_simulate_three_devices_publish_valid_continuous_telemetry(
        tmp_path: Path, mosquitto: Mosquitto) -> None:
    cfg = _write_config(tmp_path, mosquitto.port)
    collector = Collector(mosquitto.port)
    try:
        t0 = time.monotonic()
        res = _cli("fleet", "simulate", "--config", str(cfg), "--devices", "3",
                   "--interval", "1", "--duration", "8")
        took = time.monotonic() - t0
    finally:
        collector.close()
    assert res.returncode == 0, res.stderr
    assert took < 30, f"simulate --duration 8 took {took:.0f} s"
    started = [line for line in res.stdout.splitlines() if line.startswith("started ")]
    assert [line.split()[1] for line in started] == ["air-0001", "light-0001", "flow-0001"]
    online = {line.split()[0] for line in res.stdout.splitlines() if " online (fw " in line}
    assert online == {"air-0001", "light-0001", "flow-0001"}, res.stdout

    expected_sensors = {"air-0001": {"scd41", "bme280", "pms5003"},
                        "light-0001": {"bh1750"}, "flow-0001": {"yfs201"}}
    assert set(collector.messages) == set(expected_sensors)
    for device, msgs in collector.messages.items():
        assert len(msgs) >= 4, f"{device} sent only {len(msgs)} messages in 8 s at 1 s"
        seqs: dict[int, list[int]] = defaultdict(list)
        sensors: set[str] = set()
        for topic, payload, received in msgs:
            outcome = validate_telemetry(topic, payload, SITE, received, device)
            assert outcome.accepted is not None, outcome.rejections
            assert not outcome.rejections, outcome.rejections
            body = json.loads(payload)
            seqs[body["boot"]].append(body["seq"])
            sensors.update(s["sensor"] for s in body["samples"])
        assert len(seqs) == 1, f"{device} rebooted during the run: boots {sorted(seqs)}"
        (run,) = seqs.values()
        assert run == list(range(run[0], run[0] + len(run))), f"{device} seq not continuous: {run}"
        assert expected_sensors[device] <= sensors, (device, sensors)

    # every device process the fleet started is gone
    last = res.stdout.strip().splitlines()[-1]
    assert last.startswith("fleet stopped:"), res.stdout
    pids = [int(p) for p in last.split("pids", 1)[1].split()]
    assert len(pids) == 3
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists(), f"device pid {pid} left behind"


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_sigterm_stops_the_fleet_and_its_devices(tmp_path: Path, mosquitto: Mosquitto) -> None:
    cfg = _write_config(tmp_path, mosquitto.port)
    proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "fleet", "simulate",
                             "--config", str(cfg), "--devices", "2", "--interval", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL)
    try:
        flash = tmp_path / "var" / "fleet"
        wait_for(lambda: all("boot" in (flash / d / "device.log").read_text()
                             if (flash / d / "device.log").exists() else False
                             for d in ("air-0001", "light-0001")), 20, what="devices booted")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert proc.returncode == 0, err
    last = out.strip().splitlines()[-1]
    pids = [int(p) for p in last.split("pids", 1)[1].split()]
    assert len(pids) == 2
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists(), f"device pid {pid} left behind"


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_sigkilled_supervisor_takes_its_devices_with_it(tmp_path: Path,
                                                       mosquitto: Mosquitto) -> None:
    cfg = _write_config(tmp_path, mosquitto.port)
    out = tmp_path / "out.txt"
    with open(out, "w") as f:
        proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "fleet", "simulate",
                                 "--config", str(cfg), "--devices", "2", "--interval", "1"],
                                stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        def started() -> list[int]:
            pids = [int(line.rsplit(" ", 1)[1]) for line in out.read_text().splitlines()
                    if line.startswith("started ")]
            return pids if len(pids) == 2 else []

        pids = wait_for(started, 20, what="two devices started")
    finally:
        proc.kill()
        proc.wait(10)
    # no finally of the supervisor ran: the kernel's parent-death signal stops them
    try:
        wait_for(lambda: not any(Path(f"/proc/{p}").exists() for p in pids), 10,
                 what=f"devices {pids} gone after their supervisor was SIGKILLed")
    finally:
        for pid in pids:  # never leak a device from a failing test
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_missing_config_is_one_line_error_exit_2() -> None:
    res = _cli("fleet", "simulate", "--config", "/nonexistent", "--devices", "3")
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("livinglab: "), res.stderr
    assert "/nonexistent" in lines[0]


def test_unreachable_broker_is_one_line_error(tmp_path: Path) -> None:
    from tests.servers import free_port

    cfg = _write_config(tmp_path, free_port())
    res = _cli("fleet", "simulate", "--config", str(cfg), "--devices", "1", "--duration", "2")
    assert res.returncode == 2
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("livinglab: MQTT broker"), res.stderr
    assert "unreachable" in lines[0]


def test_bad_fleet_key_names_the_key(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'site = "{SITE}"\n[fleet]\nheapsise = "1m"\n')
    res = _cli("fleet", "simulate", "--config", str(cfg), "--devices", "1")
    assert res.returncode == 2
    assert res.stderr.strip() == (
        "livinglab: config key 'fleet.heapsise': Extra inputs are not permitted")


def test_round_robin_plan_spreads_kinds_and_numbers_them() -> None:
    ids = [s.device for s in plan_round_robin(7)]
    assert ids == ["air-0001", "light-0001", "flow-0001", "air-0002", "light-0002",
                   "flow-0002", "air-0003"]
    seeds = [s.seed for s in plan_round_robin(4, seed=10)]
    assert seeds == [10, 11, 12, 13]
    with pytest.raises(FleetError):
        plan_round_robin(0)


def test_plan_counts_and_device_config() -> None:
    specs = plan_counts({"air": 2, "light": 1, "flow": 1})
    assert [s.device for s in specs] == ["air-0001", "air-0002", "light-0001", "flow-0001"]
    cfg = device_config(DeviceSpec(device="flow-0003", kind="flow", seed=5), site="lab",
                        broker=BrokerTarget(host="h", port=1884, username="u", password="p"),
                        interval_s=2, profile="office")
    assert cfg["device"] == "flow-0003" and cfg["site"] == "lab" and cfg["board"] == "unix"
    assert cfg["mqtt"] == {"host": "h", "port": 1884, "username": "u", "password": "p",
                           "keepalive": 60}
    assert cfg["sensors"] == [{"kind": "yfs201"}]
    assert cfg["interval_s"] == 2 and cfg["sim"] == {"seed": 5, "profile": "office"}
    assert parse_settings({}).heapsize == "256k"


def test_tally_counts_gaps_reboots_and_rejections() -> None:
    t = Tally(PREFIX, SITE)
    base = f"{PREFIX}/{SITE}/air-0001/"

    def tele(boot: int, seq: int) -> bytes:
        return json.dumps({"v": 1, "device": "air-0001", "boot": boot, "seq": seq, "samples": [
            {"sensor": "scd41", "ts": 1.0e9, "values": {"co2": 600 + seq}}]}).encode()

    for seq in (0, 1, 4):
        t.observe(base + "telemetry", tele(7, seq), now=100.0)
    t.observe(base + "telemetry", tele(8, 0), now=101.0)
    changes: list[tuple[str, str]] = []
    t.on_state = lambda dev, status: changes.append((dev, status["state"]))
    t.observe(base + "status", b'{"state":"offline"}', retained=True)  # old news: not reported
    t.observe(base + "status", b'{"state":"online"}')
    t.observe(base + "status", b'{"state":"online"}')  # no change: not reported
    t.observe(base + "telemetry", b"not json")
    t.observe(f"{PREFIX}/{SITE}/_gateway/gw-01/rejected", b"{}")
    t.observe(f"{PREFIX}/other-site/air-0002/telemetry", tele(1, 0))
    seen = t.devices["air-0001"]
    assert (seen.messages, seen.seq_gaps, seen.boots) == (4, 2, 2)
    assert seen.values == {"co2": 600.0} and seen.last_seen == 101.0
    assert seen.state == "online" and seen.kind == "air"
    assert changes == [("air-0001", "online")]
    assert (t.rejected, t.malformed, t.total()) == (1, 1, 4)
    assert "air-0002" not in t.devices


class CrashingFirmware:
    """A firmware whose main.py dies at once: exercises report + restart + stop."""

    FW_VERSION = "0"

    def __init__(self, root: Path) -> None:
        self.main = root / "crash_main.py"
        self.main.write_text("import sys\nprint('boom: sensor bus stuck')\nsys.exit(3)\n")

    def board_files(self, board: str) -> list[tuple[Path, str]]:
        return [(self.main, "main.py")]

    def write_device_config(self, dest_dir: Path, cfg: dict[str, object]) -> Path:
        path = dest_dir / "device.json"
        path.write_text(json.dumps(cfg))
        return path

    def micropython_binary(self) -> str:
        return "micropython"


@pytest.mark.timeout(30)
def test_crashing_device_is_reported_restarted_with_backoff_and_stopped(tmp_path: Path) -> None:
    events: list[FleetEvent] = []
    specs = plan_round_robin(1)
    target = BrokerTarget(host="127.0.0.1", port=1)
    fleet = Fleet(specs, tmp_path / "fleet",
                  lambda s: device_config(s, site=SITE, broker=target, interval_s=1,
                                          profile="office"),
                  restart=True, max_backoff_s=0.2, on_event=events.append,
                  firmware=CrashingFirmware(tmp_path))
    fleet.prepare()

    async def scenario() -> None:
        await fleet.start()
        end = time.monotonic() + 15
        while fleet.restarts() < 3 and time.monotonic() < end:
            await asyncio.sleep(0.05)
        await fleet.stop()

    asyncio.run(scenario())
    assert fleet.restarts() >= 3
    exited = [e.text for e in events if e.kind == "exited"]
    assert exited[0] == "air-0001 exited with code 3: boom: sensor bus stuck"
    assert any(e.kind == "restarting" for e in events)
    assert len(fleet.pids) >= 3
    for pid in fleet.pids:
        assert not Path(f"/proc/{pid}").exists(), f"device pid {pid} left behind"
