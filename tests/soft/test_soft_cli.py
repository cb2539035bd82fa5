"""The soft-biometrics commands on tiny real subsets, and the report section."""
from __future__ import annotations

import json

import numpy as np

from xaiface.cli import main


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_traits_of_one_photo_and_a_pair(capsys, lfw, tmp_path, small_body_mass_model):
    model, _ = small_body_mass_model
    a, b = lfw.image_path("Serena_Williams", 1), lfw.image_path("Serena_Williams", 2)
    code, out, _ = run(capsys, "traits", a, "--body-mass-model", model, "--quiet")
    assert code == 0
    face = json.loads(out)["faces"][0]
    assert face["traits"]["gender"]["value"] == "female" and set(face["traits"]) == {"gender", "age", "bmi", "weight"}
    code, out, _ = run(capsys, "traits", a, b, "--same", "--no-body-mass", "--out", tmp_path / "pair", "--quiet")
    assert code == 0
    d = json.loads(out)
    assert d["outcome"] in ("true accept", "false reject") and d["genuine"] is True
    assert d["comparisons"]["gender"]["shared"] is True
    assert (tmp_path / "pair" / "soft_biometrics.png").stat().st_size > 1000
    assert json.loads((tmp_path / "pair" / "soft_biometrics.json").read_text())["summary"] == d["summary"]


def test_traits_bad_usage(capsys, lfw, tmp_path):
    a = lfw.image_path("Serena_Williams", 1)
    code, _, err = run(capsys, "traits", a, a, a, "--no-body-mass")
    assert code == 1 and "one photo" in err
    code, _, err = run(capsys, "traits", tmp_path / "missing.jpg", "--no-body-mass")
    assert code == 1 and "missing.jpg" in err and "Traceback" not in err
    code, out, _ = run(capsys, "traits", "--list")
    assert code == 0 and "dex-age" in [e["name"] for e in json.loads(out)["estimators"]]


def test_analyze_soft_biometrics_tiny(capsys, tmp_path, small_body_mass_model):
    model, _ = small_body_mass_model
    out_dir = tmp_path / "an"
    code, out, _ = run(capsys, "analyze", "soft-biometrics", "--out", out_dir, "--folds", "1", "--pairs-per-fold", "4",
                       "--body-mass-model", model, "--quiet")
    assert code == 0 and "4 pairs" in out
    rep = json.loads((out_dir / "report.json").read_text())
    assert rep["pairs"] == 4 and rep["table"][0]["genuine_pairs"] == 2 and rep["table"][0]["impostor_pairs"] == 2
    assert rep["threshold"]["name"] == "eer"
    for f in ("table.md", "table.csv", "rates.png", "age_gap.png", "bmi_gap.png", "pairs.csv", "errors.jsonl"):
        assert (out_dir / f).is_file(), f
    assert len((out_dir / "pairs.csv").read_text().splitlines()) == 5


def test_eval_soft_biometrics_tiny(capsys, tmp_path):
    code, out, err = run(capsys, "eval", "soft-biometrics", "--out", tmp_path / "ev", "--sets", "utkface", "--limit", "6",
                         "--quiet")
    assert code == 0 and "UTKFace" in out and "4 malformed file name(s) skipped" in err
    rep = json.loads((tmp_path / "ev" / "report.json").read_text())
    assert rep["utkface"]["gender"]["n"] == 6 and np.isfinite(rep["utkface"]["age"]["mae"])


def test_report_section(real_faces, dlib_model):
    from xaiface.align import align_face
    from xaiface.soft import default_estimators, report_section

    (pa, fa), (pb, fb) = real_faces["Serena_Williams_0001.jpg"], real_faces["Abel_Pacheco_0001.jpg"]
    a, b = align_face(pa, fa, "dlib-150", source="serena.jpg"), align_face(pb, fb, "dlib-150", source="abel.jpg")
    e = dlib_model.embed(np.stack([a.image, b.image]))
    sec = report_section(a, b, float(e[0] @ e[1]), 0.9043, genuine=False, photos=(pa, pb),
                         estimators=default_estimators(body_mass=False), model="dlib-resnet")
    assert sec.data["outcome"] == "true reject" and "gender" in sec.data["reasons"]
    assert sec.data["images"] == ["serena.jpg", "abel.jpg"]
    assert sec.figure.ndim == 3 and sec.figure.shape[2] == 3
    h = sec.html()
    assert h.startswith("<h2>Soft biometrics</h2>") and "data:image/png;base64," in h and "<script" not in h
