# Sensirion SHT4x (SHT40/41/43/45) temperature and humidity on I2C, single shot.
# One command byte, then 6 bytes: T word + CRC-8, RH word + CRC-8 (datasheet 4.4-4.6).
import time

from micropython import const

from ll.drivers.crc8 import crc8

ADDRESS = const(0x44)
_MEASURE_HIGH = const(0xFD)  # high repeatability: 8.3 ms max
_SERIAL_NUMBER = const(0x89)
_SOFT_RESET = const(0x94)


class SHT4x:
    KIND = "sht4x"

    def __init__(self, i2c, address=ADDRESS, wait_ms=9):
        self.i2c = i2c
        self.address = address
        self.wait_ms = wait_ms
        self._cmd = bytearray(1)
        self._rx = bytearray(6)
        self._t_raw = 0
        self._rh_raw = 0
        self._send(_SOFT_RESET)
        time.sleep_ms(1)
        self._send(_SERIAL_NUMBER)
        time.sleep_ms(1)
        self.i2c.readfrom_into(self.address, self._rx)
        self._check()  # our "chip id" check: a valid CRC'd serial number

    def _send(self, cmd):
        self._cmd[0] = cmd
        self.i2c.writeto(self.address, self._cmd)

    def _check(self):
        rx = self._rx
        if crc8(rx, 0, 2) != rx[2] or crc8(rx, 3, 2) != rx[5]:
            raise OSError(5)  # EIO: CRC mismatch

    def measure(self):
        self._send(_MEASURE_HIGH)
        time.sleep_ms(self.wait_ms)
        self.i2c.readfrom_into(self.address, self._rx)
        self._check()
        rx = self._rx
        self._t_raw = rx[0] << 8 | rx[1]
        self._rh_raw = rx[3] << 8 | rx[4]
        return True

    def temperature_centi(self):
        """T = -45 + 175 * raw / 65535 degC, in 0.01 degC."""
        return -4500 + (17500 * self._t_raw + 32767) // 65535

    def humidity_centi(self):
        """RH = -6 + 125 * raw / 65535 %, cropped to 0..100 (datasheet 4.6), in 0.01 %RH."""
        rh = -600 + (12500 * self._rh_raw + 32767) // 65535
        return 0 if rh < 0 else 10000 if rh > 10000 else rh

    def write_values(self, w):
        w.key(b"temperature")
        w.fixed(self.temperature_centi(), 2)
        w.key(b"humidity")
        w.fixed(self.humidity_centi(), 2)


def open_sensor(board, spec, cfg):
    """device.json entry -> driver (found by convention: ll/drivers/<kind>.py)."""
    return SHT4x(board.i2c(spec.get("bus", "i2c0")), spec.get("address", ADDRESS))
