# ruff: noqa: UP031 -- MicroPython code: %-formatting on bytes
# Runs under the MicroPython unix port: synthetic firmware versions, signed manifests and
# control messages, and slot helpers for check_ota.py (the firmware dir is on sys.path).
import io
from hashlib import sha256

from ll import ota

KEY = b"k" * 32


class Cfg:
    ota_key = KEY


def version(v, n=3, size=700):
    """A synthetic application: ll/app.py, ll/version.py and n-1 more files."""
    files = {"ll/version.py": b'FW_VERSION = "%s"\n' % v.encode(),
             "ll/app.py": (b"# app %s\n" % v.encode()) * (size // 12)}
    for i in range(n - 1):
        files["ll/m%d.py" % i] = (b"# %s module %d\n" % (v.encode(), i)) * (size // 16)
    return files


def manifest(v, files, board="unix"):
    lines = [b"livinglab-ota 1", b"version " + v.encode(), b"board " + board.encode()]
    for name in sorted(files):
        data = files[name]
        lines.append(b"%s %d %s" % (ota.hexlify(sha256(data).digest()), len(data), name.encode()))
    return b"\n".join(lines) + b"\n"


def control(v, man, key=KEY):
    h = ota.Hmac(key)
    h.update(man)
    return b'{"version":"%s","url":"http://127.0.0.1:1/x/","mac":"%s"}' % (
        v.encode(), ota.hexlify(h.digest()))


def fetcher(files, man):
    def fetch(name):
        data = man if name == ota.MANIFEST else files[name]
        return io.BytesIO(data), len(data)

    return fetch


def nop():
    pass


def install(files, slot="a"):
    for name, data in files.items():
        ota.makedirs("app/%s/%s" % (slot, name[:name.rfind("/")]))
        with open("app/%s/%s" % (slot, name), "wb") as f:
            f.write(data)


def slot_is(slot, files):
    """Every file of ``files`` in the slot with exactly that content (extra: manifest only)."""
    for name, data in files.items():
        try:
            with open("app/%s/%s" % (slot, name), "rb") as f:
                if f.read() != data:
                    return False
        except OSError:
            return False
    return True
