# Over-the-air update of the application slot (the loader, loader.py, never changes).
# A control message on the device's own update topic names a version, the URL of the
# files on the gateway host and an HMAC-SHA256 of the manifest under the key set at
# provisioning (device.json "ota.key", never sent in an update). The manifest is
# streamed into the idle slot with the HMAC computed as it arrives, then every file
# it lists is streamed in 512-byte chunks, its SHA-256 computed as it goes. Anything
# that does not match deletes the staged files and reports "refused". Only then does
# the slot state switch (loader.write_state: temp file + rename) and the board reset.
import gc
import json
import time

from binascii import hexlify, unhexlify
from hashlib import sha256
from micropython import const

from ll.otalib import Hmac, Http, Refused, equal, free_bytes, makedirs, pull, rmtree, \
    safe_path, vtuple

_CHUNK = const(512)
_BAD_MAX = const(4)  # rolled-back versions remembered (a replay must not reinstall them)
_MANIFEST_MAX = const(4096)
_MAGIC = "livinglab-ota 1"
MANIFEST = "ota.manifest"


class Ota:
    def __init__(self, cfg, fw, board_name, loader):
        self.loader = loader
        self.key = cfg.ota_key
        self.fw = fw
        self.board = board_name
        self.state = loader.read_state()
        self.pending = bool(self.state.get("pending"))
        self.heap_peak = 0
        self.took_ms = 0

    def rolled_back(self):
        """Versions that rolled back on this board, the loader's latest folded in and kept
        (bounded): the loader's state names only the last update, and a replayed control
        message for a version that rolled back would otherwise install it again.
        Refusals are not remembered: a forged or tampered message must not bar the
        genuine release of that version."""
        s = self.state
        bad = s.get("bad") or []
        u = s.get("update") or {}
        v = u.get("version")
        if u.get("state") == "rolled_back" and v and v not in bad:
            bad = (bad + [v])[-_BAD_MAX:]
            s["bad"] = bad
            self.loader.write_state(s)
        return bad

    def _record(self, version, state, reason=""):
        s = self.loader.read_state()
        s["update"] = {"version": version, "state": state}
        if reason:
            s["update"]["reason"] = reason[:100]
        self.loader.write_state(s)
        self.state = s

    # -- taking an update ------------------------------------------------------
    def apply(self, msg, report, feed, fetch=None):
        """Stage the update described by control message ``msg``; True when staged
        (the caller then resets), False when refused (reported, stage deleted).
        ``fetch(name) -> (stream, length)`` reads the files (default: HTTP from the url)."""
        version = "?"
        stage = ""
        try:
            try:
                d = json.loads(msg)
                version = str(d["version"])[:20]
                url = str(d["url"])
                mac = unhexlify(str(d["mac"]))
            except (ValueError, KeyError, TypeError):
                raise Refused("malformed update message") from None
            bad = self.rolled_back()  # before _record replaces the loader's "rolled_back"
            # First thing, whatever follows: "downloading" marks this attempt, so the
            # outcome that follows is told apart from an older one in a periodic status.
            self._record(version, "downloading")
            report()
            new = vtuple(version)
            if new is None:
                raise Refused("bad version")
            cur = vtuple(self.fw)
            if cur is not None and new <= cur:
                raise Refused("version %s is not newer than %s" % (version, self.fw))
            if version in bad:
                raise Refused("version %s rolled back here before (publish a newer one)"
                              % version)
            if self.pending:
                raise Refused("running version not confirmed yet")
            if not self.key:
                raise Refused("no ota key provisioned")
            stage = "app/" + self.loader.other(self.state["slot"])
            self.stage(stage, version, fetch or Http(url).get, mac, feed)
        except Refused as e:
            reason = str(e.args[0]) if e.args else "refused"
        except OSError as e:
            reason = "download failed (OSError %s)" % (e.args[0] if e.args else "?")
        except (ValueError, IndexError, MemoryError) as e:  # a bad server must not crash us
            reason = "download failed (%s)" % type(e).__name__
        else:
            old = self.state["slot"]
            self.state = {"slot": stage[4:], "prev": old, "pending": 1, "tries": 0,
                          "version": version, "update": {"version": version, "state": "staged"},
                          "bad": bad}
            self.loader.write_state(self.state)  # the switch: the next boot runs the stage
            report()
            return True
        if stage:
            try:
                rmtree(stage)
            except OSError:
                pass
        self._record(version, "refused", reason)
        report()
        return False

    def stage(self, stage, version, fetch, mac, feed):
        t0 = time.ticks_ms()
        gc.collect()
        base = gc.mem_alloc()
        rmtree(stage)
        makedirs(stage)
        buf = bytearray(_CHUNK)
        # 1. the manifest, authenticated while it streams in
        s, n = fetch(MANIFEST)
        try:
            if not 0 < n <= _MANIFEST_MAX:
                raise Refused("manifest size %d" % n)
            h = Hmac(self.key)
            with open(stage + "/" + MANIFEST, "wb") as f:
                pull(s, f, n, h, buf, feed, MANIFEST)
        finally:
            s.close()
        if not equal(h.digest(), mac):
            raise Refused("manifest not authenticated (wrong key or tampered)")
        # 2. what it lists: checked, then space, then every file streamed and hashed
        total, count = self.check_manifest(stage, version)
        need = total + (count + 4) * 4096
        if free_bytes(stage) < need:
            raise Refused("no space: need %d bytes, %d free" % (need, free_bytes(stage)))
        with open(stage + "/" + MANIFEST) as m:
            m.readline()
            m.readline()
            m.readline()
            while True:
                line = m.readline()
                if not line:
                    break
                hexd, size, path = line.split()
                size = int(size)
                s, n = fetch(path)
                try:
                    if n != size:
                        raise Refused("%s: size %d, manifest says %d" % (path, n, size))
                    makedirs(stage + "/" + path[:path.rfind("/")])
                    fh = sha256()
                    with open(stage + "/" + path, "wb") as f:
                        pull(s, f, size, fh, buf, feed, path)
                finally:
                    s.close()
                if hexlify(fh.digest()).decode() != hexd:
                    raise Refused("%s: sha256 mismatch" % path)
                gc.collect()  # what the download holds, not the garbage it left
                used = gc.mem_alloc() - base
                if used > self.heap_peak:
                    self.heap_peak = used
        self.took_ms = time.ticks_diff(time.ticks_ms(), t0)

    def check_manifest(self, stage, version):
        total = 0
        count = 0
        app = False
        with open(stage + "/" + MANIFEST) as m:
            if m.readline().strip() != _MAGIC:
                raise Refused("not a livinglab-ota 1 manifest")
            if m.readline().strip() != "version " + version:
                raise Refused("manifest is for another version")
            if m.readline().strip() != "board " + self.board:
                raise Refused("manifest is for another board")
            while True:
                line = m.readline()
                if not line:
                    break
                parts = line.split()
                if len(parts) != 3 or len(parts[0]) != 64 or not parts[1].isdigit() \
                        or not safe_path(parts[2]):
                    raise Refused("bad manifest line %d" % (count + 4))
                total += int(parts[1])
                count += 1
                app = app or parts[2] == "ll/app.py"
        if not app:
            raise Refused("manifest has no ll/app.py")
        return total, count
