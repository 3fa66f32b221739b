"""``livinglab console``: the fleet in a browser, read-only over what the gateway keeps."""

from .app import build_app
from .errors import ConsoleError
from .server import serve

__all__ = ["ConsoleError", "build_app", "serve"]
