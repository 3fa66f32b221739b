# TLS for the device link (docs/tls.md), imported only when device.json has mqtt.tls:
# a device without TLS never pays for this code's heap (docs/firmware.md "Heap layout").
# mbedTLS on a GC-heap build (docs/firmware.md): the handshake needs ~40 KB free
# including one ~17 KB block (the 16 KB record buffer, kept for the session); an
# established session keeps ~24 KB. The heap fragments as the firmware runs, so the
# link takes a 17 KB block at boot (reserve_early), holds it while offline and frees
# it just before each handshake; after a session ends it takes it back at once, into
# the hole the session leaves. sim.tls_heap (unix tests) also holds the rest of
# mbedTLS's use (23 x 1 KB during the handshake, 7 x 1 KB with the block for the session).
import gc
import sys

from ll.mqtt import TLSError

_TLS_BLOCK = 17 * 1024
_TLS_HS_KB = 23  # transient handshake memory, in 1 KB pieces
_TLS_SESSION_KB = 7  # kept with the block while the session is up

# [reserve, SSLContext]: taken by reserve_early, adopted by the Link
_early = [None, None]  # type: list[object]


def _log(msg):
    sys.stderr.write("ll: ")
    sys.stderr.write(msg)
    sys.stderr.write("\n")


def short(text, cap=64):
    """mbedTLS reasons span lines; keep one line of JSON-safe ASCII for the status."""
    out = []
    for ch in text:
        if ch == "\n":
            ch = "; "
        elif ch == '"' or ch == "\\" or ord(ch) < 32 or ord(ch) > 126:
            ch = " "
        out.append(ch)
    return "".join(out).strip("; ")[:cap]


def read_ca(cfg):
    """The CA (DER); b"" if the file is missing, so every connect fails as a TLS
    error (reported) instead of silently going plain text."""
    try:
        with open(cfg.mqtt_ca, "rb") as f:
            return f.read()
    except OSError:
        _log("tls: CA file %s missing: re-flash the device" % cfg.mqtt_ca)
        return b""


def context(ca):
    """A client context that requires a broker certificate chaining to ``ca`` (DER).
    Raises ValueError for a bad CA. Built once: it holds the parsed CA (~3 KB)."""
    import tls

    ctx = tls.SSLContext(tls.PROTOCOL_TLS_CLIENT)
    ctx.verify_mode = tls.CERT_REQUIRED  # type: ignore[attr-defined]
    ctx.load_verify_locations(ca)  # DER bytes, positional (no cadata= keyword)
    return ctx


def wrap(client, s):
    """TLS over the connected socket: the broker must show a certificate signed by
    our CA naming ``client.host``. The caller feeds the watchdog first (the handshake
    takes seconds of ECDSA on a Pico W)."""
    try:
        ctx = client.ctx
        if ctx is None:
            ctx = client.ctx = context(client.ca)
        return ctx.wrap_socket(s, server_hostname=client.host)
    except ValueError as e:  # certificate refused: expired, other CA, wrong name
        raise TLSError(1, str(e))
    except OSError as e:  # handshake failed (not a TLS listener, alert, reset)
        if isinstance(e.args[0], int) and e.args[0] < 0:
            raise TLSError(2, "handshake failed: mbedtls -0x%x" % -e.args[0])
        raise


def reserve():
    try:
        return bytearray(_TLS_BLOCK)
    except MemoryError:
        return None  # the handshake will try anyway; heap_free in the status tells


def reserve_early(cfg):
    """Build the TLS context and take the TLS reserve now, before the board, sensors
    and buffers fragment the heap (app.main calls this first); the Link adopts both."""
    if _early[0] is not None:
        return
    gc.collect()
    try:
        _early[1] = context(read_ca(cfg))
    except ValueError:
        pass  # a bad CA: every connect reports it as a tls_error
    _early[0] = reserve()


def adopt():
    """(reserve, context) from reserve_early, handed over once."""
    r = (_early[0], _early[1])
    _early[0] = _early[1] = None
    return r


def connect_sim(c, will_topic, will_msg):
    """Unix port with sim.tls_heap: connect while holding what mbedTLS would take on the
    GC heap of a Pico W; returns the session's share, held while connected."""
    block = bytearray(_TLS_BLOCK)  # a MemoryError here is a crash: the test sees it
    hs = [bytearray(1024) for _ in range(_TLS_HS_KB)]
    try:
        c.connect(True, will_topic, will_msg, True, 1)
    finally:
        hs.clear()  # the handshake's transient memory goes back to the heap
    return block, [bytearray(1024) for _ in range(_TLS_SESSION_KB)]
