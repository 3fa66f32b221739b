"""The datasheet-vector check `livinglab sensor new` writes, per bus (see
:mod:`devices.scaffold_templates` for the driver and twin). MicroPython run by
``tests/firmware/test_sensor_kits.py``; ``@NAME@`` tokens are replaced."""

from __future__ import annotations

CHECK_HEAD = """\
# ruff: noqa: UP031, E402 -- MicroPython code: no f-string niceties needed, path set up first
# Runs under the MicroPython unix port (NOT CPython): the @KIND@ driver against datasheet
# vectors and its twin (scaffolded by `livinglab sensor new`). The vectors below are
# the PLACEHOLDER protocol's: replace them with the datasheet's worked examples.
# Usage: micropython check_@KIND@.py <firmware dir> <tests/firmware/mp dir>  (cwd: scratch)
import sys

sys.path.insert(0, sys.argv[1])
sys.path.insert(0, sys.argv[2])

from harness import check, eq, near, run_all
from ll.drivers.@KIND@ import @CLASS@
from ll.sim.twin_@KIND@ import @CLASS@Twin

# (raw, expected value in 0.01 units) per quantity: both ends and the middle
VECTORS = @VECTORS@
# a value inside each range, and the driver's resolution there (0.01 units)
INSIDE = @INSIDE@
STEP = @STEP@


class World:
    \"\"\"A world stub: the checks pin every value on the twin.\"\"\"

    def step(self):
        pass

    def now(self):
        return 0.0
"""

CHECK_I2C = CHECK_HEAD + """\

from ll.sim import buses


class ReplyI2C:
    \"\"\"Answers the chip id, then every read with fixed bytes.\"\"\"

    def __init__(self, reply):
        self.reply = reply
        self.written = []

    def readfrom_mem_into(self, addr, reg, buf):
        buf[0] = 0x5A

    def writeto(self, addr, buf, stop=True):
        self.written.append(bytes(buf))

    def readfrom_into(self, addr, buf, stop=True):
        n = len(buf)
        buf[0:n] = self.reply[0:n]


@check
def @KIND@_vectors():
    for k in range(3):
        reply = bytearray(2 * len(VECTORS))
        for i, vec in enumerate(VECTORS):
            raw = vec[k][0]
            reply[2 * i] = raw >> 8
            reply[2 * i + 1] = raw & 0xFF
        bus = ReplyI2C(reply)
        d = @CLASS@(bus, wait_ms=0)
        eq(d.measure(), True, "measure")
        eq(bus.written[-1], b"\\x01", "measure command")
        for i, vec in enumerate(VECTORS):
            eq(d.value_centi(i), vec[k][1], "quantity %d raw 0x%04x" % (i, vec[k][0]))


@check
def @KIND@_against_twin():
    i2c = buses.FakeI2C()
    twin = @CLASS@Twin(World())
    i2c.attach(@ADDRESS@, twin)
    d = @CLASS@(i2c, wait_ms=0)
    for i, v in enumerate(INSIDE):
        twin.values[i] = v
    d.measure()
    for i, v in enumerate(INSIDE):
        near(d.value_centi(i), v * 100, STEP[i], "quantity %d" % i)


@check
def @KIND@_missing_or_wrong_chip_is_oserror():
    i2c = buses.FakeI2C()
    for twin in (None, @CLASS@Twin(World(), chip_id=0x00)):
        if twin is not None:
            i2c.attach(@ADDRESS@, twin)
        try:
            @CLASS@(i2c, wait_ms=0)
        except OSError:
            continue
        raise AssertionError("no OSError")


run_all()
"""

CHECK_UART = CHECK_HEAD + """\


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


def frame(raws):
    f = bytearray(2 + 2 * len(raws) + 2)
    f[0] = 0xAA
    f[1] = 0x55
    for i, r in enumerate(raws):
        f[2 + 2 * i] = r >> 8
        f[3 + 2 * i] = r & 0xFF
    s = sum(f[0:len(f) - 2])
    f[len(f) - 2] = (s >> 8) & 0xFF
    f[len(f) - 1] = s & 0xFF
    return f


@check
def @KIND@_vectors():
    for k in range(3):
        d = @CLASS@(StreamUART(b"\\x00\\x55\\xaa" + frame([vec[k][0] for vec in VECTORS])))
        eq(d.measure(), True, "decoded (junk before the frame)")
        for i, vec in enumerate(VECTORS):
            eq(d.value_centi(i), vec[k][1], "quantity %d raw 0x%04x" % (i, vec[k][0]))
    bad = frame([vec[1][0] for vec in VECTORS])
    bad[len(bad) - 1] ^= 1
    eq(@CLASS@(StreamUART(bad)).measure(), False, "bad checksum rejected")


@check
def @KIND@_against_twin():
    twin = @CLASS@Twin(World())
    for i, v in enumerate(INSIDE):
        twin.values[i] = v
    d = @CLASS@(twin)
    eq(d.measure(), True, "a frame from the twin")
    for i, v in enumerate(INSIDE):
        near(d.value_centi(i), v * 100, STEP[i], "quantity %d" % i)


run_all()
"""

CHECK_PIN = CHECK_HEAD + """\


class FixedADC:
    def __init__(self, raw):
        self.raw = raw

    def read_u16(self):
        return self.raw


@check
def @KIND@_vectors():
    for raw, want in VECTORS[0]:
        d = @CLASS@(FixedADC(raw))
        eq(d.measure(), True, "measure")
        eq(d.value_centi(0), want, "raw 0x%04x" % raw)


@check
def @KIND@_against_twin():
    twin = @CLASS@Twin(World())
    twin.values[0] = INSIDE[0]
    d = @CLASS@(twin)
    d.measure()
    near(d.value_centi(0), INSIDE[0] * 100, STEP[0], "value")


run_all()
"""

CHECKS = {"i2c": CHECK_I2C, "uart": CHECK_UART, "pin": CHECK_PIN}
