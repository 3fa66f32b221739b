# ruff: noqa: UP031, E402 -- MicroPython code: no f-string niceties needed, path set up first
# Runs under the MicroPython unix port (NOT CPython): the SHT4x driver against datasheet
# vectors and its register-level twin.
# Usage: micropython check_sht4x.py <firmware dir> <tests/firmware/mp dir>  (cwd: scratch)
import sys

sys.path.insert(0, sys.argv[1])
sys.path.insert(0, sys.argv[2])

from harness import check, eq, near, run_all
from ll.drivers.crc8 import crc8
from ll.drivers.sht4x import SHT4x
from ll.sim import buses
from ll.sim.twin_sht4x import SHT4xTwin


class Fixed:
    """A world stub with fixed physical values."""

    def __init__(self, temperature, humidity):
        self.t = temperature
        self.rh = humidity

    def step(self):
        pass

    def temperature(self):
        return self.t

    def humidity(self):
        return self.rh


class ReplyI2C:
    """Answers every read with fixed bytes (datasheet examples), records the commands."""

    def __init__(self, reply):
        self.reply = reply
        self.written = []

    def writeto(self, addr, buf, stop=True):
        self.written.append(bytes(buf))

    def readfrom_into(self, addr, buf, stop=True):
        n = len(buf)
        buf[0:n] = self.reply[0:n]


def frame(t_raw, rh_raw):
    """6 bytes as the sensor sends them: T word, CRC, RH word, CRC."""
    b = bytearray(6)
    b[0], b[1], b[3], b[4] = t_raw >> 8, t_raw & 0xFF, rh_raw >> 8, rh_raw & 0xFF
    b[2] = crc8(b, 0, 2)
    b[5] = crc8(b, 3, 2)
    return b


@check
def sht4x_crc_datasheet_example():
    eq(crc8(b"\xbe\xef"), 0x92, "CRC(0xBEEF) (datasheet 4.4)")
    eq(frame(0x6666, 0x8000), b"\x66\x66\x93\x80\x00\xa2", "frame CRCs")


@check
def sht4x_conversion_vectors():
    # datasheet 4.6: T = -45 + 175 * S_T / (2^16 - 1), RH = -6 + 125 * S_RH / (2^16 - 1)
    bus = ReplyI2C(frame(0x1234, 0x5678))
    d = SHT4x(bus, wait_ms=0)
    eq(bus.written, [b"\x94", b"\x89"], "soft reset, then serial number")
    for t_raw, rh_raw, t_c, rh_c in (
            (0x6666, 0x8000, 2500, 5650),  # 25.00 degC, 56.50 %RH
            (0x0000, 0x0C4A, -4500, 0),  # range ends; RH -6 + 6.0 -> 0 (cropped at 0)
            (0xFFFF, 0xFFFF, 13000, 10000),  # 130 degC; RH 119 cropped to 100
            (0x4000, 0x5D17, -125, 3945)):  # -1.25 degC; 39.4541 %RH rounds to 39.45
        bus.reply = frame(t_raw, rh_raw)
        eq(d.measure(), True, "measure")
        eq(bus.written[-1], b"\xfd", "high repeatability command")
        eq(d.temperature_centi(), t_c, "T 0x%04x" % t_raw)
        eq(d.humidity_centi(), rh_c, "RH 0x%04x" % rh_raw)


@check
def sht4x_bad_crc_is_oserror():
    bad = frame(0x6666, 0x8000)
    bad[5] ^= 1
    try:
        SHT4x(ReplyI2C(bad), wait_ms=0)
    except OSError:
        return
    raise AssertionError("no OSError on CRC mismatch")


@check
def sht4x_missing_device_is_oserror():
    try:
        SHT4x(buses.FakeI2C(), wait_ms=0)
    except OSError:
        return
    raise AssertionError("no OSError without a device")


@check
def sht4x_against_twin():
    i2c = buses.FakeI2C()
    w = Fixed(22.41, 48.2)
    i2c.attach(0x44, SHT4xTwin(w))
    d = SHT4x(i2c, wait_ms=0)
    for t, rh in ((22.41, 48.2), (-10.0, 3.5), (40.0, 95.0)):
        w.t, w.rh = t, rh
        d.measure()
        near(d.temperature_centi(), int(t * 100), 1, "T")
        near(d.humidity_centi(), int(rh * 100), 1, "RH")


run_all()
