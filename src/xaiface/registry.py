"""The one registry helper: named objects of one kind (models, detectors, explainers...).

Every family keeps a :class:`Registry` (``models/registry.py``, ``detect/base.py``,
``explain/base.py``, ``soft/traits.py``, ``factors/transforms.py``), in the manner of timm's
``_registry.py``: objects are registered by name with their metadata (decorator or call),
listed with shell-style wildcards and looked up by name.

The registry never imports implementations itself: the package that owns it names its
built-in modules (``builtins``), imported on the first look-up, or names, for a built-in whose
metadata is known without importing it, the module whose import registers it
(:meth:`Registry.register_lazy`, used for the torch-free model catalog).
"""
from __future__ import annotations

import fnmatch
import importlib
import sys
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Generic, Iterator, Mapping, Sequence, TypeVar

from ._plugins import import_optional
from .errors import ConfigError, ModelNotFoundError, XaifaceError

T = TypeVar("T")

_NO_OBJECT: Any = object()


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered name.

    Attributes:
        name: the registered name.
        obj: the registered object; ``None`` for a lazy built-in not imported yet.
        meta: the metadata given at registration (read-only).
        module: for a lazy built-in, the module whose import registers ``obj``.
    """

    name: str
    obj: T | None
    meta: Mapping[str, Any] = field(default_factory=dict)
    module: str | None = None


class Registry(Generic[T]):
    """Objects of one kind by name.

    Args:
        kind: what is registered, in words, for messages (``"model"``, ``"detector"``...).
        builtins: modules (absolute names) imported on the first look-up; importing one
            registers its objects. A module that does not exist is skipped (optional stages).
        unknown_error: the error type :meth:`entry` raises for an unknown name
            (:class:`~xaiface.errors.ModelNotFoundError` by default).

    Example:
        >>> reg = Registry[int]("number")
        >>> reg.register("one", 1, note="odd")
        1
        >>> reg.get("one"), reg.list("o*"), reg.meta("one")["note"]
        (1, ['one'], 'odd')
    """

    def __init__(self, kind: str, builtins: Sequence[str] = (), *,
                 unknown_error: type[XaifaceError] = ModelNotFoundError):
        self.kind = kind
        self._builtins = tuple(builtins)
        self._loaded = not self._builtins
        self._loading = False
        self._unknown_error = unknown_error
        self._entries: dict[str, Entry[T]] = {}

    # ---- registering -----------------------------------------------------------------------
    def register(self, name: str, obj: Any = _NO_OBJECT, *, replace: bool = False, **meta: Any) -> Any:
        """Register ``obj`` under ``name`` with ``meta``; without ``obj``, a decorator doing so.

        Returns:
            ``obj`` (the decorator returns the decorated object unchanged).
        Raises:
            ConfigError: ``name`` is registered already and ``replace`` is false. A lazy built-in
                is filled in by its own module (its registration is not a duplicate); for any
                other caller, its module is imported first, so the name is taken.
        """
        if obj is _NO_OBJECT:
            return lambda o: self.register(name, o, replace=replace, **meta)
        old = self._entries.get(name)
        if old is not None and old.obj is None and old.module is not None and old.module not in sys.modules:
            importlib.import_module(old.module)  # a lazy built-in is filled in by its own module only
            old = self._entries.get(name)
        if old is not None and old.obj is not None and not replace:
            raise ConfigError(f"{self.kind} {name!r} is registered already; choose another name "
                              "(or pass replace=True to replace it)")
        merged = {**(old.meta if old is not None else {}), **meta}
        self._entries[name] = Entry(name, obj, MappingProxyType(merged))
        return obj

    def register_lazy(self, name: str, module: str, **meta: Any) -> None:
        """Register a built-in by name and metadata only; importing ``module`` registers its object.

        A name registered already (e.g. by importing its module first) is kept as it is.
        """
        if name not in self._entries:
            self._entries[name] = Entry(name, None, MappingProxyType(dict(meta)), module)

    def unregister(self, name: str) -> None:
        """Forget ``name`` (nothing happens when it is not registered)."""
        self._entries.pop(name, None)

    # ---- looking up ------------------------------------------------------------------------
    def _load_builtins(self) -> None:
        if self._loaded or self._loading:  # loading: a built-in module may look names up itself
            return
        self._loading = True
        try:
            for module in self._builtins:
                import_optional(module)
            self._loaded = True
        finally:
            self._loading = False

    def list(self, pattern: str = "*") -> list[str]:
        """Registered names matching a shell-style wildcard (``"iresnet*"``), sorted."""
        self._load_builtins()
        return sorted(n for n in self._entries if fnmatch.fnmatch(n, pattern))

    def entry(self, name: str) -> Entry[T]:
        """The :class:`Entry` of ``name``, its lazy module not imported.

        Raises:
            ModelNotFoundError (or the registry's ``unknown_error``): an unknown name; the
                message names the kind and every registered name.
        """
        self._load_builtins()
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(sorted(self._entries)) or "none"
            raise self._unknown_error(f"unknown {self.kind} {name!r}; registered: {known}") from None

    def meta(self, name: str) -> Mapping[str, Any]:
        """The metadata registered with ``name`` (read-only; no import of a lazy built-in)."""
        return self.entry(name).meta

    def get(self, name: str) -> T:
        """The object registered under ``name`` (importing its module first for a lazy built-in).

        Raises:
            ModelNotFoundError (or the registry's ``unknown_error``): an unknown name.
            ConfigError: a lazy built-in whose module did not register it.
        """
        e = self.entry(name)
        if e.obj is None and e.module is not None:
            importlib.import_module(e.module)
            e = self._entries[name]
        if e.obj is None:
            raise ConfigError(f"{self.kind} {name!r}: importing {e.module} did not register it")
        return e.obj

    def __contains__(self, name: object) -> bool:
        self._load_builtins()
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.list())

    def __len__(self) -> int:
        self._load_builtins()
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self._entries)} registered)"
