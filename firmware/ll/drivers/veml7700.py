# Vishay VEML7700 ambient light sensor on I2C: 16-bit little-endian registers.
# Configured for gain x1, integration time 100 ms: 0.0576 lx per count.
from micropython import const

ADDRESS = const(0x10)
_ALS_CONF = const(0x00)
_ALS = const(0x04)
_ID = const(0x07)
_DEVICE_ID = const(0x81)  # low byte of register 0x07
_CONF_X1_100MS_ON = const(0x0000)  # ALS_GAIN=00 (x1), ALS_IT=0000 (100 ms), ALS_SD=0 (on)


class VEML7700:
    KIND = "veml7700"

    def __init__(self, i2c, address=ADDRESS):
        self.i2c = i2c
        self.address = address
        self._b2 = bytearray(2)
        self.raw = 0
        i2c.readfrom_mem_into(address, _ID, self._b2)
        if self._b2[0] != _DEVICE_ID:
            raise OSError(19)  # ENODEV: not a VEML7700
        self._b2[0] = _CONF_X1_100MS_ON & 0xFF
        self._b2[1] = _CONF_X1_100MS_ON >> 8
        i2c.writeto_mem(address, _ALS_CONF, self._b2)

    def measure(self):
        self.i2c.readfrom_mem_into(self.address, _ALS, self._b2)
        self.raw = self._b2[0] | self._b2[1] << 8
        return True

    def lux_centi(self):
        """lux = raw * 0.0576 (gain x1, IT 100 ms), in 0.01 lx."""
        return self.raw * 576 // 100

    def write_values(self, w):
        w.key(b"illuminance")
        w.fixed(self.lux_centi(), 2)
