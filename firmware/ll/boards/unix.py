# The MicroPython unix port as a board: the network is the host's, the clock is set,
# and every sensor in device.json is a register-level twin on a fake bus.
import os
import sys
import time

from ll.clock import Clock
from ll.sim import buses, twins
from ll.sim.world import World


class Board:
    name = "unix"
    has_wdt = False

    def __init__(self, cfg):
        env = os.getenv("LIVINGLAB_SIM_SPEED")
        self.speed = float(env) if env else cfg.sim_speed
        if self.speed <= 0:
            self.speed = 1.0
        self.world = World(cfg.sim_seed, cfg.sim_profile, self.speed, cfg.sim_tz_h)
        self.clock = Clock(True)
        self._i2c = {}
        self._uart = {}
        self._pins = {}
        self._adc = {}
        self._pumps = []
        for spec in cfg.sensors:
            self._attach(spec, cfg)
        loader = sys.modules.get("loader")  # its fake watchdog, armed for a new version
        self._feed = getattr(loader, "feed", None)

    def _attach(self, spec, cfg):
        kind = spec.get("kind")
        w = self.world
        if kind in ("scd41", "scd40"):
            self.i2c(spec.get("bus", "i2c0")).attach(spec.get("address", 0x62), twins.SCD4xTwin(w))
        elif kind == "bme280":
            self.i2c(spec.get("bus", "i2c0")).attach(spec.get("address", 0x76),
                                                     twins.BME280Twin(w))
        elif kind == "bh1750":
            self.i2c(spec.get("bus", "i2c0")).attach(spec.get("address", 0x23),
                                                     twins.BH1750Twin(w))
        elif kind == "veml7700":
            self.i2c(spec.get("bus", "i2c0")).attach(spec.get("address", 0x10),
                                                     twins.VEML7700Twin(w))
        elif kind == "pms5003":
            self._uart[spec.get("uart", 1)] = buses.FakeUART(twins.PMS5003Twin(w))
        elif kind == "yfs201":
            pin = self.pin(spec.get("pin", 15))
            self._pumps.append(twins.YFS201Twin(w, pin, cfg.yfs201_ppl))
        else:
            from ll.sensors import by_convention

            try:
                attach = by_convention("ll.sim.twin_", kind, "attach_twin")
            except ValueError:
                return  # no twin: the driver finds no device, like an unwired sensor
            attach(self, spec, w)

    # -- buses -------------------------------------------------------------
    def i2c(self, bus="i2c0"):
        b = self._i2c.get(bus)
        if b is None:
            b = self._i2c[bus] = buses.FakeI2C()
        return b

    def uart(self, n=1):
        u = self._uart.get(n)
        if u is None:
            raise OSError(19)
        return u

    def pin(self, n):
        p = self._pins.get(n)
        if p is None:
            p = self._pins[n] = buses.FakePin(n)
        return p

    def adc(self, n):
        a = self._adc.get(n)
        if a is None:
            raise OSError(19)  # nothing wired to that pin
        return a

    # -- wiring twins (ll/sim/twin_<kind>.py) --------------------------------
    def attach_uart(self, n, twin):
        self._uart[n] = buses.FakeUART(twin)

    def attach_adc(self, n, twin):
        self._adc[n] = buses.FakeADC(twin)

    def add_pump(self, twin):
        """``twin.pump()`` is called every loop pass (time-driven twins: pulses)."""
        self._pumps.append(twin)

    # -- system --------------------------------------------------------------
    def tick(self):
        for p in self._pumps:
            p.pump()

    def net_ready(self, now):
        return True

    def ip(self):
        return "127.0.0.1"

    def rssi(self):
        return self.world.rssi()

    def wdt_feed(self):
        if self._feed is not None:
            self._feed()

    def sleep_ms(self, ms):
        time.sleep_ms(ms)
