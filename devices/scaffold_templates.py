"""The text `livinglab sensor new` writes: a driver, a twin and a check per bus.

Data, not logic (see :mod:`devices.scaffold`). ``@NAME@`` tokens are replaced;
each template is complete MicroPython in the house style of ``firmware/ll/drivers``
(``const()`` registers, buffers allocated once, ``measure()`` then cheap accessors,
``OSError`` for bus trouble) and runs unchanged: a placeholder protocol that the
student replaces with the datasheet's, keeping the shape.
"""

from __future__ import annotations

DRIVER_HEAD = """\
# @TITLE_COMMENT@
# Scaffolded by `livinglab sensor new`: fill in the register logic from the datasheet.
# PLACEHOLDER protocol (replace it with the datasheet's, keep the shape):
#   @PROTOCOL@
# Each raw 16-bit value maps linearly onto the quantity's range (value_centi).
"""

# per quantity: (value at raw 0, value at raw 65535) in 0.01 of the canonical unit
DRIVER_COMMON = """\


def _scale(raw, lo, hi):
    \"\"\"Placeholder conversion: raw 0..65535 linear onto lo..hi (0.01 units).\"\"\"
    return lo + ((hi - lo) * raw + 32767) // 65535
"""

DRIVER_I2C = DRIVER_HEAD + """\
import time

from micropython import const

ADDRESS = const(@ADDRESS@)
_CHIP_ID_REG = const(0x0F)  # datasheet: the "who am I" / product id register
_CHIP_ID = const(0x5A)
_MEASURE = const(0x01)  # datasheet: the "start measurement" command
_WORDS = const(@N@)
""" + DRIVER_COMMON + """

class @CLASS@:
    KIND = "@KIND@"

    def __init__(self, i2c, address=ADDRESS, wait_ms=10):
        self.i2c = i2c
        self.address = address
        self.wait_ms = wait_ms
        self._cmd = bytearray(1)
        self._id = bytearray(1)
        self._rx = bytearray(2 * _WORDS)
        self.raw = [0] * _WORDS
        self.i2c.readfrom_mem_into(self.address, _CHIP_ID_REG, self._id)
        if self._id[0] != _CHIP_ID:
            raise OSError(19)  # ENODEV: something else answers at this address

    def measure(self):
        self._cmd[0] = _MEASURE
        self.i2c.writeto(self.address, self._cmd)
        time.sleep_ms(self.wait_ms)  # datasheet: conversion time
        self.i2c.readfrom_into(self.address, self._rx)
        rx = self._rx
        for i in range(_WORDS):
            self.raw[i] = rx[2 * i] << 8 | rx[2 * i + 1]
        return True
@ACCESSORS@

def open_sensor(board, spec, cfg):
    \"\"\"device.json entry -> driver (found by convention: ll/drivers/<kind>.py).\"\"\"
    return @CLASS@(board.i2c(spec.get("bus", "i2c0")), spec.get("address", ADDRESS))
"""

DRIVER_UART = DRIVER_HEAD + """\
from micropython import const

_HEAD0 = const(0xAA)  # datasheet: frame start bytes
_HEAD1 = const(0x55)
_WORDS = const(@N@)
_FRAME = const(@FRAME@)  # 2 start bytes, the words, a 16-bit sum of the bytes before it
_MAX_SCAN = const(@SCAN@)
""" + DRIVER_COMMON + """

def checksum(frame):
    s = 0
    for i in range(_FRAME - 2):
        s += frame[i]
    return s & 0xFFFF


class @CLASS@:
    KIND = "@KIND@"

    def __init__(self, uart):
        self.uart = uart
        self._frame = bytearray(_FRAME)
        self._mv = memoryview(self._frame)
        self._one = bytearray(1)
        self.raw = [0] * _WORDS

    def _word(self, i):
        return self._frame[i] << 8 | self._frame[i + 1]

    def measure(self):
        \"\"\"Decode the newest complete frame waiting in the UART; False if none.\"\"\"
        got = False
        prev = 0
        scanned = 0
        uart = self.uart
        while uart.any() and scanned < _MAX_SCAN:
            scanned += 1
            if not uart.readinto(self._one, 1):
                break
            b = self._one[0]
            if prev != _HEAD0 or b != _HEAD1:
                prev = b
                continue
            prev = 0
            self._frame[0] = _HEAD0
            self._frame[1] = _HEAD1
            if uart.readinto(self._mv[2:_FRAME], _FRAME - 2) != _FRAME - 2:
                break  # a torn frame at the end of the buffer: the next call gets it whole
            if checksum(self._frame) != self._word(_FRAME - 2):
                continue
            for i in range(_WORDS):
                self.raw[i] = self._word(2 + 2 * i)
            got = True
        return got
@ACCESSORS@

def open_sensor(board, spec, cfg):
    \"\"\"device.json entry -> driver (found by convention: ll/drivers/<kind>.py).\"\"\"
    return @CLASS@(board.uart(spec.get("uart", 1)))
"""

DRIVER_PIN = DRIVER_HEAD + """\
_PIN = 26  # default ADC pin (Pico W GP26 = ADC0); device.json "pin" overrides it
""" + DRIVER_COMMON + """

class @CLASS@:
    KIND = "@KIND@"

    def __init__(self, adc):
        # An analog module has no chip id: the driver trusts the wiring.
        self.adc = adc
        self.raw = [0]

    def measure(self):
        self.raw[0] = self.adc.read_u16()
        return True
@ACCESSORS@

def open_sensor(board, spec, cfg):
    \"\"\"device.json entry -> driver (found by convention: ll/drivers/<kind>.py).\"\"\"
    return @CLASS@(board.adc(spec.get("pin", _PIN)))
"""

