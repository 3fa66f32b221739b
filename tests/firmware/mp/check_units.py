# ruff: noqa: UP031, E402, BLE001 -- MicroPython code: no f-string niceties needed, path set up first
# Runs under the MicroPython unix port (NOT CPython): driver and firmware unit checks.
# Usage: micropython check_units.py <firmware dir>  (cwd: a scratch dir)
# Prints one line per check: "ok <name>" or "FAIL <name> <detail>".
import sys

sys.path.insert(0, sys.argv[1])

import os  # noqa: E402
import time  # noqa: E402

from ll import jsonw  # noqa: E402
from ll.drivers import bme280, pms5003  # noqa: E402
from ll.drivers.bh1750 import BH1750  # noqa: E402
from ll.drivers.crc8 import crc8  # noqa: E402
from ll.drivers.scd4x import SCD4x  # noqa: E402
from ll.drivers.yfs201 import YFS201  # noqa: E402
from ll.outbox import Outbox  # noqa: E402
from ll.sim import buses, twins  # noqa: E402
from ll.sim.world import World  # noqa: E402

CHECKS = []


def check(fn):
    CHECKS.append(fn)
    return fn


def eq(a, b, what=""):
    if a != b:
        raise AssertionError("%s: %r != %r" % (what, a, b))


def near(a, b, tol, what=""):
    if abs(a - b) > tol:
        raise AssertionError("%s: %r not within %r of %r" % (what, a, tol, b))


class Fixed:
    """A world stub with fixed physical values."""

    def __init__(self, **kw):
        self.v = kw
        self.co2 = kw.get("co2", 600)
        self.flow = kw.get("flow", 0.0)
        self.t = 0.0

    def now(self):
        return self.t

    def step(self):
        pass

    def temperature(self):
        return self.v["temperature"]

    def humidity(self):
        return self.v["humidity"]

    def pressure(self):
        return self.v["pressure"]

    def lux(self):
        return self.v["lux"]


class ReplyI2C:
    """Answers every read with fixed bytes (to feed a driver datasheet examples)."""

    def __init__(self, reply):
        self.reply = reply
        self.written = []

    def writeto(self, addr, buf, stop=True):
        self.written.append(bytes(buf))

    def readfrom_into(self, addr, buf, stop=True):
        n = len(buf)
        buf[0:n] = self.reply[0:n]


@check
def crc8_datasheet_example():
    eq(crc8(b"\xbe\xef"), 0x92, "CRC(0xBEEF)")


@check
def scd4x_datasheet_measurement():
    # datasheet example read_measurement: 0x01F4 (500 ppm), 0x6667 (25 degC), 0x5EB9 (37 %RH)
    words = (0x01F4, 0x6667, 0x5EB9)
    reply = bytearray(9)
    for i, w in enumerate(words):
        reply[3 * i] = w >> 8
        reply[3 * i + 1] = w & 0xFF
        reply[3 * i + 2] = crc8(reply, 3 * i, 2)
    eq(reply[5], 0xA2, "CRC(0x6667)")
    eq(reply[8], 0x3C, "CRC(0x5EB9)")
    bus = ReplyI2C(reply)
    d = SCD4x(bus, stop_delay_ms=0)
    eq(bus.written[0], b"\x3f\x86", "stop periodic first")
    eq(bus.written[-1], b"\x21\xb1", "start periodic last")
    bus.reply = b"\x80\x06" + bytes([crc8(b"\x80\x06")])  # data ready
    ready = d.data_ready()
    eq(ready, True, "data ready")
    bus.reply = reply
    d._send(0xEC05)
    bus.readfrom_into(0x62, d._rx)
    d._check(3)
    rx = d._rx
    d.co2 = rx[0] << 8 | rx[1]
    d._t_raw = rx[3] << 8 | rx[4]
    d._rh_raw = rx[6] << 8 | rx[7]
    eq(d.co2, 500, "co2")
    eq(d.temperature_centi(), 2500, "T")
    eq(d.humidity_centi(), 3700, "RH")


@check
def scd4x_bad_crc_is_oserror():
    reply = bytearray(b"\x01\xf4\x00" * 3)
    try:
        SCD4x(ReplyI2C(reply), stop_delay_ms=0)
    except OSError:
        return
    raise AssertionError("no OSError on CRC mismatch")


