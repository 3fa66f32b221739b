# Plantower PMS5003 particulate sensor on a UART (9600 8N1, active mode).
# Frame: 0x42 0x4D, frame length (=28), 13 data words, checksum = sum of bytes 0..29.
from micropython import const

_FRAME = const(32)
_MAX_SCAN = const(256)


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
        scanned = 0
        while self.uart.any() >= _FRAME and scanned < _MAX_SCAN:
            scanned += 1
            if not self.uart.readinto(self._one, 1) or self._one[0] != 0x42:
                continue
            self._frame[0] = 0x42
            if self.uart.readinto(self._mv[1:_FRAME], _FRAME - 1) != _FRAME - 1:
                raise OSError(5)
            if self._frame[1] != 0x4D or self._word(2) != 28:
                continue
            if checksum(self._frame) != self._word(30):
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
