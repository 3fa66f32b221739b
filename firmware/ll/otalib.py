# The pieces of an update that need no state: HMAC-SHA256, version order, manifest
# path rules, streaming copy with a digest, plain HTTP/1.0 GET, file tree helpers.
# Split from ll/ota.py so each compiles in a small heap (both load only for an update).
import os
import socket

from hashlib import sha256


class Refused(Exception):
    """The update is not taken; the message is the reason reported in the status."""


def vtuple(v):
    """'1.10.2' -> (1, 10, 2): versions compare as numbers, never as strings."""
    if not isinstance(v, str) or not 0 < len(v) <= 20:
        return None
    out = []
    for part in v.split("."):
        if not part or not part.isdigit() or len(part) > 6:
            return None
        out.append(int(part))
    return tuple(out) if len(out) <= 4 else None


class Hmac:
    """HMAC-SHA256 (RFC 2104), streamed: micropython-lib's hmac defaults to MD5."""

    def __init__(self, key):
        if len(key) > 64:
            key = sha256(key).digest()
        pad = bytearray(64)
        pad[0:len(key)] = key
        for i in range(64):
            pad[i] ^= 0x36
        self.inner = sha256(pad)
        for i in range(64):
            pad[i] ^= 0x36 ^ 0x5C
        self.opad = pad

    def update(self, b):
        self.inner.update(b)

    def digest(self):
        outer = sha256(self.opad)
        outer.update(self.inner.digest())
        return outer.digest()


def equal(a, b):
    """Constant-time comparison of two byte strings of the same length."""
    if len(a) != len(b):
        return False
    r = 0
    for i in range(len(a)):
        r |= a[i] ^ b[i]
    return r == 0


def safe_path(p):
    """A manifest path: relative, under ll/, plain characters, .py or .mpy."""
    if not p.startswith("ll/") or ".." in p or "//" in p or len(p) > 64:
        return False
    if not (p.endswith(".py") or p.endswith(".mpy")):
        return False
    for c in p:
        if not (c.isalpha() or c.isdigit() or c in "_-./"):
            return False
    return True


def rmtree(path):
    try:
        entries = list(os.ilistdir(path))
    except OSError:
        return
    for e in entries:
        p = path + "/" + e[0]
        if e[1] == 0x4000:
            rmtree(p)
        else:
            os.remove(p)
    os.rmdir(path)


def makedirs(path):
    p = ""
    for part in path.split("/"):
        p = part if not p else p + "/" + part
        try:
            os.mkdir(p)
        except OSError:
            pass  # exists


def free_bytes(path):
    st = os.statvfs(path)
    return st[0] * st[4]


class Http:
    """GET over plain HTTP/1.0 from the gateway host, one connection per file."""

    def __init__(self, url):
        if not url.startswith("http://"):
            raise Refused("url must be http://")
        rest = url[7:]
        i = rest.find("/")
        hostport = rest if i < 0 else rest[:i]
        self.base = "/" if i < 0 else rest[i:]
        if not self.base.endswith("/"):
            self.base += "/"
        host, _, port = hostport.partition(":")
        self.host = hostport
        self.addr = socket.getaddrinfo(host, int(port) if port else 80, 0,
                                       socket.SOCK_STREAM)[0][-1]

    def get(self, name):
        """Open ``base + name``; returns (socket, content length)."""
        s = socket.socket()
        try:
            s.settimeout(5)
            s.connect(self.addr)
            s.write(b"GET " + (self.base + name).encode() + b" HTTP/1.0\r\nHost: "
                    + self.host.encode() + b"\r\n\r\n")
            line = s.readline()
            if b" 200 " not in line:
                raise Refused(("%s: http %s" % (name, line[9:12].decode()))[:80])
            length = -1
            while True:
                line = s.readline()
                if not line or line == b"\r\n":
                    break
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            return s, length
        except BaseException:
            s.close()
            raise


def pull(src, dst, size, digest, buf, feed, name):
    """Copy exactly ``size`` bytes from src.readinto to dst.write in chunks, feeding
    ``digest`` (sha256 or Hmac) and the watchdog as it goes."""
    mv = memoryview(buf)
    left = size
    while left > 0:
        n = src.readinto(mv[0:left if left < len(buf) else len(buf)])
        if not n:
            raise Refused("%s: short by %d bytes" % (name, left))
        digest.update(mv[0:n])
        dst.write(mv[0:n])
        left -= n
        feed()
