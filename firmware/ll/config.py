# device.json -> one Config object. Defaults live here and only here; unknown keys
# are ignored so older firmware keeps working with newer provisioning.
import json


class Config:
    def __init__(self, d):
        self.device = str(d["device"])
        self.site = str(d["site"])
        self.board = str(d.get("board", "unix"))
        self.prefix = str(d.get("prefix", "livinglab/v1"))
        wifi = d.get("wifi") or {}
        self.wifi_ssid = str(wifi.get("ssid", ""))
        self.wifi_password = str(wifi.get("password", ""))
        m = d.get("mqtt") or {}
        self.mqtt_host = str(m.get("host", "127.0.0.1"))
        self.mqtt_port = int(m.get("port", 1883))
        self.mqtt_username = str(m.get("username", ""))
        self.mqtt_password = str(m.get("password", ""))
        self.keepalive = int(m.get("keepalive", 30))
        # TLS: verified against the CA in file mqtt.ca (DER), never plain text.
        self.mqtt_tls = bool(m.get("tls", False))
        self.mqtt_ca = str(m.get("ca", "ca.der"))
        self.interval_s = valid_interval(d.get("interval_s", 30), 30)
        self.sensors = list(d.get("sensors") or [])
        cal = d.get("calibration") or {}
        self.yfs201_ppl = float(cal.get("yfs201_pulses_per_litre", 450))
        self.ntp_host = str(d.get("ntp_host", "pool.ntp.org"))
        self.outbox_quota = int(d.get("outbox_quota_bytes", 65536))
        self.serial = bool(d.get("serial", False))
        sim = d.get("sim") or {}
        self.sim_seed = int(sim.get("seed", 1))
        self.sim_profile = str(sim.get("profile", "office"))
        self.sim_speed = float(sim.get("speed", 1))
        self.sim_tz_h = float(sim.get("tz_h", 1))
        self.mem_report_every = int(sim.get("mem_report_every", 0))
        # Unix port only: hold on the GC heap what mbedTLS takes on a Pico W (the pip
        # unix port mallocs it), so a -X heapsize test sees the TLS cost.
        self.sim_tls_heap = bool(sim.get("tls_heap", False))
        self.status_every_s = int(d.get("status_every_s", 60))
        ota = d.get("ota") or {}
        self.ota_key = _key(ota.get("key", ""))  # per device, set at provisioning
        self.ota_confirm_s = int(ota.get("confirm_after_s", 60))
        self.ota_deadline_s = int(ota.get("deadline_s", 300))


def valid_interval(v, default):
    """interval_s per the wire contract: an integer 1..86400 (a bool is not one)."""
    if isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 86400:
        return v
    return default


def _key(hexkey):
    from binascii import unhexlify

    try:
        return unhexlify(str(hexkey))
    except ValueError:
        return b""  # a broken key refuses every update rather than the boot


def load(path="device.json"):
    with open(path) as f:
        return Config(json.load(f))
