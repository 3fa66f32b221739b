# ruff: noqa: UP031, E402, BLE001 -- MicroPython code: no f-string niceties needed, path set up first
# Runs under the MicroPython unix port (NOT CPython): the update path of the firmware
# (ll/ota.py and the loader) on a littlefs2 file system over a RAM block device that
# loses power after k operations, for every k.
# Usage: micropython check_ota.py <firmware dir> [kill <dir> <step> | verify <dir>]
import sys

sys.path.insert(0, sys.argv[1])

import gc
import io
import os
import time

import loader
from harness import check, eq, run_all
from ll import ota
from ota_kit import Cfg, control, fetcher, install, manifest, nop, slot_is, version


# -- pure functions ------------------------------------------------------------
@check
def hmac_sha256_rfc4231():
    # RFC 4231 test case 2 and test case 6 (a key longer than the block)
    h = ota.Hmac(b"Jefe")
    h.update(b"what do ya want ")
    h.update(b"for nothing?")
    eq(ota.hexlify(h.digest()), b"5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843",
       "case 2")
    h = ota.Hmac(b"\xaa" * 131)
    h.update(b"Test Using Larger Than Block-Size Key - Hash Key First")
    eq(ota.hexlify(h.digest()), b"60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
       "case 6")


@check
def constant_time_equal():
    eq(ota.equal(b"abc", b"abc"), True)
    eq(ota.equal(b"abc", b"abd"), False)
    eq(ota.equal(b"abc", b"ab"), False)


@check
def versions_compare_as_numbers():
    eq(ota.vtuple("0.10.0") > ota.vtuple("0.9.9"), True, "0.10.0 > 0.9.9")
    eq(ota.vtuple("1.2"), (1, 2))
    for bad in ("", "1..2", "v1", "1.2.3.4.5", "1.-2", None, 3):
        eq(ota.vtuple(bad), None, repr(bad))


@check
def manifest_paths_are_confined():
    eq(ota.safe_path("ll/app.py"), True)
    eq(ota.safe_path("ll/drivers/bme280.mpy"), True)
    for bad in ("main.py", "loader.py", "/ll/x.py", "ll/../main.py", "ll/x.txt", "ll/a b.py",
                "boot.py", "ll//x.py"):
        eq(ota.safe_path(bad), False, bad)


