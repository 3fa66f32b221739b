# ruff: noqa: UP031, E402, BLE001 -- MicroPython code: no f-string niceties needed, path set up first
# Runs under the MicroPython unix port (NOT CPython): the firmware core (JSON writer,
# outbox, simulated world, age mode).
# Usage: micropython check_core.py <firmware dir>  (cwd: a scratch dir)
import sys

sys.path.insert(0, sys.argv[1])

import os
import time

from harness import check, eq, run_all
from ll import jsonw
from ll.outbox import Outbox
from ll.sim.world import World


@check
def json_writer_numbers():
    w = jsonw.Writer(64)
    w.raw(b"{")
    w.key(b"a")
    w.fixed(-2241, 2)
    w.key(b"b")
    w.fixed(1795351934120, 3)
    w.key(b"c")
    w.int(0)
    w.key(b"d")
    w.fixed(5, 3)
    w.raw(b"}")
    eq(bytes(w.mv[0:w.n]), b'{"a":-22.41,"b":1795351934.120,"c":0,"d":0.005}', "json")
    w.reset()
    w.raw(b'{"age":')
    off = w.age_slot()
    w.raw(b"}")
    jsonw.patch_age(w.buf, off, 12345)
    eq(bytes(w.mv[0:w.n]), b'{"age":        12.345}', "age patched")


def _fill(n, tag):
    b = bytearray(n)
    for i in range(n):
        b[i] = 65 + (tag + i) % 26
    return b


@check
def outbox_order_spill_and_ack():
    for f in ("ob.dat", "ob.dat.pos"):
        try:
            os.remove(f)
        except OSError:
            pass
    ob = Outbox("ob.dat", 4096, slots=2, slot_size=128)
    for i in range(5):
        ob.put(_fill(100, i), 100)
    got = []
    while True:
        item = ob.peek()
        if item is None:
            break
        token, mv, n, age, tick = item
        got.append(bytes(mv[0:n]))
        ob.pop(token)
        ob.pop(token)  # a second ack for the same record is a no-op
    eq(got, [bytes(_fill(100, i)) for i in range(5)], "oldest first, RAM then file")
    eq(ob.dropped, 0, "nothing dropped")
    eq("ob.dat" in os.listdir(), False, "file removed when drained")


@check
def outbox_quota_drops_oldest_and_persists():
    ob = Outbox("ob.dat", 1000, slots=1, slot_size=128)
    for i in range(20):  # 1 in RAM, 19 x 110 bytes to a 1000-byte quota
        ob.put(_fill(100, i), 100)
    eq(ob.dropped, 10, "dropped count")
    if ob.file_bytes() > 1000:
        raise AssertionError("quota exceeded")
    token = ob.peek()[0]
    ob.pop(token)  # the RAM record
    first = ob.peek()
    eq(bytes(first[1][0:first[2]]), bytes(_fill(100, 11)), "oldest kept")
    ob.pop(first[0])
    ob2 = Outbox("ob.dat", 1000, slots=1, slot_size=128)  # a reboot: the file survives
    rest = []
    while True:
        item = ob2.peek()
        if item is None:
            break
        rest.append(bytes(item[1][0:item[2]]))
        ob2.pop(item[0])
    eq(rest, [bytes(_fill(100, i)) for i in range(12, 20)], "replay after reboot")


@check
def outbox_survives_a_torn_append():
    ob = Outbox("ob.dat", 4096, slots=1, slot_size=128)
    for i in range(3):
        ob.put(_fill(100, i), 100)  # 1 in RAM, 2 in the file
    with open("ob.dat", "ab") as f:
        f.write(b"\x00\x64\x00\x00")  # power cut in the middle of a header
    ob = Outbox("ob.dat", 4096, slots=1, slot_size=128)
    ob.put(_fill(100, 3), 100)  # goes to the file, behind the two survivors
    got = []
    while True:
        item = ob.peek()
        if item is None:
            break
        got.append(bytes(item[1][0:item[2]]))
        ob.pop(item[0])
    eq(got, [bytes(_fill(100, i)) for i in (1, 2, 3)], "torn tail dropped")


@check
def world_is_believable():
    w = World(seed=3, speed=1.0, tz_h=0.0, start=1795392000.0)  # a Monday 00:00 UTC
    w.tick0 = time.ticks_ms()
    night = w.occupancy(), w.sun()
    w.t0 = 1795392000.0 + 11 * 3600.0  # Monday 11:00
    w.step()
    eq(night, (0.0, 0.0), "nobody, no sun at midnight")
    if not (w.occupancy() > 0.5 and w.sun() > 0.5 and w.lux() > 500):
        raise AssertionError("office hours not busy/bright")


@check
def age_mode_before_clock_set():
    import json

    from ll.app import App
    from ll.boards.unix import Board
    from ll.config import Config
    from ll.link import _find_age

    cfg = Config({"device": "air-0002", "site": "s", "serial": True, "interval_s": 1,
                  "sensors": [{"kind": "bme280"}, {"kind": "bh1750"}]})
    board = Board(cfg)
    board.clock.is_set = False  # a real board before its first NTP sync
    app = App(cfg, board, 7)
    n, age_off = app.sample(time.ticks_ms())
    if age_off < 0:
        raise AssertionError("no age slot")
    buf = app.w.buf
    for off in _find_age(app.w.mv, age_off - 6, n):
        jsonw.patch_age(buf, off, 2500)
    msg = json.loads(bytes(buf[0:n]))
    eq((msg["boot"], msg["seq"]), (7, 0), "boot, seq")
    eq([s["sensor"] for s in msg["samples"]], ["bme280", "bh1750"], "sensors")
    eq([s.get("age") for s in msg["samples"]], [2.5, 2.5], "ages")
    eq([("ts" in s) for s in msg["samples"]], [False, False], "no ts")


run_all()
