# Wi-Fi station with capped exponential backoff and jitter, plus NTP sync, for the
# real boards. Non-blocking: the app loop calls ready() every pass, so the watchdog
# keeps being fed and a bad access point never turns into a reboot loop.
import os
import time

_BACKOFF_MIN_MS = 2000
_BACKOFF_MAX_MS = 60000
_NTP_RETRY_MS = 60000
_NTP_RESYNC_MS = 6 * 3600 * 1000


def jitter(ms):
    """ms +- 25 %, from the hardware RNG (no random module state needed)."""
    r = os.urandom(1)[0]  # 0..255
    return ms * 3 // 4 + ms * r // 512


class Wifi:
    def __init__(self, ssid, password):
        import network

        self.ssid = ssid
        self.password = password
        self.wlan = network.WLAN(network.STA_IF)
        self.wlan.active(True)
        self.backoff = _BACKOFF_MIN_MS
        self.next_try = time.ticks_ms()
        self.was_up = False

    def ready(self, now):
        if self.wlan.isconnected():
            if not self.was_up:
                self.was_up = True
                self.backoff = _BACKOFF_MIN_MS
            return True
        self.was_up = False
        if time.ticks_diff(now, self.next_try) >= 0:
            try:
                self.wlan.disconnect()
            except OSError:
                pass
            self.wlan.connect(self.ssid, self.password)
            self.next_try = time.ticks_add(now, jitter(self.backoff))
            self.backoff = min(self.backoff * 2, _BACKOFF_MAX_MS)
        return False

    def ip(self):
        try:
            return self.wlan.ifconfig()[0]
        except OSError:
            return "0.0.0.0"

    def rssi(self):
        try:
            return self.wlan.status("rssi")
        except (OSError, ValueError):
            return 0


class Ntp:
    def __init__(self, host, clock):
        self.host = host
        self.clock = clock
        self.next_try = time.ticks_ms()

    def service(self, now):
        if time.ticks_diff(now, self.next_try) < 0:
            return
        import ntptime

        ntptime.host = self.host
        try:
            ntptime.settime()
        except (OSError, OverflowError, IndexError):
            self.next_try = time.ticks_add(now, _NTP_RETRY_MS)
            return
        self.clock.is_set = True
        self.next_try = time.ticks_add(now, _NTP_RESYNC_MS)


class RealBoard:
    """What pico_w and esp32 share: Wi-Fi, NTP, watchdog. Subclasses give pin maps."""

    name = "?"
    has_wdt = True
    WDT_MS = 8000
    I2C = {}  # type: dict[str, tuple[int, int, int]]
    UART = {}  # type: dict[int, tuple[int, int]]

    def __init__(self, cfg):
        from ll.clock import Clock

        self.speed = 1.0
        self.clock = Clock(False)
        self._i2c = {}
        self._uart = {}
        self.wifi = None if cfg.serial else Wifi(cfg.wifi_ssid, cfg.wifi_password)
        self.ntp = Ntp(cfg.ntp_host, self.clock)
        from machine import WDT

        self.wdt = WDT(timeout=self.WDT_MS)

    def i2c(self, bus="i2c0"):
        b = self._i2c.get(bus)
        if b is None:
            from machine import I2C, Pin

            n, sda, scl = self.I2C[bus]
            b = self._i2c[bus] = I2C(n, sda=Pin(sda), scl=Pin(scl), freq=100000)
        return b

    def uart(self, n=1):
        u = self._uart.get(n)
        if u is None:
            from machine import UART

            tx, rx = self.UART[n]
            u = self._uart[n] = UART(n, baudrate=9600, tx=tx, rx=rx, rxbuf=256, timeout=100)
        return u

    def pin(self, n):
        from machine import Pin

        return Pin(n, Pin.IN, Pin.PULL_UP)

    def adc(self, n):
        from machine import ADC, Pin

        return ADC(Pin(n))

    def tick(self):
        pass

    def net_ready(self, now):
        if self.wifi is None:
            return False
        up = self.wifi.ready(now)
        if up:
            self.ntp.service(now)
        return up

    def ip(self):
        return self.wifi.ip() if self.wifi else ""

    def rssi(self):
        return self.wifi.rssi() if self.wifi else 0

    def wdt_feed(self):
        self.wdt.feed()

    def sleep_ms(self, ms):
        time.sleep_ms(ms)
