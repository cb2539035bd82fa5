"""Importing optional implementation modules (stages or methods that may not be built yet)."""
from __future__ import annotations

import importlib
from types import ModuleType


def import_optional(name: str) -> ModuleType | None:
    """Import module ``name``; ``None`` if that module (not one it imports) does not exist."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name is not None and (name == e.name or name.startswith(e.name + ".")):
            return None
        raise


def lazy_exports(package: str, exports: dict[str, str]):
    """A package's ``__getattr__`` and ``__dir__`` that import each public name on first use.

    ``exports`` maps a name to the submodule (relative, e.g. ``".runner"``) defining it, so that
    importing the package (as the command line does for its sub-commands) costs nothing until a
    name is used (PEP 562). Use as ``__getattr__, __dir__ = lazy_exports(__name__, {...})``.
    """

    def __getattr__(name: str):
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name], package), name)
        setattr(importlib.import_module(package), name, value)  # later look-ups skip this hook
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(importlib.import_module(package))) | set(exports))

    return __getattr__, __dir__
