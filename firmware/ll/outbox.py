# Offline buffer: RAM slots first, then an append-only file with a byte quota.
# Order is strictly oldest first: once anything is in the file, new records go to
# the file too. A record leaves only via pop(token) after its PUBACK; the quota
# drops the oldest file records and counts them in `dropped`.
import os
import struct

from micropython import const

_HDR = const(10)  # u16 length, u8 flags, u8 spare, i16 age offset, u32 sample ticks_ms
_F_AGE = const(1)  # payload has an "age" slot to patch at send time
_MAX = const(1024)  # the largest record: ll/app.py's telemetry writer is 1 KiB


def _size(path):
    try:
        return os.stat(path)[6]
    except OSError:
        return 0


def _remove(path):
    try:
        os.remove(path)
    except OSError:
        pass


class Outbox:
    def __init__(self, path, quota, slots=8, slot_size=1024):
        self.path = path
        self._pos_path = path + ".pos"
        self.quota = quota
        self.dropped = 0
        self._slots = [bytearray(slot_size) for _ in range(slots)]
        self._len = [0] * slots
        self._age = [-1] * slots  # offset of the age slot, -1 when the payload has ts
        self._tick = [0] * slots  # ticks_ms of the sample (for age)
        self._head = 0
        self._count = 0
        self._hdr = bytearray(_HDR)
        self._buf = bytearray(slot_size if slot_size > _MAX else _MAX)
        self._mv = memoryview(self._buf)
        self._cached = -1  # file offset whose record is in _buf
        self._clen = 0
        self._cage = -1
        self._ctick = 0
        self._fhead = 0
        self._fend = 0
        self._boot_end = 0
        self._load()

    # -- state -----------------------------------------------------------
    def _load(self):
        end = _size(self.path)
        head = 0
        try:
            with open(self._pos_path) as f:
                head = int(f.read())
        except (OSError, ValueError):
            head = 0
        # Walk the records to find the last complete one (a power cut may cut the tail).
        off = head
        if end:
            with open(self.path, "rb") as f:
                while off + _HDR <= end:
                    f.seek(off)
                    f.readinto(self._hdr)
                    ln = self._hdr[0] << 8 | self._hdr[1]
                    if ln == 0 or ln > len(self._buf) or off + _HDR + ln > end:
                        break
                    off += _HDR + ln
        if off <= head:
            _remove(self.path)
            _remove(self._pos_path)
            head = off = 0
        self._fhead = head
        self._fend = off
        self._boot_end = off
        if off < end:
            self._compact()  # drop a torn tail, or later appends would land behind it

    def __len__(self):
        return self._count + (1 if self._fend > self._fhead else 0)

    def empty(self):
        return self._count == 0 and self._fend <= self._fhead

    def file_bytes(self):
        return self._fend - self._fhead

    # -- put -------------------------------------------------------------
    def put(self, buf, n, age_off=-1, tick=0):
        if self._fend <= self._fhead and self._count < len(self._slots) \
                and n <= len(self._slots[0]):
            i = (self._head + self._count) % len(self._slots)
            self._slots[i][0:n] = memoryview(buf)[0:n]
            self._len[i] = n
            self._age[i] = age_off
            self._tick[i] = tick
            self._count += 1
            return
        self._append(buf, n, age_off, tick)

    def _append(self, buf, n, age_off, tick):
        rec = _HDR + n
        if rec > self.quota or n > len(self._buf):
            self.dropped += 1
            return
        while self._fend - self._fhead + rec > self.quota:
            self._drop_file_head()
        if self._fhead and self._fhead >= self.quota // 2:
            self._compact()
        h = self._hdr
        struct.pack_into(">HBBhI", h, 0, n, _F_AGE if age_off >= 0 else 0, 0, age_off, tick)
        with open(self.path, "ab") as f:
            f.write(h)
            f.write(memoryview(buf)[0:n])
        self._fend += rec

    def _read_hdr(self, off):
        with open(self.path, "rb") as f:
            f.seek(off)
            f.readinto(self._hdr)
        return self._hdr[0] << 8 | self._hdr[1]

    def _drop_file_head(self):
        ln = self._read_hdr(self._fhead)
        self._fhead += _HDR + ln
        self.dropped += 1
        self._cached = -1
        self._save_pos()

    def _compact(self):
        tmp = self.path + ".tmp"
        mv = self._mv
        with open(self.path, "rb") as src:
            src.seek(self._fhead)
            with open(tmp, "wb") as dst:
                left = self._fend - self._fhead
                while left:
                    k = src.readinto(mv[0:left if left < len(mv) else len(mv)])
                    if not k:
                        break
                    dst.write(mv[0:k])
                    left -= k
        os.rename(tmp, self.path)
        self._boot_end = max(0, self._boot_end - self._fhead)
        self._fend -= self._fhead
        self._fhead = 0
        self._cached = -1
        self._save_pos()

    def _save_pos(self):
        with open(self._pos_path, "w") as f:
            f.write(str(self._fhead))

    # -- get -------------------------------------------------------------
    def peek(self):
        """Oldest record as (token, memoryview, length, age_offset, tick) or None."""
        if self._count:
            i = self._head
            return -1 - i, memoryview(self._slots[i]), self._len[i], self._age[i], self._tick[i]
        while self._fend > self._fhead:
            off = self._fhead
            if self._cached != off:
                with open(self.path, "rb") as f:
                    f.seek(off)
                    f.readinto(self._hdr)
                    ln = self._hdr[0] << 8 | self._hdr[1]
                    f.readinto(self._mv[0:ln])
                self._cached = off
                self._clen = ln
                self._cage = struct.unpack_from(">h", self._hdr, 4)[0] \
                    if self._hdr[2] & _F_AGE else -1
                self._ctick = struct.unpack_from(">I", self._hdr, 6)[0]
            if self._cage >= 0 and off < self._boot_end:
                # an "age" sample from an earlier boot: its time is unknowable now
                self._drop_file_head()
                continue
            return off, self._mv, self._clen, self._cage, self._ctick
        return None

    def pop(self, token):
        """Forget the record ``token`` (from peek) once acknowledged; no-op if already gone."""
        if token < 0:
            if self._count and token == -1 - self._head:
                self._head = (self._head + 1) % len(self._slots)
                self._count -= 1
            return
        if token != self._fhead or self._fend <= self._fhead:
            return
        self._fhead += _HDR + self._clen if self._cached == token else _HDR + self._read_hdr(token)
        self._cached = -1
        if self._fhead >= self._fend:
            _remove(self.path)
            _remove(self._pos_path)
            self._fhead = self._fend = self._boot_end = 0
        else:
            self._save_pos()
