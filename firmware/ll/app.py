# The application core: every interval read each sensor, encode one telemetry
# message into a reused buffer, queue it in the outbox; the link drains the outbox.
# In serial mode (no Wi-Fi) messages are printed as "<device>/<kind> <json>" lines.
import gc
import json
import os
import sys
import time

from ll import config, jsonw, sensors
from ll.clock import Uptime
from ll.outbox import Outbox
from ll.version import FW_VERSION

_BOOT_FILE = "boot.cnt"
_SAVED_UPDATE = "ota.msg"  # an update waiting for a reset's whole heap
_GC_EVERY = 4096  # bytes allocated between two collections (gc.threshold)


def next_boot(path=_BOOT_FILE):
    """The boot counter kept in flash: read, +1, write back (wraps below 2^31)."""
    try:
        with open(path) as f:
            n = int(f.read())
    except (OSError, ValueError):
        n = 0
    n = (n + 1) % 2147483647
    with open(path, "w") as f:
        f.write(str(n))
    return n


def log(msg):
    sys.stderr.write("ll: ")
    sys.stderr.write(msg)
    sys.stderr.write("\n")


class App:
    def __init__(self, cfg, board, boot):
        self.cfg = cfg
        self.board = board
        self.boot = boot
        self.seq = 0
        # An update that found no heap for the updater last boot: retried once connected.
        self.update_msg = _saved_update() if not cfg.serial else None
        self.clock = board.clock
        self.uptime = Uptime()
        self.speed = board.speed
        self.interval_s = cfg.interval_s
        self.device = cfg.device.encode()
        self.board_name = board.name.encode()
        self.fw = FW_VERSION.encode()
        self.out = getattr(sys.stdout, "buffer", sys.stdout)
        self.w = jsonw.Writer(1024)
        self.sw = jsonw.Writer(512)  # status incl. a short TLS error and the update state
        self.slots = sensors.open_slots(board, cfg)
        self.outbox = None
        self.link = None
        self.loader = None  # the loader module when it runs this slot (docs/ota.md)
        self.started = time.ticks_ms()
        if not cfg.serial:
            from ll.link import Link

            self.outbox = Outbox("outbox.dat", cfg.outbox_quota)
            self.loader = sys.modules.get("loader")
            self.link = Link(cfg, board, self.outbox, self.on_config, self.status_payload,
                             self.on_update if self.loader is not None else None)
        # slot state: {"slot", "pending", "update": {...}}; ll/ota.py is imported only
        # when an update arrives (its code costs heap), then dropped if it is refused
        self.ota_state = self.loader.read_state() if self.loader is not None else {}
        self.cycles = 0
        self.sensor_errors = 0
        self.rescheduled = False

    # -- config ------------------------------------------------------------
    def interval_ms(self):
        return max(5, int(self.interval_s * 1000 / self.speed))

    def on_config(self, msg):
        try:
            d = json.loads(bytes(msg))
        except ValueError:
            return
        if isinstance(d, dict) and "interval_s" in d:
            new = config.valid_interval(d["interval_s"], self.interval_s)
            if new != self.interval_s:
                self.interval_s = new
                self.rescheduled = True  # a shorter interval must not wait out the old one

    # -- updates (ll/ota.py) ---------------------------------------------------
    def on_update(self, msg):
        if len(msg) <= 600:
            self.update_msg = bytes(msg)  # taken from the main loop, not the MQTT callback

    def run_update(self, link, loader):
        msg = self.update_msg or b"{}"
        self.update_msg = None
        retried = msg[0] == 0
        if retried:
            msg = msg[1:]
        gc.collect()  # compiling ll/ota.py wants the biggest free blocks there are
        before = gc.mem_alloc()
        try:
            from ll.ota import Ota
        except MemoryError:
            _unload()
            if retried:
                self.refuse(msg, link, loader, "out of memory loading the updater")
                return
            log("ota: no heap for the updater: saving the update, resetting to retry")
            with open(_SAVED_UPDATE, "wb") as f:
                f.write(msg)
            link.close()
            loader.reset()
        gc.collect()
        log("ota: updater loaded, %d bytes of heap" % (gc.mem_alloc() - before))
        ota = Ota(self.cfg, FW_VERSION, self.board.name, loader)

        def report():
            self.ota_state = ota.state  # what the status payload shows
            link.status(time.ticks_ms())

        staged = ota.apply(msg, report, self.board.wdt_feed)
        self.ota_state = ota.state
        if staged:
            log("ota: staged in %d ms, heap +%d bytes during download; resetting" % (
                ota.took_ms, ota.heap_peak))
            link.close()
            loader.reset()
        del ota
        _unload()  # give the updater's heap back until the next update

    def refuse(self, msg, link, loader, reason):
        """Report an update this device could not even start ("downloading", "refused")."""
        log("ota: " + reason)
        try:
            version = str(json.loads(msg)["version"])[:20]
        except (ValueError, KeyError, TypeError):
            version = "?"
        for state in ("downloading", "refused"):
            s = loader.read_state()
            s["update"] = {"version": version, "state": state, "reason": reason}
            loader.write_state(s)
            self.ota_state = s
            link.status(time.ticks_ms())

    def check_confirm(self, link, loader):
        """Keep a new version once it connected, had telemetry acked and ran a while;
        give up on it (reset: the loader counts a try) when that takes too long."""
        up = time.ticks_diff(time.ticks_ms(), self.started) * self.speed / 1000
        if link.acked and up >= self.cfg.ota_confirm_s:
            self.ota_state = loader.confirm()
            log("ota: %s confirmed" % FW_VERSION)
            link.status(time.ticks_ms())
        elif up >= self.cfg.ota_deadline_s:
            log("ota: %s not confirmed in %d s: resetting" % (FW_VERSION, self.cfg.ota_deadline_s))
            link.close()
            loader.reset()

    # -- payloads ------------------------------------------------------------
    def status_payload(self):
        w = self.sw
        w.reset()
        w.raw(b'{"state":"online","fw":"')
        w.raw(self.fw)
        w.raw(b'","board":"')
        w.raw(self.board_name)
        w.raw(b'","boot":')
        w.int(self.boot)
        w.raw(b',"ip":"')
        w.raw(self.board.ip().encode())
        w.raw(b'","rssi":')
        w.int(self.board.rssi())
        w.raw(b',"heap_free":')
        gc.collect()  # report what is really free, not what the last sweep left
        w.int(gc.mem_free())
        w.raw(b',"uptime":')
        w.int(self.uptime.update())
        w.raw(b',"dropped":')
        w.int(self.outbox.dropped if self.outbox is not None else 0)
        w.raw(b',"interval_s":')
        w.int(self.interval_s)
        w.raw(b',"sensor_errors":')
        w.int(self.sensor_errors)
        link = self.link
        if link is not None and link.failures:
            w.raw(b',"conn_failures":')
            w.int(link.failures)
            if link.tls_error:
                w.raw(b',"tls_errors":')
                w.int(link.tls_errors)
                w.raw(b',"tls_error":"')
                w.raw(link.tls_error.encode())
                w.raw(b'"')
        u = self.ota_state.get("update")
        if u:
            w.raw(b',"update":{"version":"')
            w.text(u.get("version", "?"))
            w.raw(b'","state":"')
            w.text(u.get("state", "?"))
            if u.get("reason"):
                w.raw(b'","reason":"')
                w.text(u["reason"])
            w.raw(b'"}')
        w.raw(b"}")
        return w.buf, w.n

    def sample(self, now):
        """Read every sensor and encode one telemetry message; returns (n, age_off) or (0, -1)."""
        w = self.w
        w.reset()
        w.raw(b'{"v":1,"device":"')
        w.raw(self.device)
        w.raw(b'","boot":')
        w.int(self.boot)
        w.raw(b',"seq":')
        w.int(self.seq)
        w.raw(b',"samples":[')
        count = 0
        age_off = -1
        ts = self.clock.sample_ms() if self.clock.is_set else 0
        for slot in self.slots:
            if not sensors.ensure(slot, self.board, self.cfg, now):
                continue
            d = slot.driver
            try:
                if not d.measure():
                    continue  # no new reading yet (SCD4x: every 5 s)
            except OSError:
                slot.errors += 1
                self.sensor_errors += 1
                continue
            if count:
                w.byte(44)
            w.raw(b'{"sensor":"')
            w.raw(slot.kind)
            if ts:
                w.raw(b'","ts":')
                w.fixed(ts, 3)
            else:
                w.raw(b'","age":')
                off = w.age_slot()
                if age_off < 0:
                    age_off = off
            w.raw(b',"values":{')
            d.write_values(w)
            w.raw(b"}}")
            count += 1
        if not count:
            return 0, -1
        w.raw(b"]}")
        self.seq += 1
        return w.n, age_off

    def emit_serial(self, n, age_off, tick):
        out = self.out
        if age_off >= 0:
            jsonw.patch_age(self.w.buf, age_off, time.ticks_diff(time.ticks_ms(), tick))
        out.write(self.device)
        out.write(b"/telemetry ")
        out.write(self.w.mv[0:n])  # type: ignore[call-overload]
        out.write(b"\n")

    def emit_status_serial(self):
        buf, n = self.status_payload()
        out = self.out
        out.write(self.device)
        out.write(b"/status ")
        out.write(memoryview(buf)[0:n])  # type: ignore[call-overload]
        out.write(b"\n")

    # -- loop --------------------------------------------------------------
    def run(self, max_cycles=0):
        board = self.board
        link = self.link
        loader = self.loader
        next_sample = time.ticks_ms()
        next_status = time.ticks_add(next_sample, int(self.cfg.status_every_s * 1000 / self.speed))
        mem_every = self.cfg.mem_report_every
        if link is None:
            self.emit_status_serial()
        while True:
            now = time.ticks_ms()
            board.tick()
            board.wdt_feed()
            if self.rescheduled:
                self.rescheduled = False
                soon = time.ticks_add(now, self.interval_ms())
                if time.ticks_diff(next_sample, soon) > 0:
                    next_sample = soon
            if time.ticks_diff(now, next_sample) >= 0:
                next_sample = time.ticks_add(next_sample, self.interval_ms())
                if time.ticks_diff(now, next_sample) > 0:
                    next_sample = time.ticks_add(now, self.interval_ms())  # fell behind
                n, age_off = self.sample(now)
                if n:
                    if self.outbox is None:
                        self.emit_serial(n, age_off, now)
                    else:
                        self.outbox.put(self.w.buf, n, age_off, now)
                self.cycles += 1
                if mem_every and self.cycles % mem_every == 0:
                    gc.collect()
                    log("mem free=%d alloc=%d cycle=%d connects=%d" % (
                        gc.mem_free(), gc.mem_alloc(), self.cycles,
                        link.connects if link else 0))
                if max_cycles and self.cycles >= max_cycles:
                    return
                if loader is not None and link is not None and self.ota_state.get("pending"):
                    self.check_confirm(link, loader)
            if time.ticks_diff(now, next_status) >= 0:
                next_status = time.ticks_add(now, int(self.cfg.status_every_s * 1000 / self.speed))
                if link is None:
                    self.emit_status_serial()
                else:
                    link.status(now)
            wait = time.ticks_diff(next_sample, time.ticks_ms())
            wait = 0 if wait < 0 else 50 if wait > 50 else wait
            if link is not None and link.service(time.ticks_ms(), wait):
                if self.update_msg is not None and loader is not None:
                    self.run_update(link, loader)
                continue
            if wait:
                board.sleep_ms(wait)


