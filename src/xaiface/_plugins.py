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


def lazy_exports(package: str, exports: dict[str, tuple[str, ...]]):
    """A package's ``__getattr__``, ``__dir__`` and ``__all__`` that import each public name on first use.

    ``exports`` maps a submodule (relative, e.g. ``".runner"``) to the public names it defines, so
    that importing the package (as the command line does for its sub-commands) costs nothing until
    a name is used (PEP 562). Use as ``__getattr__, __dir__, __all__ = lazy_exports(__name__, {...})``.
    """
    home = {name: module for module, names in exports.items() for name in names}

    def __getattr__(name: str):
        if name not in home:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(home[name], package), name)
        setattr(importlib.import_module(package), name, value)  # later look-ups skip this hook
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(importlib.import_module(package))) | set(home))

    return __getattr__, __dir__, sorted(home)