@check
def scd4x_against_twin():
    i2c = buses.FakeI2C()
    w = Fixed(co2=612, temperature=22.41, humidity=48.2)
    i2c.attach(0x62, twins.SCD4xTwin(w))
    d = SCD4x(i2c, stop_delay_ms=0)
    eq(d.measure(), False, "no data before 5 s")
    w.t = 5.0
    eq(d.measure(), True, "data after 5 s")
    eq(d.co2, 612, "co2")
    near(d.temperature_centi(), 2241, 1, "T")
    near(d.humidity_centi(), 4820, 1, "RH")


@check
def bme280_datasheet_compensation():
    # Bosch BMP280 datasheet section 3.12 / 8: same T and P formulas as the BME280
    c = [27504, 26435, -1000, 36477, -10685, 3024, 2855, 140, -7, 15500, -14600, 6000,
         75, 362, 0, 313, 50, 30]
    t, t_fine = bme280.compensate_t(c, 519888)
    eq(t_fine, 128422, "t_fine")
    eq(t, 2508, "T (0.01 degC)")
    p = bme280.compensate_p(c, 415148, t_fine)
    # the datasheet table prints 25767236; executing the published 64-bit formula
    # gives 25767233 (0.01 Pa apart); the float result is 100653.27 Pa
    eq(p, 25767233, "P Q24.8")
    near(p / 256, 100653.27, 0.05, "P Pa")
    near(twins.float_p(twins.CALIB, 415148, 128422), 100653.27, 0.02, "float P")


@check
def bme280_integer_matches_float():
    c = twins.CALIB
    tp, h = twins.calib_bytes(c)
    cal = bme280.parse_calibration(tp, h)
    eq(cal[0:3], [27504, 26435, -1000], "T calibration words")
    eq(cal[12:], [75, 362, 0, 313, 50, 30], "H calibration words")
    for adc_t in (400000, 480000, 519888, 560000):
        t, t_fine = bme280.compensate_t(cal, adc_t)
        tf, _ = twins.float_t(c, adc_t)
        near(t / 100, tf, 0.01, "T")
        for adc_p in (300000, 415148, 500000):
            near(bme280.compensate_p(cal, adc_p, t_fine) / 256,
                 twins.float_p(c, adc_p, t_fine), 1.0, "P")
        for adc_h in (20000, 28000, 35000):
            near(bme280.compensate_h(cal, adc_h, t_fine) / 1024,
                 twins.float_h(c, adc_h, t_fine), 0.05, "H")


@check
def bme280_against_twin():
    i2c = buses.FakeI2C()
    i2c.attach(0x76, twins.BME280Twin(Fixed(temperature=21.5, pressure=1013.25, humidity=45.0)))
    d = bme280.BME280(i2c)
    d.measure()
    near(d.t_centi, 2150, 1, "T")
    near(d.p_q8 / 25600, 1013.25, 0.02, "P hPa")
    near(d.h_q10 / 1024, 45.0, 0.05, "RH")


@check
def bme280_wrong_chip_id():
    i2c = buses.FakeI2C()
    i2c.attach(0x76, twins.BME280Twin(Fixed(), chip_id=0x58))  # a BMP280
    try:
        bme280.BME280(i2c)
    except OSError:
        return
    raise AssertionError("BMP280 accepted as BME280")


@check
def missing_device_is_oserror():
    try:
        bme280.BME280(buses.FakeI2C())
    except OSError:
        return
    raise AssertionError("no OSError")


class StreamUART:
    def __init__(self, data):
        self.data = bytearray(data)

    def any(self):
        return len(self.data)

    def readinto(self, buf, n=-1):
        n = min(len(buf) if n < 0 else n, len(self.data))
        buf[0:n] = self.data[0:n]
        self.data = self.data[n:]
        return n


