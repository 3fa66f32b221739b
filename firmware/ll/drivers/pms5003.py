# Plantower PMS5003 particulate sensor on a UART (9600 8N1, active mode).
# Frame: 0x42 0x4D, frame length (=28), 13 data words, checksum = sum of bytes 0..29.
from micropython import const

_FRAME = const(32)
_MAX_SCAN = const(320)


def checksum(frame):
    s = 0
    for i in range(_FRAME - 2):
        s += frame[i]
    return s & 0xFFFF


class PMS5003:
    KIND = "pms5003"

    def __init__(self, uart):
        self.uart = uart
        self._frame = bytearray(_FRAME)
        self._mv = memoryview(self._frame)
        self._one = bytearray(1)
        self.pm1_0 = 0
        self.pm2_5 = 0
        self.pm10 = 0

    def _word(self, i):
        return self._frame[i] << 8 | self._frame[i + 1]

    def measure(self):
        """Decode the newest complete frame waiting in the UART; False if none."""
        got = False
        prev = 0
        scanned = 0
        uart = self.uart
        while uart.any() and scanned < _MAX_SCAN:
            scanned += 1
            if not uart.readinto(self._one, 1):
                break
            b = self._one[0]
            if prev != 0x42 or b != 0x4D:
                prev = b
                continue
            prev = 0
            self._frame[0] = 0x42
            self._frame[1] = 0x4D
            if uart.readinto(self._mv[2:_FRAME], _FRAME - 2) != _FRAME - 2:
                break  # a torn frame at the end of the buffer: the next call gets it whole
            if self._word(2) != 28 or checksum(self._frame) != self._word(30):
                continue
            # words 4..6: concentration under atmospheric environment (ug/m3)
            self.pm1_0 = self._word(10)
            self.pm2_5 = self._word(12)
            self.pm10 = self._word(14)
            got = True
        return got

    def write_values(self, w):
        w.key(b"pm1_0")
        w.int(self.pm1_0)
        w.key(b"pm2_5")
        w.int(self.pm2_5)
        w.key(b"pm10")
        w.int(self.pm10)
