# Raspberry Pi Pico W (rp2, CYW43 Wi-Fi). Pin map: see docs/firmware.md.
from ll.net import RealBoard


class Board(RealBoard):
    name = "pico_w"
    WDT_MS = 8000  # rp2 maximum is 8388 ms
    # bus -> (id, sda, scl)
    I2C = {"i2c0": (0, 4, 5), "i2c1": (1, 6, 7)}
    # uart id -> (tx, rx)
    UART = {0: (0, 1), 1: (8, 9)}
