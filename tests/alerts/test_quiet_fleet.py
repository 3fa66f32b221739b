"""No false alarms: ten minutes of a healthy fleet with natural noise, written into a
real SQLite store step by step and evaluated every 30 s, fire nothing; nor does a
board that reboots once."""

from __future__ import annotations

import random
from pathlib import Path

from gateway.alerts.engine import Engine
from gateway.alerts.state import AlertState
from gateway.stores.readers import make_centre_reader

from .scene import S, Scene, centre_config, load, now_ms

MIN = 60 * S
DAY = 86_400 * S


def test_ten_noisy_minutes_fire_nothing(tmp_path: Path) -> None:
    rng = random.Random(19)
    path = centre_config(tmp_path, extra=(
        '[[alerts.threshold]]\nname = "Co2High"\nquantity = "co2"\nabove = 1500.0\n'
        'for_s = 300\nhysteresis = 100.0\n'
        '[[alerts.threshold]]\nname = "TooCold"\nquantity = "temperature"\nbelow = 16.0\n'
        'for_s = 600\n'))
    cfg = load(path)
    start = now_ms() - 11 * MIN
    sites = {"s1": [f"air-{i:04d}" for i in range(30)], "s2": [f"air-{i:04d}" for i in range(30)]}
    # history before the ten minutes: stations, a status each, yesterday's delivery
    sc = Scene()
    day = start // DAY * DAY - DAY
    for site, devs in sites.items():
        for d in devs:
            sc.station(site, d, start - 30 * DAY)
            sc.status(site, d, start - rng.randrange(0, 240) * S, uptime=8e4)
            sc.reading(site, d, start - rng.randrange(0, 60) * S)  # the minute before
            for h in range(24):
                sc.delivery(site, d, day + h * 3600 * S, accepted=60 - rng.randrange(0, 3),
                            missing=rng.randrange(0, 2))
    sc.write(cfg)
    co2 = {(s, d): rng.uniform(500, 900) for s, devs in sites.items() for d in devs}
    phase = {(s, d): rng.randrange(0, 60) * S for s, devs in sites.items() for d in devs}
    # each message of a device: up to 3 s late or early; 3% never arrive
    jitter = {key: [rng.randrange(-3000, 3000) for _ in range(20)] for key in phase}
    lost = {key: [rng.random() < 0.03 for _ in range(20)] for key in phase}
    reboot = ("s1", "air-0007")
    reader = make_centre_reader(cfg)
    eng = Engine(reader, cfg.alerts, AlertState())
    fired: list[str] = []
    states: set[str] = set()
    try:
        t = start
        step = 30 * S
        while t < start + 10 * MIN:
            sc = Scene()
            for site in sites:  # health every 30 s, a little late sometimes
                sc.gateway(site, t + rng.randrange(0, 3000), buffer_oldest_s=rng.uniform(0, 5),
                           buffer_points=float(rng.randrange(0, 40)),
                           disk_free_bytes=5e9 - rng.uniform(0, 1e7))
            for key, ph in phase.items():
                site, d = key
                n = (t - start - ph) // MIN
                for k in (n, n + 1):  # the device's minute falls in this step or not
                    at = start + ph + k * MIN + jitter[key][k % 20]
                    if not t <= at < t + step or lost[key][k % 20]:
                        continue
                    if key == reboot and start + 5 * MIN <= at < start + 5 * MIN + 40 * S:
                        continue  # rebooting: nothing for 40 s
                    co2[key] = min(1300.0, max(420.0, co2[key] + rng.gauss(0, 25)))
                    sc.reading(site, d, at, co2=co2[key])
                    sc.add("air", {"site": site, "device": d, "sensor": "bme280"},
                           {"temperature": rng.gauss(21, 0.5)}, at)
            if t <= start + 5 * MIN < t + step:  # the reboot: its last will...
                sc.last_will(*reboot, start + 5 * MIN)
            if t <= start + 5 * MIN + 35 * S < t + step:  # ...and back 35 s later
                sc.status(*reboot, start + 5 * MIN + 35 * S, uptime=2.0)
            sc.write(cfg)
            t += step
            res = eng.cycle(t)
            fired += [f"{(t - start) // S} {a.line()}" for a in res.firing]
            states.add(res_state(eng, reboot))
    finally:
        reader.close()
    assert fired == []
    assert eng.state.active == {} and eng.state.outbox == {}
    assert states == {"online", "offline"}  # the reboot was seen, and paged no one


def res_state(eng: Engine, key: tuple[str, str]) -> str:
    return eng.last_states.get(key, "absent")
