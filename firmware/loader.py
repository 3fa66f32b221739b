# The loader: never updated over the air (a mistake here needs a USB re-flash, so it
# stays small). The application lives in two slots, app/a and app/b; ota.json says
# which one runs. An update stages the new files in the other slot, then switches
# ota.json (temp file + os.rename: atomic on littlefs2, the rp2/ESP32 default; NOT
# on FAT) to {"slot": new, "pending": 1}. Each boot of a pending slot counts a try
# (written before the slot's code runs); the application confirms once it has
# connected, had a telemetry message acknowledged and run a while. A slot that
# crashes, hangs (watchdog) or never confirms is abandoned after MAX_TRIES boots:
# the loader goes back to the previous slot and records "rolled_back".
import json
import os
import sys
import time

STATE = "ota.json"
MAX_TRIES = 3
RESET_EXIT = 75  # unix port: machine.reset() (EX_TEMPFAIL: "run me again")
WDT_MS = 8000  # rp2's maximum is 8388 ms

_wdt = None
_fake = None


def read_state(path=STATE):
    """The slot state; {"slot": "a"} when there is none (a fresh USB install)."""
    try:
        with open(path) as f:
            s = json.load(f)
        if isinstance(s, dict) and s.get("slot") in ("a", "b"):
            return s
    except (OSError, ValueError):
        pass
    return {"slot": "a"}


def write_state(s, path=STATE):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(s, f)
    os.rename(tmp, path)  # the commit point: old or new state, never half of one


def other(slot):
    return "b" if slot == "a" else "a"


def boot_state(path=STATE):
    """Decide what this boot runs: count a try of a pending slot, roll back after
    MAX_TRIES. Returns the state to run with (already written)."""
    s = read_state(path)
    if not s.get("pending"):
        return s
    tries = s.get("tries", 0) + 1
    if tries > MAX_TRIES:
        why = s.get("why") or "hang, watchdog or no connection"
        v = s.get("version", "?")
        # "bad": versions that rolled back (ll/ota.py refuses them again), bounded
        s = {"slot": s.get("prev") or other(s["slot"]), "bad": (s.get("bad", []) + [v])[-4:],
             "update": {"version": v, "state": "rolled_back",
                        "reason": ("not confirmed after %d boots (%s)" % (MAX_TRIES, why))[:100]}}
    else:
        s["tries"] = tries
    write_state(s, path)
    return s


def confirm(path=STATE):
    """The running slot is good: keep it (ll/app.py, once connected, acked, run a while)."""
    s = read_state(path)
    v = s.get("version", "?")
    s = {"slot": s["slot"], "prev": s.get("prev", ""), "version": v, "bad": s.get("bad", []),
         "update": {"version": v, "state": "confirmed"}}
    write_state(s, path)
    return s


def reset():
    """machine.reset(); on the unix port the process ends with RESET_EXIT and whoever
    runs the board (fleet simulate, the demo) starts it again in the same directory."""
    try:
        import machine

        machine.reset()
    except (ImportError, AttributeError):
        pass
    sys.exit(RESET_EXIT)


def arm_wdt():
    global _wdt, _fake
    try:
        from machine import WDT

        _wdt = WDT(timeout=WDT_MS)
    except (ImportError, AttributeError):
        env = os.getenv("LIVINGLAB_WDT_MS")  # the unix port: simulation and tests
        _fake = __import__("fakewdt").FakeWdt(int(env) if env else WDT_MS)


def feed():
    """Called by the unix board layer (real boards feed machine.WDT directly)."""
    if _fake is not None:
        _fake.feed()


def use_slot(slot):
    """The slot first on sys.path and nothing from the flash root: a stale ll/ or
    x.py left at the root can never shadow the slot's modules."""
    while "" in sys.path:
        sys.path.remove("")
    while "." in sys.path:
        sys.path.remove(".")
    sys.path.insert(0, "app/" + slot)


def main(config="device.json"):
    s = boot_state()
    pending = s.get("pending")
    if pending:
        arm_wdt()  # armed before the new code is even imported: a hang resets
    use_slot(s["slot"])
    try:
        import ll.app

        ll.app.main(config)
    except Exception as e:  # noqa: BLE001 -- any crash of an unconfirmed slot counts
        if not pending:
            raise
        sys.print_exception(e)  # type: ignore[attr-defined]
        try:
            s["why"] = ("%s: %s" % (type(e).__name__, e))[:60]
            write_state(s)
        except OSError:
            pass
        reset()