# -- the update on a real littlefs2 --------------------------------------------------
class RamFlash:
    """A block device (the extended interface littlefs uses) whose power fails after
    ``fail_at`` program/erase operations: that one is torn (half written), every
    later read, program or erase fails, until ``power_on()``. Failures are returned as
    -EIO, never raised: a finaliser may call in while the heap is locked."""

    def __init__(self, blocks=160, size=512):
        self.size = size
        self.data = bytearray(blocks * size)
        self.ops = 0
        self.fail_at = 0
        self.dead = False

    def power_on(self):
        self.fail_at = 0
        self.dead = False

    def _op(self):
        """0: do it; 1: tear it (power fails now); -1: power is gone."""
        if self.dead:
            return -1
        self.ops += 1
        if self.fail_at and self.ops >= self.fail_at:
            self.dead = True
            return 1
        return 0

    def readblocks(self, n, buf, off=0):
        if self.dead:
            return -5
        a = n * self.size + off
        buf[:] = self.data[a:a + len(buf)]
        return 0

    def writeblocks(self, n, buf, off=None):
        if off is None:
            off = 0
            for i in range(len(buf) // self.size):
                if self.ioctl(6, n + i):
                    return -5
        a = n * self.size + off
        st = self._op()
        if st == 0:
            self.data[a:a + len(buf)] = buf
            return 0
        if st == 1:
            for i in range(len(buf) // 2):  # a torn program: the first half landed
                self.data[a + i] = buf[i]
        return -5

    def ioctl(self, op, arg):
        if op == 4:
            return len(self.data) // self.size
        if op == 5:
            return self.size
        if op == 6:
            a = arg * self.size
            st = self._op()
            if st == 0:
                for i in range(self.size):
                    self.data[a + i] = 0xFF
                return 0
            if st == 1:
                for i in range(self.size // 2):
                    self.data[a + i] = 0xFF
            return -5
        return 0


_FS = {}  # one VfsLfs2 per block device, mounted again on every "boot": a dropped one
# would be finalised by the GC, which calls the block device with the heap locked


def mount(bdev, mkfs=False):
    import vfs

    try:
        vfs.umount("/flash")
    except OSError:
        pass
    if mkfs:
        vfs.VfsLfs2.mkfs(bdev)
    fs = _FS.get(id(bdev))
    if fs is None:
        fs = _FS[id(bdev)] = vfs.VfsLfs2(bdev)
    vfs.mount(fs, "/flash")  # lfs2_mount: reads the state from the blocks again
    os.chdir("/flash")


OLD = version("0.1.0")
NEW = version("0.2.0", n=4, size=900)
NEW_MAN = manifest("0.2.0", NEW)


def sequence():
    """Stage, switch, boot the new slot (one try), confirm: what a device does."""
    u = ota.Ota(Cfg, "0.1.0", "unix", loader)
    if not u.apply(control("0.2.0", NEW_MAN), nop, nop, fetcher(NEW, NEW_MAN)):
        raise AssertionError("refused: %r" % u.state)
    s = loader.boot_state()  # the reset: the loader counts the try
    eq(s["slot"], "b", "booted slot")
    loader.confirm()


@check
def power_cut_at_every_operation_boots_old_or_new_complete():
    bdev = RamFlash()
    mount(bdev, mkfs=True)
    install(OLD)
    os.chdir("/")
    base = bytearray(bdev.data)
    bdev.ops = 0
    mount(bdev)
    sequence()  # a clean run: count the operations it takes
    total = bdev.ops
    seen = {"old": 0, "new": 0}
    for k in range(1, total + 1):
        bdev.data[:] = base
        bdev.ops = 0
        bdev.fail_at = k
        mount(bdev)
        try:
            sequence()
        except OSError:
            pass
        os.chdir("/")
        gc.collect()  # RAM is gone with the power: files left open die with it
        bdev.power_on()
        mount(bdev)  # the next boot
        s = loader.boot_state()
        if slot_is(s["slot"], NEW):
            seen["new"] += 1
        elif slot_is(s["slot"], OLD):
            seen["old"] += 1
        else:
            raise AssertionError("cut at op %d/%d: slot %s is neither version" % (k, total,
                                                                                s["slot"]))
    os.chdir("/")
    if not seen["old"] or not seen["new"]:
        raise AssertionError("every cut should not land on one side: %r" % seen)
    print("info powercut ops=%d old=%d new=%d" % (total, seen["old"], seen["new"]))


@check
def refusals_leave_the_running_slot_alone():
    bdev = RamFlash()
    mount(bdev, mkfs=True)
    install(OLD)
    cases = [
        ("wrong key", control("0.2.0", NEW_MAN, b"x" * 32), NEW, "not authenticated"),
        ("replay", control("0.1.0", manifest("0.1.0", OLD)), OLD, "not newer"),
        ("tampered", control("0.2.0", NEW_MAN), dict(NEW, **{"ll/app.py": b"evil" * 10}),
         "ll/app.py: size"),
    ]
    same_size = dict(NEW)
    data = bytearray(NEW["ll/m0.py"])
    data[5] ^= 1
    same_size["ll/m0.py"] = bytes(data)
    cases.append(("flipped bit", control("0.2.0", NEW_MAN), same_size, "sha256 mismatch"))
    for what, msg, files, reason in cases:
        u = ota.Ota(Cfg, "0.1.0", "unix", loader)
        man = NEW_MAN if files is not OLD else manifest("0.1.0", OLD)
        eq(u.apply(msg, nop, nop, fetcher(files, man)), False, what)
        got = loader.read_state()["update"]
        eq(got["state"], "refused", what)
        if reason not in got["reason"]:
            raise AssertionError("%s: reason %r" % (what, got["reason"]))
        eq(loader.read_state()["slot"], "a", what)
        eq("b" in os.listdir("app"), False, what + ": stage left behind")
    os.chdir("/")


@check
def rolls_back_after_max_tries():
    bdev = RamFlash()
    mount(bdev, mkfs=True)
    install(OLD)
    ota.Ota(Cfg, "0.1.0", "unix", loader).apply(control("0.2.0", NEW_MAN), nop, nop,
                                        fetcher(NEW, NEW_MAN))
    for i in range(loader.MAX_TRIES):
        eq(loader.boot_state()["slot"], "b", "try %d" % (i + 1))
    s = loader.boot_state()
    eq(s["slot"], "a", "rolled back")
    eq(s["update"]["state"], "rolled_back")
    eq(loader.boot_state()["slot"], "a", "stays back")
    os.chdir("/")


@check
def replay_does_not_reinstall_a_rolled_back_version():
    for keep in (True, False):  # the new loader keeps "bad"; an old one (in the field) not
        bdev = RamFlash()
        mount(bdev, mkfs=True)
        install(OLD)
        msg = control("0.2.0", NEW_MAN)
        eq(ota.Ota(Cfg, "0.1.0", "unix", loader).apply(msg, nop, nop, fetcher(NEW, NEW_MAN)),
           True, "first install")
        for _ in range(loader.MAX_TRIES + 1):
            s = loader.boot_state()
        eq(s["slot"], "a", "rolled back")
        if not keep:
            s.pop("bad", None)
            loader.write_state(s)
        # a forged message for another version in between: refused, and forgets nothing
        eq(ota.Ota(Cfg, "0.1.0", "unix", loader).apply(
            control("0.3.0", NEW_MAN, b"x" * 32), nop, nop, fetcher(NEW, NEW_MAN)), False)
        u = ota.Ota(Cfg, "0.1.0", "unix", loader)
        eq(u.apply(msg, nop, nop, fetcher(NEW, NEW_MAN)), False, "replayed")
        got = loader.read_state()
        eq(got["update"]["state"], "refused")
        if "rolled back here before" not in got["update"]["reason"]:
            raise AssertionError("reason %r" % got["update"]["reason"])
        eq(got["slot"], "a", "still the old slot")
        eq(loader.boot_state().get("pending"), None, "nothing staged")
        # a newer release still installs
        v3 = version("0.3.0")
        man3 = manifest("0.3.0", v3)
        eq(ota.Ota(Cfg, "0.1.0", "unix", loader).apply(control("0.3.0", man3), nop, nop,
                                                       fetcher(v3, man3)), True, "0.3.0")
        os.chdir("/")


@check
def download_heap_cost_is_small():
    bdev = RamFlash(blocks=400)
    mount(bdev, mkfs=True)
    install(OLD)
    big = version("0.3.0", n=20, size=4000)
    man = manifest("0.3.0", big)
    u = ota.Ota(Cfg, "0.1.0", "unix", loader)
    gc.collect()
    eq(u.apply(control("0.3.0", man), nop, nop, fetcher(big, man)), True)
    os.chdir("/")
    print("info heap_peak=%d" % u.heap_peak)
    if not 0 < u.heap_peak < 8192:
        raise AssertionError("download holds %d bytes of heap" % u.heap_peak)


# -- kill -9 at each step (VfsPosix: the host file system, the real process) ----------
def steps(d, stop):
    """The same sequence with a marker after each file system step; at ``stop`` it
    waits to be killed (SIGKILL from the test)."""
    os.chdir(d)
    n = [0]

    def mark():
        n[0] += 1
        if n[0] == stop:
            print("at", stop)
            while True:
                time.sleep(1)

    install(OLD)

    def fetch(name):
        mark()
        data = NEW_MAN if name == ota.MANIFEST else NEW[name]
        return io.BytesIO(data), len(data)

    u = ota.Ota(Cfg, "0.1.0", "unix", loader)
    eq(u.apply(control("0.2.0", NEW_MAN), mark, nop, fetch), True)
    mark()
    loader.boot_state()
    mark()
    loader.confirm()
    mark()
    print("done", n[0])


def verify(d):
    os.chdir(d)
    s = loader.boot_state()
    print("new" if slot_is(s["slot"], NEW) else "old" if slot_is(s["slot"], OLD) else "BROKEN")


if len(sys.argv) > 2 and sys.argv[2] == "kill":
    steps(sys.argv[3], int(sys.argv[4]))
elif len(sys.argv) > 2 and sys.argv[2] == "verify":
    verify(sys.argv[3])
else:
    run_all()
