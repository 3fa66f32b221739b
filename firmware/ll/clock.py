# Wall clock in epoch milliseconds, independent of the port's time epoch.
import time

_EPOCH_MS = 0 if time.gmtime(0)[0] == 1970 else 946684800000


class Clock:
    def __init__(self, is_set):
        self.is_set = is_set  # unix: always; boards: after the first NTP sync
        self._last = 0

    def epoch_ms(self):
        return time.time_ns() // 1000000 + _EPOCH_MS

    def sample_ms(self):
        """A sample time strictly after the previous one (one ms apart at least)."""
        t = self.epoch_ms()
        if t <= self._last:
            t = self._last + 1
        self._last = t
        return t


class Uptime:
    """Seconds since boot, immune to the 2^30 ms ticks wrap-around."""

    def __init__(self):
        self._t = time.ticks_ms()
        self._ms = 0

    def update(self):
        now = time.ticks_ms()
        self._ms += time.ticks_diff(now, self._t)
        self._t = now
        return self._ms // 1000
