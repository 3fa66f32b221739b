# Register-level twin of a Sensirion SHT4x: command bytes in, CRC'd words out. It
# inverts the datasheet formulas on the world's temperature and humidity.
from ll.drivers.crc8 import crc8


def _raw(v, offset, span):
    r = int((v + offset) * 65535 / span + 0.5)
    return 0 if r < 0 else 65535 if r > 65535 else r


class SHT4xTwin:
    def __init__(self, world, serial=0x0F2A3B4C):
        self.world = world
        self.serial = serial
        self.resp = bytearray(6)

    def _words(self, a, b):
        out = self.resp
        out[0] = a >> 8
        out[1] = a & 0xFF
        out[2] = crc8(out, 0, 2)
        out[3] = b >> 8
        out[4] = b & 0xFF
        out[5] = crc8(out, 3, 2)

    def write(self, buf):
        cmd = buf[0]
        w = self.world
        if cmd in (0xFD, 0xF6, 0xE0):  # high, medium, low repeatability
            w.step()
            self._words(_raw(w.temperature(), 45.0, 175.0), _raw(w.humidity(), 6.0, 125.0))
        elif cmd == 0x89:
            self._words(self.serial >> 16, self.serial & 0xFFFF)
        elif cmd != 0x94:  # soft reset: nothing to answer
            raise OSError(5)  # unknown command: NACK

    def read(self, buf):
        n = min(len(buf), len(self.resp))
        buf[0:n] = self.resp[0:n]


def attach_twin(board, spec, world):
    """Wire the twin where device.json says the sensor is (found by convention)."""
    board.i2c(spec.get("bus", "i2c0")).attach(spec.get("address", 0x44), SHT4xTwin(world))
