# A believable building: office occupancy drives CO2 and temperature, the sun drives
# light, taps open in bursts. Values are a function of simulated local time plus
# seeded noise, so a seed reproduces a run. Time may run faster than the wall
# clock (sim speed) so a day passes quickly in tests.
import math
import random
import time

_DAY = 86400.0


class World:
    def __init__(self, seed=1, profile="office", speed=1.0, tz_h=1.0, start=None):
        self.rng = random.Random(seed) if hasattr(random, "Random") else None
        if self.rng is None:
            random.seed(seed)
        self.profile = profile
        self.speed = speed
        self.tz_s = tz_h * 3600.0
        self.t0 = time.time() if start is None else start
        self.tick0 = time.ticks_ms()
        self.t = self.t0
        self.co2 = 430.0
        self.temp_drift = 0.0
        self.rh_drift = 0.0
        self.pm = 6.0
        self.flow = 0.0
        self.flow_left = 0.0
        self._stepped = self.t0

    def rand(self):
        return self.rng.random() if self.rng is not None else random.random()

    def gauss(self, sigma):
        # sum of uniforms: cheap approximation of a normal distribution
        return (self.rand() + self.rand() + self.rand() - 1.5) * 2.0 * sigma

    def now(self):
        """Simulated epoch seconds (the wall clock when speed is 1)."""
        return self.t0 + time.ticks_diff(time.ticks_ms(), self.tick0) / 1000.0 * self.speed

    def hour(self, t=None):
        t = self.t if t is None else t
        return ((t + self.tz_s) % _DAY) / 3600.0

    def weekday(self, t=None):
        t = self.t if t is None else t
        return int((t + self.tz_s) // _DAY + 3) % 7  # 1970-01-01 was a Thursday (3)

    def occupancy(self):
        h = self.hour()
        if self.profile == "home":
            return 0.8 if h < 8 or h > 18 else 0.2
        if self.weekday() >= 5 or h < 8 or h > 18:
            return 0.0
        return max(0.0, math.sin(math.pi * (h - 8) / 10)) * (0.9 if 12 <= h < 13 else 1.0)

    def sun(self):
        h = self.hour()
        return max(0.0, math.sin(math.pi * (h - 6) / 12)) if 6 < h < 18 else 0.0

    def step(self):
        """Advance the state to the current simulated time."""
        t = self.now()
        dt = t - self._stepped
        if dt <= 0:
            return
        self._stepped = t
        self.t = t
        occ = self.occupancy()
        target = 420.0 + 900.0 * occ
        k = min(1.0, dt / 1800.0)  # ~30 min time constant (ventilation)
        self.co2 += (target - self.co2) * k + self.gauss(3.0)
        self.temp_drift = max(-1.5, min(1.5, self.temp_drift + self.gauss(0.02) * min(dt, 60)))
        self.rh_drift = max(-8.0, min(8.0, self.rh_drift + self.gauss(0.05) * min(dt, 60)))
        self.pm = max(1.0, self.pm + (6.0 - self.pm) * min(1.0, dt / 600.0) + self.gauss(0.5))
        if self.rand() < 0.002 * min(dt, 300):
            self.pm += 20.0 * self.rand()  # someone burnt the toast
        if self.flow_left > 0:
            self.flow_left -= dt
            if self.flow_left <= 0:
                self.flow = 0.0
        elif self.rand() < (0.01 + 0.03 * occ) * min(dt, 30):
            self.flow = 4.0 + 10.0 * self.rand()  # L/min
            self.flow_left = 10.0 + 50.0 * self.rand()

    # -- physical quantities ----------------------------------------------
    def temperature(self):
        h = self.hour()
        return 20.5 + 1.5 * self.occupancy() + 0.8 * math.sin(2 * math.pi * (h - 9) / 24) \
            + self.temp_drift

    def humidity(self):
        return max(5.0, min(95.0, 45.0 - 4.0 * math.sin(2 * math.pi * (self.hour() - 9) / 24)
                            + 3.0 * self.occupancy() + self.rh_drift))

    def pressure(self):
        return 1013.0 + 6.0 * math.sin(2 * math.pi * self.t / (3.3 * _DAY))

    def lux(self):
        inside = 600.0 * self.sun() + (350.0 if self.occupancy() > 0.05 else 0.0)
        return max(0.0, inside + self.gauss(5.0))

    def pm_values(self):
        pm25 = max(0.0, self.pm + self.gauss(0.7))
        return pm25 * 0.7, pm25, pm25 * 1.4 + self.rand()

    def rssi(self):
        return -58 + int(self.gauss(3.0))