def _saved_update():
    """One shot: the file goes at once, so a boot that fails with it never loops."""
    try:
        with open(_SAVED_UPDATE, "rb") as f:
            msg = f.read()
        os.remove(_SAVED_UPDATE)
    except OSError:
        return None
    # Taken at the first connection, when the heap has had no time to fragment (not
    # loaded here: code resident before the app allocates can starve the app itself).
    return b"\x00" + msg  # marks the retry: no third attempt


def _unload():
    import ll

    for name in ("ota", "otalib"):
        if name in ll.__dict__:
            delattr(ll, name)
        sys.modules.pop("ll." + name, None)
    gc.collect()


def main(path="device.json"):
    cfg = config.load(path)
    if cfg.mqtt_tls:
        from ll import tlslink

        tlslink.reserve_early(cfg)  # TLS needs one ~17 KB block: take it before anything else
    # All the code first, then the long-lived buffers (App): compiling a module later
    # leaves its code and its garbage between the buffers, and a fragmented heap then
    # has no room for the next one (docs/firmware.md "Heap layout").
    if not cfg.serial:
        gc.collect()
        import ll.link  # noqa: F401 (and ll/mqtt.py: the biggest compile, done first)
    gc.collect()
    from ll import boards

    board = boards.load(cfg)
    sensors.preload(cfg)
    gc.collect()
    app = App(cfg, board, next_boot())
    # Collect every 4 KB allocated instead of only when the heap is full: the sample
    # loop's short-lived garbage then stays in the low holes, and the objects alive at
    # a collection are no longer strewn over the big free blocks (the TLS handshake
    # needs ~40 KB of them in 1 KB+ pieces). A collection is a few ms per interval.
    gc.threshold(_GC_EVERY)
    log("fw %s board %s device %s boot %d" % (FW_VERSION, board.name, cfg.device, app.boot))
    try:
        app.run()
    finally:
        if app.link is not None:
            app.link.client.close()  # a dead process: let the broker send the last will
