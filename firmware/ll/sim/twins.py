# Register-level twins: each turns the world model into the bytes the real chip
# would put on the bus, so the real drivers decode them. They deliberately do not
# import the drivers (the BME280 twin inverts Bosch's float formulas instead).
import time

from ll.drivers.crc8 import crc8


def _clamp(v, lo, hi):
    return lo if v < lo else hi if v > hi else v


class SCD4xTwin:
    """Sensirion SCD4x: 16-bit commands, words followed by CRC-8; new data every 5 s."""

    def __init__(self, world, serial=0x1234_5678_9ABC):
        self.world = world
        self.serial = serial
        self.periodic = False
        self.last = None
        self.resp = bytearray(0)
        self.next_at = 0.0

    def _words(self, words):
        out = bytearray(3 * len(words))
        for i, w in enumerate(words):
            out[3 * i] = w >> 8
            out[3 * i + 1] = w & 0xFF
            out[3 * i + 2] = crc8(out, 3 * i, 2)
        self.resp = out

    def write(self, buf):
        cmd = buf[0] << 8 | buf[1]
        w = self.world
        if cmd == 0x21B1:
            self.periodic = True
            self.next_at = w.now() + 5.0
        elif cmd == 0x3F86:
            self.periodic = False
        elif cmd == 0x3682:
            if self.periodic:
                raise OSError(5)  # not accepted during periodic measurement: NACK
            s = self.serial
            self._words([(s >> 32) & 0xFFFF, (s >> 16) & 0xFFFF, s & 0xFFFF])
        elif cmd == 0xE4B8:
            ready = self.periodic and w.now() >= self.next_at
            self._words([0x8006 if ready else 0x8000])
        elif cmd == 0xEC05:
            w.step()
            co2 = int(_clamp(w.co2, 0, 40000))
            t_raw = int(_clamp((w.temperature() + 45.0) * 65535 / 175.0 + 0.5, 0, 65535))
            rh_raw = int(_clamp(w.humidity() * 65535 / 100.0 + 0.5, 0, 65535))
            self._words([co2, t_raw, rh_raw])
            self.next_at = w.now() + 5.0
        else:
            raise OSError(5)

    def read(self, buf):
        n = min(len(buf), len(self.resp))
        buf[0:n] = self.resp[0:n]


class BH1750Twin:
    def __init__(self, world):
        self.world = world
        self.on = False
        self.mode = 0

    def write(self, buf):
        c = buf[0]
        if c == 0x01:
            self.on = True
        elif c == 0x00:
            self.on = False
        elif c in (0x10, 0x11, 0x13, 0x20, 0x21, 0x23):
            self.mode = c

    def read(self, buf):
        if not self.on or not self.mode:
            raise OSError(5)
        self.world.step()
        raw = int(_clamp(self.world.lux() * 1.2 + 0.5, 0, 65535))
        buf[0] = raw >> 8
        buf[1] = raw & 0xFF


class VEML7700Twin:
    """16-bit little-endian register file; ALS counts at 0.0576 lx (gain x1, 100 ms)."""

    def __init__(self, world):
        self.world = world
        self.regs = {0x00: 0x0001, 0x07: 0xC481}  # powered down at reset; device id

    def read_mem(self, reg, buf):
        if reg == 0x04:
            if self.regs[0x00] & 1:
                v = 0  # shut down: no conversions
            else:
                self.world.step()
                v = int(_clamp(self.world.lux() / 0.0576 + 0.5, 0, 65535))
        else:
            v = self.regs.get(reg, 0)
        buf[0] = v & 0xFF
        buf[1] = v >> 8

    def write_mem(self, reg, buf):
        self.regs[reg] = buf[0] | buf[1] << 8