TWIN_HEAD = """\
# Twin of the @KIND@ for the simulated world (scaffolded by `livinglab sensor new`): it
# speaks the driver's placeholder protocol from a modelled value per quantity. When
# the driver speaks the datasheet's protocol, make this twin speak it too.
@IMPORTS@
# per quantity: (value at raw 0, value at raw 65535) in the canonical unit
_SPAN = @SPAN@


def _raw(v, lo, hi):
    if hi <= lo:
        return 0
    r = int((v - lo) * 65535 / (hi - lo) + 0.5)
    return 0 if r < 0 else 65535 if r > 65535 else r


class @CLASS@Twin:
    def __init__(self, world@TWIN_ARGS@):
        self.world = world
        # a number pins quantity i (the checks do); None: follow the model
        self.values = [None] * @N@  # type: list[float | None]@TWIN_INIT@

    def model(self, i):
        \"\"\"The physical value of quantity i now.\"\"\"
        v = self.values[i]
        if v is not None:
            return v
        w = self.world
        w.step()
@MODEL@
    def raw(self, i):
        lo, hi = _SPAN[i]
        return _raw(self.model(i), lo, hi)
"""

TWIN_I2C = TWIN_HEAD + """\

    def read_mem(self, reg, buf):
        if reg != 0x0F:
            raise OSError(5)
        buf[0] = self.chip_id

    def write(self, buf):
        if buf[0] != 0x01:
            raise OSError(5)  # unknown command: NACK
        out = self.resp
        for i in range(@N@):
            r = self.raw(i)
            out[2 * i] = r >> 8
            out[2 * i + 1] = r & 0xFF

    def read(self, buf):
        n = min(len(buf), len(self.resp))
        buf[0:n] = self.resp[0:n]


def attach_twin(board, spec, world):
    \"\"\"Wire the twin where device.json says the sensor is (found by convention).\"\"\"
    twin = @CLASS@Twin(world)
    board.i2c(spec.get("bus", "i2c0")).attach(spec.get("address", @ADDRESS@), twin)
"""

TWIN_UART = TWIN_HEAD + """\

    def frame(self):
        f = bytearray(@FRAME@)
        f[0] = 0xAA
        f[1] = 0x55
        for i in range(@N@):
            r = self.raw(i)
            f[2 + 2 * i] = r >> 8
            f[3 + 2 * i] = r & 0xFF
        s = sum(f[0:@FRAME@ - 2])
        f[@FRAME@ - 2] = (s >> 8) & 0xFF
        f[@FRAME@ - 1] = s & 0xFF
        return f

    def _fill(self):
        now = self.world.now()
        if now - self.last < 1.0:
            return
        self.last = now
        f = self.frame()
        keep = max(0, len(self.fifo) - len(f))
        if self.n > keep:  # FIFO overflow: oldest bytes lost
            self.fifo[0:keep] = self.fifo[self.n - keep:self.n]
            self.n = keep
        self.fifo[self.n:self.n + len(f)] = f
        self.n += len(f)

    def any(self):
        self._fill()
        return self.n

    def readinto(self, buf, n):
        n = min(n, self.n)
        buf[0:n] = self.fifo[0:n]
        self.fifo[0:self.n - n] = self.fifo[n:self.n]
        self.n -= n
        return n


def attach_twin(board, spec, world):
    \"\"\"Wire the twin where device.json says the sensor is (found by convention).\"\"\"
    twin = @CLASS@Twin(world)
    board.attach_uart(spec.get("uart", 1), twin)
"""

TWIN_PIN = TWIN_HEAD + """\

    def read_u16(self):
        return self.raw(0)


def attach_twin(board, spec, world):
    \"\"\"Wire the twin where device.json says the sensor is (found by convention).\"\"\"
    twin = @CLASS@Twin(world)
    board.attach_adc(spec.get("pin", 26), twin)
"""

TWIN_ARGS = {"i2c": ", chip_id=0x5A", "uart": ", fifo=@FIFO@", "pin": ""}
TWIN_INIT = {
    "i2c": "\n        self.chip_id = chip_id\n        self.resp = bytearray(2 * @N@)",
    "uart": "\n        self.fifo = bytearray(fifo)\n        self.n = 0\n        self.last = -1e9",
    "pin": "",
}

CATALOGUE = """\
kind = "@KIND@"
description = "@TITLE@"
quantities = @QLIST@
bus = "@CAT_BUS@"
@ADDRESS_LINE@min_interval_s = 1
@SITE_QUANTITIES@"""

DRIVERS = {"i2c": DRIVER_I2C, "uart": DRIVER_UART, "pin": DRIVER_PIN}
TWINS = {"i2c": TWIN_I2C, "uart": TWIN_UART, "pin": TWIN_PIN}
PROTOCOLS = {
    "i2c": "chip id 0x5A in register 0x0F; command 0x01, then one 16-bit word per quantity.",
    "uart": "frame 0xAA 0x55, one 16-bit word per quantity, 16-bit sum of the bytes before.",
    "pin": "one ADC reading (read_u16).",
}

CYCLE = """\
import math


def _cycle(w, i):
    \"\"\"A daily cycle inside quantity i's range: replace with a model of the real thing.\"\"\"
    lo, hi = _SPAN[i]
    return lo + (hi - lo) * (0.5 + 0.2 * math.sin(2 * math.pi * w.hour() / 24))

"""
