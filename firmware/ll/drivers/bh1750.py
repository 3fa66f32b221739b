# ROHM BH1750FVI ambient light sensor, continuous high-resolution mode.
import time

from micropython import const

ADDRESS = const(0x23)
_POWER_ON = const(0x01)
_CONT_HRES = const(0x10)


class BH1750:
    KIND = "bh1750"

    def __init__(self, i2c, address=ADDRESS, settle_ms=180):
        self.i2c = i2c
        self.address = address
        self._cmd = bytearray(1)
        self._rx = bytearray(2)
        self.raw = 0
        # No chip id register: a powered-on device that ACKs its address is our check.
        self._send(_POWER_ON)
        self._send(_CONT_HRES)
        time.sleep_ms(settle_ms)  # first H-res conversion takes up to 180 ms

    def _send(self, cmd):
        self._cmd[0] = cmd
        self.i2c.writeto(self.address, self._cmd)

    def measure(self):
        self.i2c.readfrom_into(self.address, self._rx)
        self.raw = self._rx[0] << 8 | self._rx[1]
        return True

    def lux_centi(self):
        """lux = raw / 1.2 (H-res mode, MTreg default 69), in 0.01 lx."""
        return (self.raw * 1000 + 6) // 12

    def write_values(self, w):
        w.key(b"illuminance")
        w.fixed(self.lux_centi(), 2)
