"""Every CLI subscriber skips and counts a hostile retained status (issue 15): a lone
surrogate, NaN, deep nesting or not JSON never ends `fleet update`'s session, `devices`
/ `device flash` waits, or the fleet monitor."""

from __future__ import annotations

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from devices.fleet_monitor import Tally
from devices.ota_rollout import Broker
from provisioning.status import StatusWatcher, status_topic
from tests.servers import Mosquitto, wait_for

pytestmark = pytest.mark.timeout(60)
SITE, PREFIX = "bdnc-lab", "livinglab/v1"
HOSTILE = [b'{"state":"online","fw":"\\ud800"}', b'{"state":"online","rssi":NaN}',
           b'{"state":"online","x":' + b"[" * 50_000 + b"]" * 50_000 + b"}", b"\xff not json"]


def _retain(port: int) -> None:
    pub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="t-hostile")
    pub.connect("127.0.0.1", port)
    pub.loop_start()
    try:
        for i, payload in enumerate(HOSTILE):
            pub.publish(f"{PREFIX}/{SITE}/bad-{i}/status", payload, qos=1,
                        retain=True).wait_for_publish(10)
        pub.publish(f"{PREFIX}/{SITE}/air-0001/status", b'{"state":"online","fw":"1.0.0"}',
                    qos=1, retain=True).wait_for_publish(10)
    finally:
        pub.loop_stop()
        pub.disconnect()


def test_tally_counts_hostile_payloads() -> None:
    tally = Tally(PREFIX, SITE)
    for leaf in ("status", "telemetry"):
        for payload in HOSTILE:
            tally.observe(f"{PREFIX}/{SITE}/air-0001/{leaf}", payload)
    for payload in HOSTILE:
        tally.observe(f"{PREFIX}/{SITE}/_gateway/gw-01/status", payload)
    assert tally.malformed == 3 * len(HOSTILE) and tally.gateways == {}


def test_fleet_update_session_survives_hostile_statuses(mosquitto: Mosquitto) -> None:
    _retain(mosquitto.port)
    broker = Broker("127.0.0.1", mosquitto.port, "", "", PREFIX, SITE)
    try:
        wait_for(lambda: broker.skipped == len(HOSTILE), 10, what="hostile statuses counted")
        assert broker.client.is_connected() and broker.seen_devices(0) == ["air-0001"]
        assert (broker.latest("air-0001") or {}).get("fw") == "1.0.0"
    finally:
        broker.close()


def test_status_watcher_survives_hostile_statuses(mosquitto: Mosquitto) -> None:
    _retain(mosquitto.port)
    with StatusWatcher("127.0.0.1", mosquitto.port) as w:
        w.start([status_topic(PREFIX, SITE)])
        got = wait_for(lambda: w.collect(0.05) if w.skipped == len(HOSTILE) else [], 10,
                       what="hostile statuses skipped, the good one kept")
        assert [m.device for m in got] == ["air-0001"]
        assert w._client.is_connected()
