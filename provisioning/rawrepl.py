"""A small client for MicroPython's raw REPL over a serial port (pyserial).

Why our own and not ``mpremote``'s transport: we need bounded timeouts on every
read (a port whose other end is ``cat`` or a shell must fail in seconds with a
clear message, not print and hang), one-line errors that name the fix, and
nothing written to stdout. The protocol is small:

* Ctrl-C (interrupt main.py), Ctrl-A -> ``raw REPL; CTRL-B to exit\\r\\n>``
* code, Ctrl-D -> ``OK``, stdout, ``\\x04``, stderr (traceback), ``\\x04``, ``>``
* raw-paste (Ctrl-E ``A`` Ctrl-A -> ``R\\x01`` + window size) when the board
  supports it: flow-controlled, so large files cannot overrun a USB-CDC buffer.
"""

from __future__ import annotations

import errno as errno_mod
import re
import struct
import time

import serial

from .errors import DIALOUT_FIX, BoardError, BoardFullError, NotMicroPythonError, PortError

_BANNER = b"raw REPL; CTRL-B to exit\r\n>"
_CHUNK = 256
_ERRNO_RE = re.compile(r"OSError: (?:\[Errno )?(\d+)")


def open_port(port: str, baudrate: int = 115200) -> serial.Serial:
    """Open ``port`` exclusively, translating OS failures into one-line :class:`PortError`."""
    try:
        return serial.Serial(port, baudrate, timeout=0.05, write_timeout=5, exclusive=True)
    except serial.SerialException as exc:
        code = exc.errno
        if code == errno_mod.ENOENT or code is None and "No such file" in str(exc):
            raise PortError(port, f"no such port {port} (plug the board in; "
                                  "see livinglab device list-ports)") from None
        if code == errno_mod.EACCES or "Permission denied" in str(exc):
            raise PortError(port, f"permission denied opening {port} ({DIALOUT_FIX})") from None
        if code in (errno_mod.EBUSY, errno_mod.EAGAIN) or "lock" in str(exc):
            raise PortError(port, f"{port} is busy (close the other program using it, "
                                  "e.g. a serial console or Thonny)") from None
        raise PortError(port, f"cannot open {port}: {exc}") from None
    except ValueError as exc:
        raise PortError(port, f"cannot open {port}: {exc}") from None


