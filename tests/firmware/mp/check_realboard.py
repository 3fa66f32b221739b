# ruff: noqa: E402, BLE001, UP031 -- MicroPython code: fakes go into sys.modules first
# Runs under the MicroPython unix port: the real-board layer (ll/net.py, ll/boards/pico_w.py,
# esp32.py) against fake machine/network/ntptime modules. Usage:
#   micropython check_realboard.py <firmware dir>     prints "ok <name>" / "FAIL <name> ..."
import sys

sys.path.insert(0, sys.argv[1])

import json
import time

from ll.sim import buses, twins


class Calls:
    log = []


class FakeMachine:
    class WDT:
        def __init__(self, timeout):
            Calls.log.append(("WDT", timeout))
            self.fed = 0

        def feed(self):
            self.fed += 1

    class Pin:
        IN = 0
        PULL_UP = 1
        IRQ_RISING = 8  # rp2's value: not 1

        def __init__(self, n, mode=None, pull=None):
            self.n = n
            self.trigger = None
            self.handler = None

        def irq(self, handler=None, trigger=0):
            self.handler = handler
            self.trigger = trigger

    class I2C:
        bus = None

        def __new__(cls, n, sda=None, scl=None, freq=0):
            Calls.log.append(("I2C", n, sda.n, scl.n, freq))
            return FakeMachine.I2C.bus

    class UART:
        def __init__(self, n, **kw):
            Calls.log.append(("UART", n, kw["tx"], kw["rx"]))


class WLAN:
    def __init__(self, _iface):
        self.up = False
        self.connects = []

    def active(self, _on):
        pass

    def isconnected(self):
        return self.up

    def connect(self, ssid, password):
        self.connects.append((ssid, password))

    def disconnect(self):
        pass

    def ifconfig(self):
        return ("10.0.0.12", "255.255.255.0", "10.0.0.1", "10.0.0.1")

    def status(self, what):
        return -61


class FakeNetwork:
    STA_IF = 0
    WLAN = WLAN


class FakeNtp:
    host = ""
    fail = True

    @staticmethod
    def settime():
        if FakeNtp.fail:
            raise OSError(110)


sys.modules["machine"] = FakeMachine
sys.modules["network"] = FakeNetwork
sys.modules["ntptime"] = FakeNtp

from harness import check, eq, run_all
from ll import net
from ll.app import App
from ll.boards import esp32, pico_w
from ll.config import Config


def cfg(**over):
    d = {"device": "air-0003", "site": "s", "board": "pico_w", "ntp_host": "ntp.example",
         "wifi": {"ssid": "lab", "password": "pw"}, "interval_s": 1,
         "sensors": [{"kind": "bh1750"}, {"kind": "yfs201", "pin": 15}]}
    d.update(over)
    return Config(d)


@check
def wifi_backoff_is_capped_with_jitter_and_never_raises():
    w = net.Wifi("lab", "pw")
    t0 = time.ticks_ms()
    attempts = []
    for s in range(0, 900):  # 15 minutes of an access point that never answers
        now = time.ticks_add(t0, s * 1000)
        before = len(w.wlan.connects)
        eq(w.ready(now), False, "not connected")
        if len(w.wlan.connects) > before:
            attempts.append(s)
    gaps = [attempts[i + 1] - attempts[i] for i in range(len(attempts) - 1)]
    if not gaps or min(gaps) < 1 or max(gaps) > 76:  # 2 s .. 60 s, +-25 %
        raise AssertionError("gaps %r" % gaps)
    if len(set(gaps[-5:])) < 2:
        raise AssertionError("no jitter in %r" % gaps)
    eq(gaps[:3] == sorted(gaps[:3]), True, "backoff grows")
    w.wlan.up = True
    eq(w.ready(time.ticks_add(t0, 901000)), True, "connected")
    eq((w.ip(), w.rssi()), ("10.0.0.12", -61), "ip, rssi")


@check
def pico_w_board_layer():
    FakeMachine.I2C.bus = buses.FakeI2C()
    Calls.log = []
    b = pico_w.Board(cfg())
    eq(Calls.log, [("WDT", 8000)], "watchdog")
    eq(b.i2c("i2c0"), FakeMachine.I2C.bus, "bus")
    eq(Calls.log[-1], ("I2C", 0, 4, 5, 100000), "I2C0 on GP4/GP5")
    b.uart(1)
    eq(Calls.log[-1], ("UART", 1, 8, 9), "UART1 on GP8/GP9")
    eq(b.pin(15).n, 15, "pin")
    b.wdt_feed()
    eq(b.wdt.fed, 1, "fed")


@check
def esp32_board_layer():
    Calls.log = []
    b = esp32.Board(cfg(board="esp32"))
    eq(Calls.log, [("WDT", 30000)], "watchdog")
    b.i2c("i2c0")
    eq(Calls.log[-1], ("I2C", 0, 21, 22, 100000), "I2C0 on 21/22")
    b.uart(1)
    eq(Calls.log[-1], ("UART", 1, 17, 16), "UART1 remapped to 17/16")


@check
def age_until_ntp_then_ts():
    i2c = buses.FakeI2C()
    class Lit:
        def step(self):
            pass

        def lux(self):
            return 300.0

    i2c.attach(0x23, twins.BH1750Twin(Lit()))
    FakeMachine.I2C.bus = i2c
    b = pico_w.Board(cfg(serial=False))
    app = App(cfg(), b, 3)
    eq(b.clock.is_set, False, "clock unset at boot")
    b.wifi.wlan.up = True
    FakeNtp.fail = True
    now = time.ticks_ms()
    eq(b.net_ready(now), True, "wifi up")
    eq(b.clock.is_set, False, "NTP failed")
    n, age_off = app.sample(now)
    msg = json.loads(bytes(app.w.buf[0:n]).replace(b"             0", b"0"))
    eq([("age" in s, "ts" in s) for s in msg["samples"]], [(True, False)] * 2, "age before NTP")
    eq(b.pin(15).IRQ_RISING, 8, "rp2 trigger")
    eq(app.slots[1].driver.pin.trigger, 8, "YF-S201 IRQ on the rising edge")
    FakeNtp.fail = False
    b.net_ready(time.ticks_add(now, 30000))
    eq(b.clock.is_set, False, "no retry before 60 s")
    b.net_ready(time.ticks_add(now, 61000))
    eq((b.clock.is_set, FakeNtp.host), (True, "ntp.example"), "synced")
    n, _ = app.sample(now)
    msg = json.loads(bytes(app.w.buf[0:n]))
    eq([("ts" in s) for s in msg["samples"]], [True, True], "ts after NTP")
    eq(msg["seq"], 1, "seq")


run_all()
