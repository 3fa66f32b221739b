# Sensor kinds from device.json -> driver instances. A kind is found by convention
# (its module in ll/drivers); a sensor that fails to start is retried later.
import gc
import time

_KIND_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_"
# kind -> its module in ll/drivers (a kind not listed: by convention, ll/drivers/<kind>.py)
_MODULES = {"scd41": "scd4x", "scd40": "scd4x", "bme280": "bme280", "bh1750": "bh1750",
            "veml7700": "veml7700", "pms5003": "pms5003", "yfs201": "yfs201"}


def _open(board, spec, cfg):
    kind = spec.get("kind")
    if kind in ("scd41", "scd40"):
        from ll.drivers.scd4x import SCD4x

        d = SCD4x(board.i2c(spec.get("bus", "i2c0")), spec.get("address", 0x62))
        d.KIND = kind
        return d
    if kind == "bme280":
        from ll.drivers.bme280 import BME280

        return BME280(board.i2c(spec.get("bus", "i2c0")), spec.get("address", 0x76))
    if kind == "bh1750":
        from ll.drivers.bh1750 import BH1750

        return BH1750(board.i2c(spec.get("bus", "i2c0")), spec.get("address", 0x23))
    if kind == "veml7700":
        from ll.drivers.veml7700 import VEML7700

        return VEML7700(board.i2c(spec.get("bus", "i2c0")), spec.get("address", 0x10))
    if kind == "pms5003":
        from ll.drivers.pms5003 import PMS5003

        return PMS5003(board.uart(spec.get("uart", 1)))
    if kind == "yfs201":
        from ll.drivers.yfs201 import YFS201

        return YFS201(board.pin(spec.get("pin", 15)), cfg.yfs201_ppl,
                      save_every_ms=int(60000 / board.speed))
    return by_convention("ll.drivers.", kind, "open_sensor")(board, spec, cfg)


def by_convention(package, kind, name):
    """``package + kind``'s function ``name``: how kinds added by `livinglab sensor new`
    are found (ll/drivers/<kind>.py: open_sensor; ll/sim/twin_<kind>.py: attach_twin)."""
    try:
        mod = __import__(package + _checked(kind), None, None, (name,))
    except ImportError:
        raise ValueError("unknown sensor kind")
    fn = getattr(mod, name, None)
    if fn is None:
        raise ValueError("unknown sensor kind")
    return fn


def _checked(kind):
    """A kind as a module name, or ValueError (it names a file to import)."""
    if not isinstance(kind, str) or not kind or len(kind) > 32:
        raise ValueError("unknown sensor kind")
    for c in kind:
        if c not in _KIND_CHARS:
            raise ValueError("unknown sensor kind")
    return kind


class Slot:
    """One configured sensor: its driver once it started, and its failure count."""

    def __init__(self, spec):
        self.spec = spec
        self.kind = str(spec.get("kind", "?")).encode()
        self.driver = None
        self.errors = 0
        self.retry_at = time.ticks_ms()


def open_slots(board, cfg):
    return [Slot(s) for s in cfg.sensors]


def preload(cfg):
    """Import the driver of every configured kind now, at boot: compiling one later (at
    its first sample) scatters its code between the buffers the app allocated by then,
    and on a small heap a fragmented one cannot fit it (MemoryError). Starting the
    sensor itself stays lazy (ensure(): bus I/O, retries)."""
    for spec in cfg.sensors:
        kind = spec.get("kind")
        mod = _MODULES.get(kind) if isinstance(kind, str) else None
        gc.collect()  # each compile gets the biggest free blocks there are
        try:
            __import__("ll.drivers." + (mod or _checked(kind)))
        except (ImportError, ValueError):
            pass  # unknown kind: _open reports it, and retries, as before


def ensure(slot, board, cfg, now):
    """Start the driver if it is not running (bounded retries, every 30 s)."""
    if slot.driver is not None:
        return True
    if time.ticks_diff(now, slot.retry_at) < 0:
        return False
    try:
        slot.driver = _open(board, slot.spec, cfg)
        return True
    except (OSError, ValueError):
        slot.errors += 1
        slot.retry_at = time.ticks_add(now, 30000)
        return False