class RawRepl:
    """One raw-REPL session with a board; use as a context manager."""

    def __init__(self, port: str, baudrate: int = 115200, timeout_s: float = 10.0) -> None:
        self.port = port
        self.timeout_s = timeout_s
        self._ser = open_port(port, baudrate)
        self._paste: bool | None = None  # unknown until first exec
        self._pending = b""

    def __enter__(self) -> RawRepl:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        try:
            self._ser.close()
        except OSError:
            pass

    # -- low level -------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        try:
            self._ser.write(data)
        except (serial.SerialException, OSError) as exc:
            raise PortError(self.port, f"{self.port}: write failed: {exc} "
                                       "(was the board unplugged?)") from None

    def _read_some(self) -> bytes:
        try:
            data: bytes = self._ser.read(max(1, self._ser.in_waiting))
        except (serial.SerialException, OSError) as exc:
            raise PortError(self.port, f"{self.port}: read failed: {exc} "
                                       "(was the board unplugged?)") from None
        return data

    def _read_until(self, ending: bytes, timeout_s: float) -> tuple[bytes, bool]:
        """Read through the first ``ending`` or until ``timeout_s`` passes; (data, found).

        Bytes after ``ending`` stay buffered for the next read.
        """
        buf, self._pending = self._pending, b""
        end = time.monotonic() + timeout_s
        while True:
            i = buf.find(ending)
            if i >= 0:
                cut = i + len(ending)
                self._pending = buf[cut:]
                return buf[:cut], True
            if time.monotonic() > end:
                return buf, False
            buf += self._read_some()

    def _drain(self, quiet_s: float = 0.1, max_s: float = 2.0) -> bytes:
        """Discard input until the line has been quiet for ``quiet_s``."""
        buf, self._pending = self._pending, b""
        end = time.monotonic() + max_s
        last = time.monotonic()
        while time.monotonic() - last < quiet_s and time.monotonic() < end:
            got = self._read_some()
            if got:
                buf += got
                last = time.monotonic()
        return buf

    # -- protocol --------------------------------------------------------------

    def enter(self, timeout_s: float = 1.5) -> None:
        """Interrupt whatever runs and enter the raw REPL, or :class:`NotMicroPythonError`."""
        seen = b""
        for _attempt in range(2):
            self._write(b"\r\x03\x03")
            seen += self._drain()
            self._write(b"\r\x01")
            data, ok = self._read_until(_BANNER, timeout_s)
            seen += data
            if ok:
                return
        text = "".join(c for c in seen.decode("utf-8", "replace") if c.isprintable()).strip()
        detail = f"it answered {text[-40:]!r}" if text else "no answer to Ctrl-A"
        raise NotMicroPythonError(self.port, detail)

    def exit(self) -> None:
        """Back to the friendly REPL (Ctrl-B)."""
        self._write(b"\r\x02")

    def _send_paste(self, code: bytes) -> bool:
        """Send ``code`` in raw-paste mode; False when the board does not support it."""
        self._write(b"\x05A\x01")
        head, found = self._read_until(b"R", 2.0)
        reply = self._read_exact(1, 2.0) if found else b""
        if reply != b"\x01":
            if reply != b"\x00":
                # An old firmware without raw-paste echoes the bytes: resync on the prompt.
                self._read_until(_BANNER, 2.0)
            return False
        window = struct.unpack("<H", self._read_exact(2, 2.0).ljust(2, b"\0"))[0]
        remain = window
        deadline = time.monotonic() + self.timeout_s
        i = 0
        while i < len(code):
            while remain == 0 or self._pending or self._ser.in_waiting:
                if time.monotonic() > deadline:
                    raise BoardError(f"{self.port}: the board stopped reading code "
                                     "(press reset on the board and try again)")
                b = self._read_exact(1, 0.1)
                if b == b"\x01":
                    remain += window
                    deadline = time.monotonic() + self.timeout_s
                elif b == b"\x04":  # the board ended the paste early (syntax error)
                    self._write(b"\x04")
                    return True
            chunk = code[i:i + remain]
            self._write(chunk)
            remain -= len(chunk)
            i += len(chunk)
        self._write(b"\x04")
        _data, ok = self._read_until(b"\x04", self.timeout_s)
        if not ok:
            raise NotMicroPythonError(self.port, "raw-paste mode did not complete")
        return True

    def _read_exact(self, n: int, timeout_s: float) -> bytes:
        buf, self._pending = self._pending[:n], self._pending[n:]
        end = time.monotonic() + timeout_s
        while len(buf) < n and time.monotonic() < end:
            try:
                buf += self._ser.read(n - len(buf))
            except (serial.SerialException, OSError) as exc:
                raise PortError(self.port, f"{self.port}: read failed: {exc}") from None
        return buf

    def _send_plain(self, code: bytes) -> None:
        for i in range(0, len(code), _CHUNK):
            self._write(code[i:i + _CHUNK])
            time.sleep(0.005)
        self._write(b"\x04")
        _data, ok = self._read_until(b"OK", self.timeout_s)
        if not ok:
            raise NotMicroPythonError(self.port, "the raw REPL did not accept code")

    def send(self, code: str) -> None:
        """Start ``code`` on the board without waiting for it to finish (used to reset)."""
        raw = code.encode("utf-8")
        if self._paste is not False:
            self._paste = self._send_paste(raw)
            if self._paste:
                return
        self._send_plain(raw)

    def exec(self, code: str, timeout_s: float | None = None) -> str:
        """Run ``code`` and return its stdout; a traceback becomes :class:`BoardError`."""
        self.send(code)
        limit = self.timeout_s if timeout_s is None else timeout_s
        out, ok = self._read_until(b"\x04", limit)
        err, ok2 = self._read_until(b"\x04", limit) if ok else (b"", False)
        if not (ok and ok2):
            raise BoardError(f"{self.port}: the board did not finish within {limit:g}s "
                             "(press reset on the board and try again)")
        self._read_until(b">", 2.0)
        if err[:-1]:
            raise _board_error(err[:-1].decode("utf-8", "replace"))
        return out[:-1].decode("utf-8", "replace")


def _board_error(traceback: str) -> BoardError:
    """Turn a board traceback into an error carrying the OSError errno, if any."""
    last = traceback.strip().splitlines()[-1] if traceback.strip() else "unknown error"
    m = _ERRNO_RE.search(traceback)
    code = int(m.group(1)) if m else None
    if code == errno_mod.ENOSPC:
        return BoardFullError("the board's filesystem is full (remove old files from the "
                              "board or reformat it)", code)
    return BoardError(f"the board raised {last}", code)
