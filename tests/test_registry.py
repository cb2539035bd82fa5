"""The one registry helper (:mod:`xaiface.registry`) and the same rules over every registry that
uses it: a duplicate name raises, an unknown name's error lists the registered ones, wildcards list."""
from __future__ import annotations

import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pytest

from xaiface.detect.base import DETECTORS, get_detector, list_detectors, register_detector
from xaiface.errors import ConfigError, ModelNotFoundError, XaifaceError
from xaiface.explain.base import EXPLAINERS, explainer_info, list_explainers, register_explainer
from xaiface.factors.transforms import FACTORS, CallableCodec, factor_info, list_factors, register_codec
from xaiface.models.registry import MODELS, get_model, list_models, model_spec, register_model
from xaiface.registry import Registry
from xaiface.soft.traits import ESTIMATORS, estimator_info, list_estimators, register_estimator


@dataclass(frozen=True)
class Family:
    """One registry as its package exposes it."""

    registry: Registry[Any]
    list: Callable[[str], list[str]]
    lookup: Callable[[str], Any]
    register_again: Callable[[str], Any]  # registers an existing name anew (must raise)
    pattern: str
    matches: set[str]
    unknown_error: type[XaifaceError] = ModelNotFoundError


FAMILIES = {
    "models": Family(MODELS, list_models, get_model, lambda n: register_model(model_spec(n))(lambda spec, **kw: None),
                     "iresnet*", {"iresnet18", "iresnet34", "iresnet50", "iresnet100"}),
    "detectors": Family(DETECTORS, list_detectors, get_detector, lambda n: register_detector(n, "again")(lambda: None),
                        "dlib-*", {"dlib-hog", "dlib-mmod"}),
    "explainers": Family(EXPLAINERS, list_explainers, explainer_info,
                         lambda n: register_explainer(n, "baseline", "ref", "again")(type("Again", (), {})),
                         "xface?", {"xface1", "xface2", "xface3"}),
    "estimators": Family(ESTIMATORS, list_estimators, estimator_info, lambda n: register_estimator(n, ("age",), "again")(lambda: None),
                         "dlib-*", {"dlib-age", "dlib-gender"}),
    "factors": Family(FACTORS, lambda p: list_factors(pattern=p), factor_info,
                      lambda n: register_codec(n, CallableCodec), "jpeg2000*", {"jpeg2000", "jpeg2000-psnr"},
                      unknown_error=ConfigError),
}


@pytest.mark.parametrize("family", FAMILIES)
def test_duplicate_name_raises_and_changes_nothing(family: str) -> None:
    f = FAMILIES[family]
    name = sorted(f.matches)[0]
    f.registry.get(name)  # built-ins loaded (a lazy model's module imported)
    before = f.registry.entry(name)
    with pytest.raises(ConfigError, match=f"{name!r} is registered already"):
        f.register_again(name)
    assert f.registry.entry(name) is before


@pytest.mark.parametrize("family", FAMILIES)
def test_unknown_name_lists_the_registered_names(family: str) -> None:
    f = FAMILIES[family]
    names = f.list("*")
    with pytest.raises(f.unknown_error) as e:
        f.lookup("no-such-name")
    text = str(e.value)
    assert "no-such-name" in text and all(n in text for n in names)


@pytest.mark.parametrize("family", FAMILIES)
def test_wildcard_list(family: str) -> None:
    f = FAMILIES[family]
    assert set(f.list(f.pattern)) == f.matches
    assert f.list("*") == sorted(f.list("*")) and f.matches < set(f.list("*"))
    assert f.list("no-such-*") == []


# ---- the helper itself ------------------------------------------------------------------------


def test_register_get_meta_replace_unregister() -> None:
    reg: Registry[int] = Registry("number")

    @reg.register("two", parity="even")
    def two() -> int:
        return 2

    assert reg.register("one", 1, parity="odd") == 1
    assert reg.get("two") is two and reg.meta("one")["parity"] == "odd"
    with pytest.raises(TypeError):
        reg.meta("one")["parity"] = "even"  # type: ignore[index]  # read-only
    with pytest.raises(ConfigError, match="number 'one' is registered already"):
        reg.register("one", 11)
    reg.register("one", 11, replace=True)
    assert reg.get("one") == 11 and reg.meta("one")["parity"] == "odd"  # metadata kept, updated by name
    assert reg.list() == ["one", "two"] and reg.list("t*") == ["two"] and "one" in reg and len(reg) == 2
    reg.unregister("one")
    with pytest.raises(ModelNotFoundError, match="unknown number 'one'; registered: two"):
        reg.get("one")


def test_unknown_error_type_is_the_registrys() -> None:
    reg: Registry[int] = Registry("factor", unknown_error=ConfigError)
    with pytest.raises(ConfigError, match="unknown factor 'x'; registered: none"):
        reg.entry("x")


def _write(folder: Path, name: str, body: str) -> None:
    (folder / f"{name}.py").write_text(textwrap.dedent(body))


@pytest.fixture
def plugin_modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A package-like set of modules: a home module with a registry, a built-in and a lazy one."""
    _write(tmp_path, "h2reg_home", """
        from xaiface.registry import Registry
        REG = Registry("thing", builtins=("h2reg_builtin", "h2reg_not_written"))
        REG.register_lazy("late", "h2reg_late", kind="lazy")
    """)
    _write(tmp_path, "h2reg_builtin", """
        from h2reg_home import REG
        REG.register("early", 1)
    """)
    _write(tmp_path, "h2reg_late", """
        from h2reg_home import REG
        REG.register("late", 2, note="imported")
    """)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    for m in ("h2reg_home", "h2reg_builtin", "h2reg_late"):
        sys.modules.pop(m, None)


def test_builtins_imported_on_first_lookup_and_lazy_entries_on_get(plugin_modules: None) -> None:
    import h2reg_home  # type: ignore[import-not-found]

    assert "h2reg_builtin" not in sys.modules  # the registry module imports nothing by itself
    assert h2reg_home.REG.list() == ["early", "late"]  # a built-in module that does not exist is skipped
    assert "h2reg_builtin" in sys.modules and "h2reg_late" not in sys.modules
    assert h2reg_home.REG.entry("late").obj is None and h2reg_home.REG.meta("late")["kind"] == "lazy"
    assert h2reg_home.REG.get("late") == 2 and "h2reg_late" in sys.modules
    assert dict(h2reg_home.REG.meta("late")) == {"kind": "lazy", "note": "imported"}
    with pytest.raises(ConfigError, match="registered already"):
        h2reg_home.REG.register("late", 3)  # filled in now: a duplicate


def test_lazy_module_that_does_not_register_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write(tmp_path, "h2reg_silent", "X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg: Registry[int] = Registry("thing")
    reg.register_lazy("quiet", "h2reg_silent")
    try:
        with pytest.raises(ConfigError, match="importing h2reg_silent did not register it"):
            reg.get("quiet")
    finally:
        sys.modules.pop("h2reg_silent", None)


def test_nobody_else_takes_a_lazy_builtins_name(plugin_modules: None) -> None:
    import h2reg_home  # type: ignore[import-not-found]

    with pytest.raises(ConfigError, match="thing 'late' is registered already"):
        h2reg_home.REG.register("late", 3)  # its module is imported first, and registers it
    assert h2reg_home.REG.get("late") == 2
