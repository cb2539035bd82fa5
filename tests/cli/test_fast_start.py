"""The command line starts fast: `xaiface --help` and `xaiface models` never import torch."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

HEAVY = ("torch", "matplotlib", "sklearn", "onnx", "onnxruntime", "cv2", "scipy", "interpret", "dlib")


def _modules_after(body: str) -> dict:
    """Run ``body`` (stdout captured) in a fresh interpreter; the heavy modules it imported, its output."""
    code = ("import contextlib, io, json, sys\n"
            "from xaiface.cli import build_parser, main\n"
            "out = io.StringIO()\n"
            "with contextlib.redirect_stdout(out):\n"
            + textwrap.indent(textwrap.dedent(body).strip(), "    ") + "\n"
            f"print(json.dumps({{'heavy': sorted(m for m in {HEAVY!r} if m in sys.modules), 'out': out.getvalue()}}))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_models_command_without_torch():
    got = _modules_after("""
        build_parser()
        code = main(["models", "--json"])
        assert code == 0
    """)
    assert got["heavy"] == []
    listed = json.loads(got["out"])
    assert "dlib-resnet" in [m["name"] for m in listed["models"]] and "dlib-hog" in listed["detectors"]


def test_help_without_torch():
    got = _modules_after("""
        try:
            main(["--help"])
        except SystemExit as e:
            assert e.code == 0
    """)
    assert got["heavy"] == [] and "verify" in got["out"] and "bench" in got["out"]


def test_verify_imports_no_plotting_or_learning_library(data_root):
    """`xaiface verify` on a real pair needs torch and dlib, not scikit-learn, matplotlib or scipy."""
    a, b = (data_root / "lfw" / "images" / "Abel_Pacheco" / f"Abel_Pacheco_000{i}.jpg" for i in (1, 4))
    got = _modules_after(f"""
        code = main(["verify", {str(a)!r}, {str(b)!r}])
        assert code == 0
    """)
    assert "torch" in got["heavy"] and "dlib" in got["heavy"]
    assert not {"sklearn", "matplotlib", "scipy", "onnx", "interpret"} & set(got["heavy"]), got["heavy"]
    assert json.loads(got["out"])["match"] is True


def test_specs_from_the_catalog_match_the_built_models():
    """The torch-free specs are the ones the built models carry."""
    from xaiface.models import get_model, model_spec

    m = get_model("dlib-resnet", weights="random")
    spec = model_spec("dlib-resnet")
    assert (m.spec.name, m.spec.embedding_size, m.spec.preprocessing) == (spec.name, spec.embedding_size,
                                                                            spec.preprocessing)
    assert get_model("iresnet18", weights="random").spec == model_spec("iresnet18")


@pytest.mark.parametrize("package", ["xaiface.bench", "xaiface.libf", "xaiface.soft", "xaiface.factors", "xaiface.models"])
def test_lazy_packages_export_their_names(package):
    import importlib

    mod = importlib.import_module(package)
    for name in mod.__all__:
        assert getattr(mod, name) is not None, (package, name)
    with pytest.raises(AttributeError):
        getattr(mod, "no_such_name")
