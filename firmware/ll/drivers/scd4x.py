# Sensirion SCD4x (SCD40/SCD41) CO2 sensor on I2C, periodic measurement mode.
# Commands are 16-bit, big endian; every 16-bit word read carries a CRC-8.
import time

from micropython import const

from ll.drivers.crc8 import crc8

ADDRESS = const(0x62)
_START_PERIODIC = const(0x21B1)
_READ_MEASUREMENT = const(0xEC05)
_STOP_PERIODIC = const(0x3F86)
_DATA_READY = const(0xE4B8)
_SERIAL_NUMBER = const(0x3682)


class SCD4x:
    KIND = "scd41"

    def __init__(self, i2c, address=ADDRESS, stop_delay_ms=500):
        self.i2c = i2c
        self.address = address
        self._cmd = bytearray(2)
        self._rx = bytearray(9)
        self._rx3 = memoryview(self._rx)[0:3]
        self.co2 = 0
        self._t_raw = 0
        self._rh_raw = 0
        # A sensor left in periodic mode by the previous boot ignores other commands.
        self._send(_STOP_PERIODIC)
        time.sleep_ms(stop_delay_ms)
        self._send(_SERIAL_NUMBER)
        time.sleep_ms(1)
        self.i2c.readfrom_into(self.address, self._rx)
        self._check(3)  # our "chip id" check: a valid CRC'd serial number
        self._send(_START_PERIODIC)

    def _send(self, cmd):
        self._cmd[0] = cmd >> 8
        self._cmd[1] = cmd & 0xFF
        self.i2c.writeto(self.address, self._cmd)

    def _check(self, words):
        rx = self._rx
        for w in range(words):
            if crc8(rx, 3 * w, 2) != rx[3 * w + 2]:
                raise OSError(5)  # EIO: CRC mismatch

    def data_ready(self):
        self._send(_DATA_READY)
        time.sleep_ms(1)
        self.i2c.readfrom_into(self.address, self._rx3)
        self._check(1)
        return (self._rx[0] << 8 | self._rx[1]) & 0x07FF != 0

    def measure(self):
        """Read a new measurement; False (values unchanged) if none is ready yet."""
        if not self.data_ready():
            return False
        self._send(_READ_MEASUREMENT)
        time.sleep_ms(1)
        self.i2c.readfrom_into(self.address, self._rx)
        self._check(3)
        rx = self._rx
        self.co2 = rx[0] << 8 | rx[1]
        self._t_raw = rx[3] << 8 | rx[4]
        self._rh_raw = rx[6] << 8 | rx[7]
        return True

    def temperature_centi(self):
        """T = -45 + 175 * raw / 65535 degC, in 0.01 degC."""
        return -4500 + (17500 * self._t_raw + 32767) // 65535

    def humidity_centi(self):
        """RH = 100 * raw / 65535 %, in 0.01 %RH."""
        return (10000 * self._rh_raw + 32767) // 65535

    def write_values(self, w):
        w.key(b"co2")
        w.int(self.co2)
        w.key(b"temperature")
        w.fixed(self.temperature_centi(), 2)
        w.key(b"humidity")
        w.fixed(self.humidity_centi(), 2)
