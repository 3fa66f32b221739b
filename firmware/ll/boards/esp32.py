# ESP32 (WROOM/WROVER DevKit). Pin map: see docs/firmware.md.
from ll.net import RealBoard


class Board(RealBoard):
    name = "esp32"
    WDT_MS = 30000
    # bus -> (id, sda, scl)
    I2C = {"i2c0": (0, 21, 22), "i2c1": (1, 25, 26)}
    # uart id -> (tx, rx); UART1's default pins are the SPI flash, so remap
    UART = {1: (17, 16), 2: (4, 5)}
