"""The firmware end to end: MicroPython unix port + simulated sensors + real Mosquitto."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from tests.firmware.contract import check_telemetry
from tests.firmware.device import PREFIX, SITE, Device, Observer, device_config, make_device
from tests.servers import Mosquitto, wait_for

DEV = "air-0001"


def seqs(tele: list[dict[str, Any]], boot: int) -> list[int]:
    return [t["seq"] for t in tele if t["boot"] == boot]


def contiguous(values: list[int]) -> bool:
    got = sorted(set(values))
    return got == list(range(got[0], got[-1] + 1)) if got else False


def assert_valid(obs: Observer, device: str = DEV) -> None:
    for m in obs.of(device, "telemetry"):
        assert check_telemetry(m, device) == [], m.payload


def sample_times(tele: list[dict[str, Any]]) -> list[float]:
    return [s["ts"] for t in sorted(tele, key=lambda t: t["seq"]) for s in t["samples"][:1]]


@pytest.fixture
def device(micropython: str, tmp_path: Path, broker: Mosquitto) -> Any:
    made: list[Device] = []

    def make(speed: float = 5.0, **over: Any) -> Device:
        cfg = device_config(DEV, broker.port, **{"interval_s": 1, **over})
        d = make_device(micropython, tmp_path / f"flash{len(made)}", cfg, speed)
        made.append(d)
        return d

    yield make
    for d in made:
        d.stop()


@pytest.mark.timeout(60)
def test_birth_telemetry_and_last_will(device: Any, broker: Mosquitto) -> None:
    with Observer(broker.port) as obs:
        dev = device()
        dev.start()
        wait_for(lambda: len(obs.telemetry(DEV)) >= 6, 20, what="6 telemetry messages")
        birth = obs.of(DEV, "status")[0].json()
        assert birth["state"] == "online"
        assert birth["fw"] == "0.1.0" and birth["board"] == "unix"
        for k in ("boot", "rssi", "heap_free", "uptime", "dropped", "ip"):
            assert k in birth, k
        tele = obs.telemetry(DEV)
        assert {t["boot"] for t in tele} == {birth["boot"]}
        assert seqs(tele, birth["boot"])[:6] == list(range(6))
        times = sample_times(tele)
        assert times == sorted(times) and len(set(times)) == len(times)
        assert_valid(obs)
        dev.kill()
        wait_for(lambda: obs.of(DEV, "status")[-1].json() == {"state": "offline"}, 10,
                 what="last will")
    # the will is retained: a new subscriber sees it
    with Observer(broker.port, "late-joiner") as late:
        wait_for(lambda: late.of(DEV, "status"), 5, what="retained status")
        assert late.of(DEV, "status")[-1].retain
        assert late.of(DEV, "status")[-1].json() == {"state": "offline"}


@pytest.mark.timeout(60)
def test_retained_config_changes_interval_live(device: Any, broker: Mosquitto) -> None:
    with Observer(broker.port) as obs:
        dev = device(speed=10.0, interval_s=30)  # one message per 3 s of wall time
        dev.start()
        wait_for(lambda: obs.telemetry(DEV), 15, what="first telemetry")
        t0 = time.monotonic()
        obs.publish(f"{PREFIX}/{SITE}/{DEV}/config", '{"interval_s": 1, "future_key": 5}')
        wait_for(lambda: len(obs.telemetry(DEV)) >= 11, 10, what="faster telemetry")
        assert time.monotonic() - t0 < 3.0  # 10 messages at 0.1 s instead of 30 s
        assert contiguous([t["seq"] for t in obs.telemetry(DEV)])
        assert_valid(obs)


@pytest.mark.timeout(60)
def test_reboot_new_boot_seq_restarts(device: Any, broker: Mosquitto) -> None:
    with Observer(broker.port) as obs:
        dev = device()
        dev.start()
        wait_for(lambda: len(obs.telemetry(DEV)) >= 3, 20, what="telemetry")
        dev.kill()
        first_boot = obs.telemetry(DEV)[0]["boot"]
        dev.start()
        wait_for(lambda: len(seqs(obs.telemetry(DEV), first_boot + 1)) >= 3, 20,
                 what="telemetry after reboot")
        assert seqs(obs.telemetry(DEV), first_boot + 1)[:3] == [0, 1, 2]
        births = [m.json() for m in obs.of(DEV, "status") if m.json()["state"] == "online"]
        assert births[-1]["boot"] == first_boot + 1
        assert_valid(obs)


def outage(device: Any, broker: Mosquitto, seconds: float, speed: float) -> None:
    with Observer(broker.port) as obs:
        dev = device(speed=speed)
        dev.start()
        wait_for(lambda: len(obs.telemetry(DEV)) >= 3, 20, what="telemetry before outage")
        broker.stop()
        down = time.time()
        time.sleep(seconds)  # the outage itself: nothing to wait for
        assert dev.alive()
        broker.start()
        up = time.time()
        boot = obs.telemetry(DEV)[0]["boot"]

        def caught_up() -> bool:
            s = seqs(obs.telemetry(DEV), boot)
            return len(s) > 0 and max(s) > 3 + seconds * speed * 0.8 and contiguous(s)

        try:
            # the device's reconnect backoff is capped at 30 s (divided by the sim speed)
            wait_for(caught_up, 20 + 35 / speed, what="every sample after the outage")
        except TimeoutError:
            got = seqs(obs.telemetry(DEV), boot)
            missing = sorted(set(range(max(got) + 1)) - set(got)) if got else "all"
            raise AssertionError(f"missing seqs {missing} of {len(got)}; device log: "
                                 f"{dev.stderr()[-500:]}") from None
        tele = {t["seq"]: t for t in obs.telemetry(DEV)}
        during = [t for t in tele.values() if down < t["samples"][0]["ts"] < up]
        assert len(during) >= seconds * speed * 0.7, "samples taken during the outage"
        # the outage samples arrive oldest first, with their original sample times
        order = [t["seq"] for t in obs.telemetry(DEV)]
        replay = [s for s in order if tele[s] in during]
        assert replay == sorted(replay)
        times = [tele[s]["samples"][0]["ts"] for s in sorted(tele)]
        assert times == sorted(times)
        assert_valid(obs)


@pytest.mark.timeout(90)
def test_short_broker_outage_replayed_in_order(device: Any, broker: Mosquitto) -> None:
    outage(device, broker, 3.0, speed=5.0)


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_broker_outage_30s_replayed_in_order(device: Any, broker: Mosquitto) -> None:
    outage(device, broker, 30.0, speed=1.0)


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_outbox_file_survives_a_reboot(device: Any, broker: Mosquitto) -> None:
    with Observer(broker.port) as obs:
        dev = device(speed=5.0)
        dev.start()
        wait_for(lambda: len(obs.telemetry(DEV)) >= 2, 20, what="telemetry")
        boot = obs.telemetry(DEV)[0]["boot"]
        broker.stop()
        outbox = dev.flash / "outbox.dat"
        # 8 records fill RAM, the rest go to the file: wait for a few file records
        wait_for(lambda: outbox.exists() and outbox.stat().st_size > 3000, 20,
                 what="records spilled to the outbox file")
        dev.kill()  # power cut while offline: RAM records are lost, the file is not
        dev.start()
        broker.start()
        wait_for(lambda: len(seqs(obs.telemetry(DEV), boot + 1)) >= 3, 30,
                 what="telemetry of the next boot")
        old = seqs(obs.telemetry(DEV), boot)
        # the file's records (after the 8 RAM ones) arrive, in order, before new ones
        replayed = [s for s in old if s >= 10]
        assert len(replayed) >= 3, old
        assert replayed == sorted(replayed) and contiguous(replayed)
        order = [(t["boot"], t["seq"]) for t in obs.telemetry(DEV)]
        assert order.index((boot, replayed[-1])) < order.index((boot + 1, 0))
        assert_valid(obs)
