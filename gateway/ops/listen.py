"""A listening socket with one-line errors: the console and SensorThings bind this way, so
a busy port or a bad address ends in a sentence naming the key to change."""

from __future__ import annotations

import errno
import socket

__all__ = ["bind"]


def bind(host: str, port: int, what: str, section: str,
         error: type[Exception]) -> socket.socket:
    """The listening socket on ``host:port``; ``error`` (the caller's own class) with a
    line naming ``[section] host/port`` when the address does not resolve or is taken."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise error(f"{what} host {host!r} does not resolve: {exc.strerror} "
                    f"(check [{section}] host or --host)") from None
    family, _, _, _, addr = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(addr)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise error(f"{what} port {host}:{port} is already in use (another {what} "
                        f"running? pick one with --port or [{section}] port)") from None
        raise error(f"cannot listen on {host}:{port}: {exc.strerror} "
                    f"(check [{section}] host/port)") from None
    sock.set_inheritable(True)
    return sock