@check
def pms5003_frame_known_checksum():
    frame = bytes.fromhex(sys.argv[2])  # built and summed by the CPython side
    eq(pms5003.checksum(frame), frame[30] << 8 | frame[31], "checksum")
    d = pms5003.PMS5003(StreamUART(b"\x00\x4d\x42" + frame))  # junk before a frame
    eq(d.measure(), True, "decoded")
    eq((d.pm1_0, d.pm2_5, d.pm10), (5, 8, 12), "atmospheric PM")
    bad = bytearray(frame)
    bad[31] ^= 1
    d = pms5003.PMS5003(StreamUART(bad))
    eq(d.measure(), False, "bad checksum rejected")
    eq(bytes(twins.pms_frame(5, 8, 12, (300, 100, 20, 5, 1, 0))), frame, "twin frame")


@check
def bh1750_raw_to_lux():
    bus = ReplyI2C(b"\x03\xe8")  # 1000 counts
    d = BH1750(bus, settle_ms=0)
    eq(bus.written, [b"\x01", b"\x10"], "power on, continuous H-res")
    d.measure()
    eq(d.lux_centi(), 83333, "1000 / 1.2 lx")
    bus.reply = b"\xff\xff"
    d.measure()
    eq(d.lux_centi(), 5461250, "65535 / 1.2 lx")


@check
def veml7700_counts_to_lux():
    from ll.drivers.veml7700 import VEML7700

    i2c = buses.FakeI2C()
    twin = twins.VEML7700Twin(Fixed(lux=500.0))
    i2c.attach(0x10, twin)
    d = VEML7700(i2c)
    eq(twin.regs[0x00], 0, "gain x1, IT 100 ms, powered on")
    d.measure()
    eq(d.raw, 8681, "500 lx / 0.0576")
    eq(d.lux_centi(), 50002, "8681 counts * 0.0576 lx")
    twin.regs[0x07] = 0xC480
    try:
        VEML7700(i2c)
    except OSError:
        return
    raise AssertionError("wrong id accepted")


@check
def yfs201_pulses_to_flow():
    try:
        os.remove("t.vol")
    except OSError:
        pass
    pin = buses.FakePin(15)
    d = YFS201(pin, 450, state_path="t.vol", save_every_ms=0)
    t0 = d._last
    pin.pulse(75)  # 7.5 Hz over 10 s = 1 L/min
    d.measure(time.ticks_add(t0, 10000))
    eq(d.flow_milli, 1000, "mL/min")
    eq(d.volume_ml(), 166, "mL")
    pin.pulse(900)
    d.measure(time.ticks_add(t0, 20000))
    eq(d.flow_milli, 12000, "mL/min at 90 Hz")
    eq(d.volume_ml(), 2166, "mL")
    d2 = YFS201(buses.FakePin(15), 330, state_path="t.vol")  # recalibrated, state restored
    eq(d2.volume_ml(), 2166, "persisted volume")
    t0 = d2._last
    d2.pin.pulse(330)
    d2.measure(time.ticks_add(t0, 60000))
    eq(d2.flow_milli, 1000, "330 pulses/L calibration")
    eq(d2.volume_ml(), 3166, "mL")


@check
def json_writer_numbers():
    w = jsonw.Writer(64)
    w.raw(b"{")
    w.key(b"a")
    w.fixed(-2241, 2)
    w.key(b"b")
    w.fixed(1795351934120, 3)
    w.key(b"c")
    w.int(0)
    w.key(b"d")
    w.fixed(5, 3)
    w.raw(b"}")
    eq(bytes(w.mv[0:w.n]), b'{"a":-22.41,"b":1795351934.120,"c":0,"d":0.005}', "json")
    w.reset()
    w.raw(b'{"age":')
    off = w.age_slot()
    w.raw(b"}")
    jsonw.patch_age(w.buf, off, 12345)
    eq(bytes(w.mv[0:w.n]), b'{"age":        12.345}', "age patched")


def _fill(n, tag):
    b = bytearray(n)
    for i in range(n):
        b[i] = 65 + (tag + i) % 26
    return b


@check
def outbox_order_spill_and_ack():
    for f in ("ob.dat", "ob.dat.pos"):
        try:
            os.remove(f)
        except OSError:
            pass
    ob = Outbox("ob.dat", 4096, slots=2, slot_size=128)
    for i in range(5):
        ob.put(_fill(100, i), 100)
    got = []
    while True:
        item = ob.peek()
        if item is None:
            break
        token, mv, n, age, tick = item
        got.append(bytes(mv[0:n]))
        ob.pop(token)
        ob.pop(token)  # a second ack for the same record is a no-op
    eq(got, [bytes(_fill(100, i)) for i in range(5)], "oldest first, RAM then file")
    eq(ob.dropped, 0, "nothing dropped")
    eq("ob.dat" in os.listdir(), False, "file removed when drained")