# Bosch BMP280 datasheet example calibration (T, P) + typical BME280 humidity trim.
CALIB = {"T1": 27504, "T2": 26435, "T3": -1000, "P1": 36477, "P2": -10685, "P3": 3024,
         "P4": 2855, "P5": 140, "P6": -7, "P7": 15500, "P8": -14600, "P9": 6000,
         "H1": 75, "H2": 362, "H3": 0, "H4": 313, "H5": 50, "H6": 30}


def float_t(c, adc_t):
    """Datasheet floating-point compensation: (degC, t_fine)."""
    v1 = (adc_t / 16384.0 - c["T1"] / 1024.0) * c["T2"]
    v2 = (adc_t / 131072.0 - c["T1"] / 8192.0) ** 2 * c["T3"]
    return (v1 + v2) / 5120.0, int(v1 + v2)


def float_p(c, adc_p, t_fine):
    """Datasheet floating-point compensation: Pa."""
    v1 = t_fine / 2.0 - 64000.0
    v2 = v1 * v1 * c["P6"] / 32768.0
    v2 = v2 + v1 * c["P5"] * 2.0
    v2 = v2 / 4.0 + c["P4"] * 65536.0
    v1 = (c["P3"] * v1 * v1 / 524288.0 + c["P2"] * v1) / 524288.0
    v1 = (1.0 + v1 / 32768.0) * c["P1"]
    if v1 == 0:
        return 0.0
    p = 1048576.0 - adc_p
    p = (p - v2 / 4096.0) * 6250.0 / v1
    v1 = c["P9"] * p * p / 2147483648.0
    v2 = p * c["P8"] / 32768.0
    return p + (v1 + v2 + c["P7"]) / 16.0


def float_h(c, adc_h, t_fine):
    """Datasheet floating-point compensation: %RH."""
    h = t_fine - 76800.0
    h = (adc_h - (c["H4"] * 64.0 + c["H5"] / 16384.0 * h)) * \
        (c["H2"] / 65536.0 * (1.0 + c["H6"] / 67108864.0 * h * (1.0 + c["H3"] / 67108864.0 * h)))
    h = h * (1.0 - c["H1"] * h / 524288.0)
    return _clamp(h, 0.0, 100.0)


def _invert(fn, target, lo, hi, rising):
    # bisection on a monotonic ADC -> value curve
    for _ in range(24):
        mid = (lo + hi) // 2
        v = fn(mid)
        if (v < target) == rising:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1:
            break
    return lo


def calib_bytes(c):
    """The 0x88..0xA1 and 0xE1..0xE7 register blocks for calibration ``c``."""
    tp = bytearray(26)
    keys = ("T1", "T2", "T3", "P1", "P2", "P3", "P4", "P5", "P6", "P7", "P8", "P9")
    for i, k in enumerate(keys):
        v = c[k] & 0xFFFF
        tp[2 * i] = v & 0xFF
        tp[2 * i + 1] = v >> 8
    tp[25] = c["H1"]
    h = bytearray(7)
    h2 = c["H2"] & 0xFFFF
    h[0] = h2 & 0xFF
    h[1] = h2 >> 8
    h[2] = c["H3"]
    h4 = c["H4"] & 0xFFF
    h5 = c["H5"] & 0xFFF
    h[3] = h4 >> 4
    h[4] = (h4 & 0x0F) | (h5 & 0x0F) << 4
    h[5] = h5 >> 4
    h[6] = c["H6"] & 0xFF
    return tp, h


