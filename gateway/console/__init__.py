"""``livinglab console``: the fleet in a browser, read-only over what the gateway keeps.

The app (Starlette, uvicorn, Jinja2) is imported by the command that serves it
(``cli``), never by this package: ``livinglab gateway`` does not pay for it.
"""

from .errors import ConsoleError

__all__ = ["ConsoleError"]
