# YF-S201 hall-effect water flow sensor: one pulse per fixed volume, counted by a pin IRQ.
# Default 450 pulses per litre (flow L/min = Hz / 7.5); cumulative volume kept in a file.
import time


class YFS201:
    KIND = "yfs201"

    def __init__(self, pin, pulses_per_litre=450, state_path="yfs201.vol", save_every_ms=60000):
        self.pin = pin
        self.ppl = pulses_per_litre
        self.state_path = state_path
        self.save_every_ms = save_every_ms
        self._count = 0
        self.pulses = 0
        self.flow_milli = 0  # mL/min
        self.total_pulses = 0
        self._base_ml = self._load()
        self._last = time.ticks_ms()
        self._saved_at = self._last
        self._dirty = False
        # IRQ_RISING differs per port (esp32: 1, rp2: 8): take it from the pin's class
        pin.irq(handler=self._irq, trigger=pin.IRQ_RISING)

    def _irq(self, _pin):
        self._count += 1  # no allocation in the ISR

    def _load(self):
        try:
            with open(self.state_path) as f:
                return int(f.read())
        except (OSError, ValueError):
            return 0

    def volume_ml(self):
        return self._base_ml + int(self.total_pulses * 1000 // self.ppl)

    def save(self):
        tmp = self.state_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(str(self.volume_ml()))
        import os
        os.rename(tmp, self.state_path)
        self._dirty = False

    def measure(self, now=None):
        now = time.ticks_ms() if now is None else now
        n = self._count  # read then subtract: pulses arriving meanwhile are kept
        self._count -= n
        dt = time.ticks_diff(now, self._last)
        self._last = now
        self.pulses = n
        self.total_pulses += n
        # L/min = pulses / ppl / (dt / 60000 ms); in mL/min
        self.flow_milli = int(n * 60000000 // (self.ppl * dt)) if dt > 0 else 0
        if n:
            self._dirty = True
        if self._dirty and time.ticks_diff(now, self._saved_at) >= self.save_every_ms:
            self._saved_at = now
            self.save()
        return True

    def write_values(self, w):
        w.key(b"flow_rate")
        w.fixed(self.flow_milli, 3)
        w.key(b"volume")
        w.fixed(self.volume_ml(), 3)
