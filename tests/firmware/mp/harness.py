# ruff: noqa: UP031, BLE001 -- MicroPython code: no f-string niceties needed
# The tiny check runner shared by the MicroPython-side check scripts (this folder is on
# sys.path: MicroPython puts the script's directory first). Each check prints one line:
# "ok <name>" or "FAIL <name> <detail>"; pytest (tests/firmware/test_units.py) reads them.

CHECKS = []


def check(fn):
    CHECKS.append(fn)
    return fn


def eq(a, b, what=""):
    if a != b:
        raise AssertionError("%s: %r != %r" % (what, a, b))


def near(a, b, tol, what=""):
    if abs(a - b) > tol:
        raise AssertionError("%s: %r not within %r of %r" % (what, a, tol, b))


def run_all():
    for fn in CHECKS:
        try:
            fn()
            print("ok", fn.__name__)
        except Exception as e:  # report every check, keep going
            print("FAIL", fn.__name__, type(e).__name__, e)