@check
def outbox_quota_drops_oldest_and_persists():
    ob = Outbox("ob.dat", 1000, slots=1, slot_size=128)
    for i in range(20):  # 1 in RAM, 19 x 110 bytes to a 1000-byte quota
        ob.put(_fill(100, i), 100)
    eq(ob.dropped, 10, "dropped count")
    if ob.file_bytes() > 1000:
        raise AssertionError("quota exceeded")
    token = ob.peek()[0]
    ob.pop(token)  # the RAM record
    first = ob.peek()
    eq(bytes(first[1][0:first[2]]), bytes(_fill(100, 11)), "oldest kept")
    ob.pop(first[0])
    ob2 = Outbox("ob.dat", 1000, slots=1, slot_size=128)  # a reboot: the file survives
    rest = []
    while True:
        item = ob2.peek()
        if item is None:
            break
        rest.append(bytes(item[1][0:item[2]]))
        ob2.pop(item[0])
    eq(rest, [bytes(_fill(100, i)) for i in range(12, 20)], "replay after reboot")


@check
def outbox_survives_a_torn_append():
    ob = Outbox("ob.dat", 4096, slots=1, slot_size=128)
    for i in range(3):
        ob.put(_fill(100, i), 100)  # 1 in RAM, 2 in the file
    with open("ob.dat", "ab") as f:
        f.write(b"\x00\x64\x00\x00")  # power cut in the middle of a header
    ob = Outbox("ob.dat", 4096, slots=1, slot_size=128)
    ob.put(_fill(100, 3), 100)  # goes to the file, behind the two survivors
    got = []
    while True:
        item = ob.peek()
        if item is None:
            break
        got.append(bytes(item[1][0:item[2]]))
        ob.pop(item[0])
    eq(got, [bytes(_fill(100, i)) for i in (1, 2, 3)], "torn tail dropped")


@check
def world_is_believable():
    w = World(seed=3, speed=1.0, tz_h=0.0, start=1795392000.0)  # a Monday 00:00 UTC
    w.tick0 = time.ticks_ms()
    night = w.occupancy(), w.sun()
    w.t0 = 1795392000.0 + 11 * 3600.0  # Monday 11:00
    w.step()
    eq(night, (0.0, 0.0), "nobody, no sun at midnight")
    if not (w.occupancy() > 0.5 and w.sun() > 0.5 and w.lux() > 500):
        raise AssertionError("office hours not busy/bright")


@check
def age_mode_before_clock_set():
    import json

    from ll.app import App
    from ll.boards.unix import Board
    from ll.config import Config
    from ll.link import _find_age

    cfg = Config({"device": "air-0002", "site": "s", "serial": True, "interval_s": 1,
                  "sensors": [{"kind": "bme280"}, {"kind": "bh1750"}]})
    board = Board(cfg)
    board.clock.is_set = False  # a real board before its first NTP sync
    app = App(cfg, board, 7)
    n, age_off = app.sample(time.ticks_ms())
    if age_off < 0:
        raise AssertionError("no age slot")
    buf = app.w.buf
    for off in _find_age(app.w.mv, age_off - 6, n):
        jsonw.patch_age(buf, off, 2500)
    msg = json.loads(bytes(buf[0:n]))
    eq((msg["boot"], msg["seq"]), (7, 0), "boot, seq")
    eq([s["sensor"] for s in msg["samples"]], ["bme280", "bh1750"], "sensors")
    eq([s.get("age") for s in msg["samples"]], [2.5, 2.5], "ages")
    eq([("ts" in s) for s in msg["samples"]], [False, False], "no ts")


for fn in CHECKS:
    try:
        fn()
        print("ok", fn.__name__)
    except Exception as e:  # noqa: BLE001 -- report every check, keep going
        print("FAIL", fn.__name__, type(e).__name__, e)
