# JSON into one preallocated bytearray: the telemetry payload is rebuilt in place
# every cycle instead of json.dumps() of fresh dicts (no per-sample garbage for
# integers; floats are written from scaled integers).
from micropython import const

AGE_WIDTH = const(14)  # "age" placeholder: right-aligned digits, patched at send time


class Writer:
    def __init__(self, size):
        self.buf = bytearray(size)
        self.mv = memoryview(self.buf)
        self.n = 0

    def reset(self):
        self.n = 0

    def byte(self, c):
        n = self.n
        if n >= len(self.buf):
            raise ValueError("payload buffer full")
        self.buf[n] = c
        self.n = n + 1

    def raw(self, b):
        n = self.n
        m = len(b)
        if n + m > len(self.buf):
            raise ValueError("payload buffer full")
        self.buf[n:n + m] = b
        self.n = n + m

    def int(self, v):
        if v < 0:
            self.byte(45)
            v = -v
        d = 1
        while d * 10 <= v:
            d *= 10
        while d:
            self.byte(48 + (v // d) % 10)
            d //= 10

    def fixed(self, v, decimals):
        """Write integer ``v`` scaled by 10**-decimals, e.g. fixed(2241, 2) -> 22.41."""
        if v < 0:
            self.byte(45)
            v = -v
        if not decimals:
            self.int(v)
            return
        p = 10 ** decimals
        self.int(v // p)
        self.byte(46)
        r = v % p
        p //= 10
        while p:
            self.byte(48 + (r // p) % 10)
            p //= 10

    def key(self, name):
        """``"name":`` with a leading comma unless it opens an object."""
        if self.buf[self.n - 1] != 123 and self.buf[self.n - 1] != 91:  # { [
            self.byte(44)
        self.byte(34)
        self.raw(name)
        self.byte(34)
        self.byte(58)

    def text(self, s):
        """A short string inside quotes already written; quotes, backslashes and control
        characters become ' (status text only: never on the telemetry path)."""
        for c in str(s).encode():
            self.byte(39 if c == 34 or c == 92 or c < 32 else c)

    def age_slot(self):
        """Reserve a fixed-width number; returns its offset for patch_age()."""
        off = self.n
        self.raw(b"             0")
        return off


def patch_age(buf, off, ms):
    """Write ``ms`` milliseconds as seconds, right-aligned in the AGE_WIDTH slot at ``off``."""
    if ms < 0:
        ms = 0
    i = off + AGE_WIDTH - 1
    frac = ms % 1000
    whole = ms // 1000
    for _ in range(3):
        buf[i] = 48 + frac % 10
        frac //= 10
        i -= 1
    buf[i] = 46
    i -= 1
    while True:
        buf[i] = 48 + whole % 10
        whole //= 10
        i -= 1
        if not whole or i < off:
            break
    while i >= off:
        buf[i] = 32
        i -= 1
