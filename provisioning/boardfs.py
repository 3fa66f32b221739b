"""Board-side operations over the raw REPL: identify the board, hash and write files.

Everything here runs small snippets on the board and parses what they print.
Paths are always relative to the board's current directory (the flash root on
a real board, the flash directory of a unix-port process); an absolute path or
``..`` is refused before anything is sent, so a host path can never be written.
"""

from __future__ import annotations

import ast
import hashlib
import zlib
from dataclasses import dataclass
from pathlib import PurePosixPath

from .errors import BoardError, BoardFullError, ProvisioningError
from .rawrepl import RawRepl

# Defined once per session in the board's globals; hashes a file the cheapest
# way the firmware allows: sha256 (hashlib), else size+crc32, else None (copy).
_HELPERS = """
import os
def _llh(p):
    try:
        f = open(p, 'rb')
    except OSError:
        return None
    try:
        try:
            import hashlib, binascii
            h = hashlib.sha256()
            b = f.read(512)
            while b:
                h.update(b)
                b = f.read(512)
            return 'sha256:' + binascii.hexlify(h.digest()).decode()
        except (ImportError, AttributeError):
            pass
        try:
            from binascii import crc32
        except ImportError:
            return None
        f.seek(0)
        n = 0
        c = 0
        b = f.read(512)
        while b:
            n += len(b)
            c = crc32(b, c)
            b = f.read(512)
        return 'crc32:%d:%08x' % (n, c & 0xffffffff)
    finally:
        f.close()
def _llmk(p):
    try:
        os.mkdir(p)
    except OSError:
        pass
def _llmv(a, b):
    try:
        os.remove(b)
    except OSError:
        pass
    os.rename(a, b)
"""
_WRITE_CHUNK = 512       # bytes of file data per write() call on the board
_EXEC_BYTES = 4096       # bytes of file data per exec (bounded board RAM for compiling)


@dataclass(frozen=True)
class BoardInfo:
    """What the board says about itself."""

    implementation: str
    platform: str
    version: str
    machine: str


def safe_relpath(dest: str) -> str:
    """``dest`` as a clean relative POSIX path, or an error (no absolute, no ``..``)."""
    p = PurePosixPath(dest)
    if p.is_absolute() or not p.parts or ".." in p.parts or "\\" in dest:
        raise ProvisioningError(f"refusing to write '{dest}' on the board: board paths must "
                                "be relative to its flash root (a firmware packaging bug)")
    return str(p)


def host_hash(data: bytes, kind: str) -> str:
    """The hash of ``data`` in the same form ``_llh`` prints for ``kind``."""
    if kind == "crc32":
        return f"crc32:{len(data)}:{zlib.crc32(data) & 0xFFFFFFFF:08x}"
    return "sha256:" + hashlib.sha256(data).hexdigest()


def same_content(board_hash: str | None, data: bytes) -> bool:
    """True when the board's file (hashed as ``board_hash``) already holds ``data``."""
    if board_hash is None:
        return False
    kind = board_hash.split(":", 1)[0]
    return board_hash == host_hash(data, kind)


class BoardFS:
    """File operations on one board, through an entered :class:`RawRepl`."""

    def __init__(self, repl: RawRepl) -> None:
        self.repl = repl
        self._ready = False

    def _helpers(self) -> None:
        if not self._ready:
            self.repl.exec(_HELPERS)
            self._ready = True

    def info(self) -> BoardInfo:
        """Implementation, ``sys.platform``, version and machine string of the board."""
        out = self.repl.exec(
            "import sys\n"
            "try:\n import os\n m = os.uname().machine\nexcept Exception:\n m = ''\n"
            "print(repr((sys.implementation.name, sys.platform, "
            "'.'.join(str(x) for x in sys.implementation.version[:3]), m)))")
        try:
            impl, platform, version, machine = ast.literal_eval(out.strip())
        except (ValueError, SyntaxError):
            raise BoardError(f"unexpected answer from the board: {out[:60]!r}") from None
        return BoardInfo(str(impl), str(platform), str(version), str(machine))

    def hashes(self, paths: list[str]) -> dict[str, str | None]:
        """The board-side hash of each path (None: missing, or not hashable there)."""
        self._helpers()
        rel = [safe_relpath(p) for p in paths]
        out = self.repl.exec(f"print(repr([_llh(p) for p in {rel!r}]))", timeout_s=60)
        try:
            values = ast.literal_eval(out.strip())
        except (ValueError, SyntaxError):
            raise BoardError(f"unexpected answer from the board: {out[:60]!r}") from None
        return dict(zip(paths, values, strict=True))

    def write(self, dest: str, data: bytes) -> None:
        """Write ``data`` to ``dest`` via a temp file and a rename (no half-written files)."""
        self._helpers()
        rel = safe_relpath(dest)
        parents = list(reversed(PurePosixPath(rel).parents))[1:]
        tmp = rel + ".tmp"
        code = "".join(f"_llmk({str(d)!r})\n" for d in parents)
        try:
            self.repl.exec(code + f"_llf = open({tmp!r}, 'wb')\n_llw = _llf.write")
            for start in range(0, max(len(data), 1), _EXEC_BYTES):
                block = data[start:start + _EXEC_BYTES]
                lines = [f"_llw({block[i:i + _WRITE_CHUNK]!r})"
                         for i in range(0, len(block), _WRITE_CHUNK)]
                if lines:
                    self.repl.exec("\n".join(lines))
            self.repl.exec(f"_llf.close()\n_llmv({tmp!r}, {rel!r})")
        except BoardFullError:
            self._cleanup(tmp)
            raise BoardFullError(f"the board's filesystem is full while writing {rel} "
                                 f"({self.free_text()}; remove old files from the board "
                                 "or reformat it)", 28) from None

    def _cleanup(self, tmp: str) -> None:
        try:
            self.repl.exec(f"try:\n _llf.close()\nexcept Exception:\n pass\n"
                           f"try:\n os.remove({tmp!r})\nexcept OSError:\n pass")
        except BoardError:
            pass

    def cwd(self) -> str:
        """The board's current directory (its flash root)."""
        return self.repl.exec("import os\nprint(os.getcwd())").strip()

    def free_bytes(self) -> int | None:
        """Free bytes on the board's filesystem, when the port has ``os.statvfs``."""
        try:
            out = self.repl.exec("import os\ns = os.statvfs('.')\nprint(s[0] * s[3])")
            return int(out.strip())
        except (BoardError, ValueError):
            return None

    def free_text(self) -> str:
        free = self.free_bytes()
        return "free space unknown" if free is None else f"{free} bytes free"
