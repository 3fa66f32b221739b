# ruff: noqa: UP031, E402, BLE001 -- MicroPython code: no f-string niceties needed, path set up first
# Runs under the MicroPython unix port (NOT CPython): each driver against datasheet vectors
# and its register-level twin.
# Usage: micropython check_drivers.py <firmware dir> <pms5003 frame hex>  (cwd: a scratch dir)
import sys

sys.path.insert(0, sys.argv[1])

import os
import time

from harness import check, eq, near, run_all
from ll.drivers import bme280, pms5003
from ll.drivers.bh1750 import BH1750
from ll.drivers.crc8 import crc8
from ll.drivers.scd4x import SCD4x
from ll.drivers.yfs201 import YFS201
from ll.sim import buses, twins


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


run_all()