class BME280Twin:
    """Bosch BME280 register file; a forced-mode write latches a fresh conversion."""

    def __init__(self, world, calib=None, chip_id=0x60):
        self.world = world
        self.c = calib or CALIB
        self.regs = bytearray(256)
        self.regs[0xD0] = chip_id
        tp, h = calib_bytes(self.c)
        self.regs[0x88:0x88 + 26] = tp
        self.regs[0xE1:0xE1 + 7] = h
        self.busy = 0

    def set_adc(self, adc_p, adc_t, adc_h):
        r = self.regs
        r[0xF7] = adc_p >> 12
        r[0xF8] = (adc_p >> 4) & 0xFF
        r[0xF9] = (adc_p & 0x0F) << 4
        r[0xFA] = adc_t >> 12
        r[0xFB] = (adc_t >> 4) & 0xFF
        r[0xFC] = (adc_t & 0x0F) << 4
        r[0xFD] = adc_h >> 8
        r[0xFE] = adc_h & 0xFF

    def adc_for(self, t_c, p_pa, rh):
        c = self.c
        adc_t = _invert(lambda a: float_t(c, a)[0], t_c, 0, 1 << 20, True)
        t_fine = float_t(c, adc_t)[1]
        adc_p = _invert(lambda a: float_p(c, a, t_fine), p_pa, 0, 1 << 20, False)
        adc_h = _invert(lambda a: float_h(c, a, t_fine), rh, 0, 1 << 16, True)
        return adc_p, adc_t, adc_h

    def _convert(self):
        w = self.world
        w.step()
        self.set_adc(*self.adc_for(w.temperature(), w.pressure() * 100.0, w.humidity()))

    def read_mem(self, reg, buf):
        if reg == 0xF3:
            buf[0] = 0x08 if self.busy > 0 else 0
            self.busy -= 1
            return
        n = len(buf)
        buf[0:n] = self.regs[reg:reg + n]

    def write_mem(self, reg, buf):
        self.regs[reg] = buf[0]
        if reg == 0xF4 and buf[0] & 0x03 == 0x01:  # forced mode
            self._convert()
            self.busy = 1  # "measuring" for one status read
            self.regs[0xF4] = buf[0] & 0xFC  # back to sleep mode


def pms_frame(pm1, pm25, pm10, counts=(0,) * 6):
    """One 32-byte PMS5003 frame; checksum = sum of bytes 0..29."""
    words = [28, pm1, pm25, pm10, pm1, pm25, pm10] + list(counts) + [0]
    f = bytearray(32)
    f[0] = 0x42
    f[1] = 0x4D
    for i, v in enumerate(words):
        f[2 + 2 * i] = v >> 8
        f[3 + 2 * i] = v & 0xFF
    s = sum(f[0:30])
    f[30] = s >> 8
    f[31] = s & 0xFF
    return f


class PMS5003Twin:
    """Active mode: a new frame every 1 s of simulated time, queued in the UART FIFO."""

    def __init__(self, world, fifo=64):
        self.world = world
        self.fifo = bytearray(fifo)
        self.n = 0
        self.last = -1e9
        self.garbage = True  # the first bytes seen after power-up are a partial frame

    def _fill(self):
        w = self.world
        now = w.now()
        if now - self.last < 1.0:
            return
        self.last = now
        w.step()
        a, b, c = w.pm_values()
        counts = (int(b * 60), int(b * 20), int(b * 4), int(b), int(b / 3), int(b / 10))
        f = pms_frame(int(a + 0.5), int(b + 0.5), int(c + 0.5), counts)
        if self.garbage:
            self.garbage = False
            f = f[20:] + f  # a torn frame in front, like a UART opened mid-stream
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


class YFS201Twin:
    """Turns the world's flow (L/min) into pulses on a fake pin, in real time."""

    def __init__(self, world, pin, pulses_per_litre=450):
        self.world = world
        self.pin = pin
        self.ppl = pulses_per_litre
        self.last = time.ticks_ms()
        self.frac = 0.0
        self.armed = False

    def pump(self):
        now = time.ticks_ms()
        dt = time.ticks_diff(now, self.last)
        if dt <= 0:
            return
        self.last = now
        if self.pin.handler is None or not self.armed:
            # nobody listening yet: those pulses are gone, like on real hardware
            self.armed = self.pin.handler is not None
            return
        self.world.step()
        pulses = self.world.flow * self.ppl / 60.0 * dt / 1000.0 + self.frac
        n = int(pulses)
        self.frac = pulses - n
        self.pin.pulse(n)
