# Bosch BME280 temperature / pressure / humidity sensor on I2C, forced mode.
# Compensation: the datasheet's integer formulas (section 4.2.3): T in 0.01 degC,
# P with the 64-bit version in Pa/256, H in %RH/1024.
import time

from micropython import const

ADDRESS = const(0x76)
_CHIP_ID = const(0xD0)
_BME280_ID = const(0x60)
_CALIB_TP = const(0x88)  # 0x88..0xA1, 26 bytes
_CALIB_H = const(0xE1)  # 0xE1..0xE7, 7 bytes
_CTRL_HUM = const(0xF2)
_STATUS = const(0xF3)
_CTRL_MEAS = const(0xF4)
_DATA = const(0xF7)  # 0xF7..0xFE, 8 bytes
_FORCED_X1 = const(0x25)  # osrs_t=1, osrs_p=1, mode=forced
_MEASURING = const(0x08)


def _u16(b, i):
    return b[i] | b[i + 1] << 8


def _s16(b, i):
    v = b[i] | b[i + 1] << 8
    return v - 65536 if v & 0x8000 else v


def _s8(v):
    return v - 256 if v & 0x80 else v


def compensate_t(c, adc_t):
    """Returns (T in 0.01 degC, t_fine)."""
    t1, t2, t3 = c[0], c[1], c[2]
    var1 = (((adc_t >> 3) - (t1 << 1)) * t2) >> 11
    var2 = (((((adc_t >> 4) - t1) * ((adc_t >> 4) - t1)) >> 12) * t3) >> 14
    t_fine = var1 + var2
    return (t_fine * 5 + 128) >> 8, t_fine


def compensate_p(c, adc_p, t_fine):
    """Pressure in Pa as unsigned Q24.8 (divide by 256), 64-bit datasheet version."""
    p1, p2, p3, p4, p5, p6, p7, p8, p9 = c[3], c[4], c[5], c[6], c[7], c[8], c[9], c[10], c[11]
    var1 = t_fine - 128000
    var2 = var1 * var1 * p6
    var2 = var2 + ((var1 * p5) << 17)
    var2 = var2 + (p4 << 35)
    var1 = ((var1 * var1 * p3) >> 8) + ((var1 * p2) << 12)
    var1 = (((1 << 47) + var1) * p1) >> 33
    if var1 == 0:
        return 0
    p = 1048576 - adc_p
    num = ((p << 31) - var2) * 3125
    p = abs(num) // var1  # C division truncates toward zero
    if num < 0:
        p = -p
    var1 = (p9 * (p >> 13) * (p >> 13)) >> 25
    var2 = (p8 * p) >> 19
    return ((p + var1 + var2) >> 8) + (p7 << 4)


def compensate_h(c, adc_h, t_fine):
    """Humidity in %RH as unsigned Q22.10 (divide by 1024)."""
    h1, h2, h3, h4, h5, h6 = c[12], c[13], c[14], c[15], c[16], c[17]
    v = t_fine - 76800
    v = ((((adc_h << 14) - (h4 << 20) - (h5 * v)) + 16384) >> 15) * \
        (((((((v * h6) >> 10) * (((v * h3) >> 11) + 32768)) >> 10) + 2097152) * h2 + 8192) >> 14)
    v = v - (((((v >> 15) * (v >> 15)) >> 7) * h1) >> 4)
    if v < 0:
        v = 0
    if v > 419430400:
        v = 419430400
    return v >> 12


def parse_calibration(tp, h):
    """Calibration words from the raw 0x88..0xA1 (26 bytes) and 0xE1..0xE7 (7 bytes) blocks."""
    c = [_u16(tp, 0), _s16(tp, 2), _s16(tp, 4), _u16(tp, 6)]
    for i in range(8, 24, 2):
        c.append(_s16(tp, i))
    c.append(tp[25])  # H1 at 0xA1
    c.append(_s16(h, 0))  # H2
    c.append(h[2])  # H3
    c.append(_s8(h[3]) * 16 | (h[4] & 0x0F))  # H4: 0xE4[11:4] 0xE5[3:0]
    c.append(_s8(h[5]) * 16 | (h[4] >> 4))  # H5: 0xE6[11:4] 0xE5[7:4]
    c.append(_s8(h[6]))  # H6
    return c


class BME280:
    KIND = "bme280"

    def __init__(self, i2c, address=ADDRESS):
        self.i2c = i2c
        self.address = address
        self._b1 = bytearray(1)
        self._data = bytearray(8)
        self.i2c.readfrom_mem_into(address, _CHIP_ID, self._b1)
        if self._b1[0] != _BME280_ID:
            raise OSError(19)  # ENODEV: not a BME280 (a BMP280 answers 0x58)
        tp = bytearray(26)
        h = bytearray(7)
        self.i2c.readfrom_mem_into(address, _CALIB_TP, tp)
        self.i2c.readfrom_mem_into(address, _CALIB_H, h)
        self.calib = parse_calibration(tp, h)
        self._b1[0] = 0x01  # humidity oversampling x1 (applies at the next ctrl_meas write)
        self.i2c.writeto_mem(address, _CTRL_HUM, self._b1)
        self.t_centi = 0
        self.p_q8 = 0
        self.h_q10 = 0

    def measure(self):
        self._b1[0] = _FORCED_X1
        self.i2c.writeto_mem(self.address, _CTRL_MEAS, self._b1)
        for _ in range(50):  # a x1/x1/x1 conversion takes ~10 ms
            self.i2c.readfrom_mem_into(self.address, _STATUS, self._b1)
            if not self._b1[0] & _MEASURING:
                break
            time.sleep_ms(2)
        else:
            raise OSError(110)  # ETIMEDOUT
        d = self._data
        self.i2c.readfrom_mem_into(self.address, _DATA, d)
        adc_p = d[0] << 12 | d[1] << 4 | d[2] >> 4
        adc_t = d[3] << 12 | d[4] << 4 | d[5] >> 4
        adc_h = d[6] << 8 | d[7]
        self.t_centi, t_fine = compensate_t(self.calib, adc_t)
        self.p_q8 = compensate_p(self.calib, adc_p, t_fine)
        self.h_q10 = compensate_h(self.calib, adc_h, t_fine)
        return True

    def write_values(self, w):
        w.key(b"temperature")
        w.fixed(self.t_centi, 2)
        w.key(b"pressure")
        w.fixed((self.p_q8 * 100 // 256 + 50) // 100, 2)  # Pa -> hPa with 2 decimals
        w.key(b"humidity")
        w.fixed((self.h_q10 * 100 + 512) // 1024, 2)
