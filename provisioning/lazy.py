"""Stand-ins that import a module on first attribute access.

cryptography costs ~0.1 s to import and only `broker certs` and `device flash` sign
anything, yet the module that signs is loaded by every ``livinglab`` command (the CLI
registers all sub-commands). Type checkers see the real imports (``TYPE_CHECKING``).
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

__all__ = ["lazy_attr", "lazy_module"]


class _Lazy:
    def __init__(self, module: str, attr: str | None = None) -> None:
        self._module, self._attr = module, attr
        self._target: Any = None

    def _load(self) -> Any:
        if self._target is None:
            mod: ModuleType = importlib.import_module(self._module)
            self._target = getattr(mod, self._attr) if self._attr else mod
        return self._target

    def __getattr__(self, name: str) -> Any:
        return getattr(self._load(), name)


def lazy_module(name: str) -> Any:
    """``name`` imported when an attribute of it is first read."""
    return _Lazy(name)


def lazy_attr(module: str, attr: str) -> Any:
    """``module.attr`` (a class, say) imported when an attribute of it is first read."""
    return _Lazy(module, attr)
