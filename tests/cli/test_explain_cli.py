"""`xaiface explain` and `xaiface explainers` on a real LFW pair and on bad input."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from xaiface.cli import main

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bad_inputs import write_bad_files  # noqa: E402


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def pair(lfw):
    return lfw.image_path("Abel_Pacheco", 1), lfw.image_path("Abel_Pacheco", 4)


def test_explain_real_pair(capsys, tmp_path, pair):
    out = tmp_path / "expl"
    code, stdout, err = run(capsys, "explain", *pair, "--method", "xssab", "--method", "random",
                            "--threshold", "0.9", "--out", out)
    assert code == 0, err
    s = json.loads(stdout)
    assert s["decision"] == "match" and s["score"] >= 0.9 and s["threshold"] == 0.9 and s["model"] == "dlib-resnet"
    assert [m["method"] for m in s["methods"]] == ["xssab", "random"]
    xs, rnd = s["methods"]
    assert (xs["n_forward"], xs["n_backward"]) == (2, 4) and (rnd["n_forward"], rnd["n_backward"]) == (2, 0)
    for name in ("figure.png", "report.html", "explanations.json"):
        assert (out / name).is_file() and (out / name).stat().st_size > 1000
    for m in s["methods"]:
        for kind in ("similarity", "dissimilarity", "combined"):
            for f in m["files"][kind]:
                arr = np.load(f)
                assert arr.shape == (150, 150) and arr.dtype == np.float32 and np.isfinite(arr).all()
    comb_a = np.load(out / "xssab_combined_a.npy")
    np.testing.assert_allclose(comb_a, np.load(out / "xssab_similarity_a.npy") - np.load(out / "xssab_dissimilarity_a.npy"),
                               atol=1e-6 * np.abs(comb_a).max())
    recs = json.loads((out / "explanations.json").read_text())["explanations"]
    assert recs[0]["sources"] == [str(p) for p in pair] and recs[1]["params"] == {"seed": 0}
    doc = (out / "report.html").read_text()
    assert "Abel_Pacheco_0001.jpg" in doc and "data:image/png;base64," in doc
    # the soft-biometric section (on by default): both faces' traits explain the verdict
    assert "<h2>Soft biometrics</h2>" in doc and "gender" in doc
    soft = json.loads((out / "soft_biometrics.json").read_text())
    assert soft["match"] is True and soft["outcome"] == "match" and soft["genuine"] is None
    assert {"gender", "age"} <= set(soft["comparisons"]) and (out / "soft_biometrics.png").stat().st_size > 5000
    assert s["soft_biometrics"]["summary"] == soft["summary"]


def test_explain_soft_biometrics_with_ground_truth_and_off(capsys, tmp_path, lfw):
    a, b = lfw.image_path("Abel_Pacheco", 1), lfw.image_path("Akhmed_Zakayev", 1)
    code, stdout, err = run(capsys, "explain", a, b, "--method", "random", "--different", "--out", tmp_path / "d")
    assert code == 0, err
    soft = json.loads((tmp_path / "d" / "soft_biometrics.json").read_text())
    assert soft["genuine"] is False and soft["outcome"] in ("true reject", "false accept")
    assert soft["reason_kind"] == ("shared traits" if soft["match"] else "differing traits")
    code, stdout, err = run(capsys, "explain", a, b, "--method", "random", "--no-soft-biometrics", "--out", tmp_path / "n")
    assert code == 0 and "soft_biometrics" not in json.loads(stdout)
    assert "Soft biometrics" not in (tmp_path / "n" / "report.html").read_text()


def test_explain_unknown_method(capsys, tmp_path, pair):
    code, out, err = run(capsys, "explain", *pair, "--method", "xssab", "--method", "no-such-method",
                         "--threshold", "0.9", "--out", tmp_path / "x")
    assert code == 1 and out == ""
    assert "no-such-method" in err and "xssab" in err and "Traceback" not in err
    assert not (tmp_path / "x").exists()


def test_explain_no_face(capsys, tmp_path, pair):
    bad = write_bad_files(tmp_path / "bad", pair[0])["noface"]
    code, out, err = run(capsys, "explain", pair[0], bad, "--threshold", "0.9", "--out", tmp_path / "x")
    assert code == 1 and out == ""
    assert bad.name in err and "no face" in err.lower() and "Traceback" not in err


def test_explainers_listing(capsys):
    code, out, _ = run(capsys, "explainers", "--json")
    assert code == 0
    rows = {r["name"]: r for r in json.loads(out)["explainers"]}
    assert {"xssab", "gradient", "random"} <= set(rows)
    assert rows["xssab"]["family"] == "gradient" and "WACV 2024" in rows["xssab"]["reference"]


def test_same_and_different_together_are_a_usage_error(capsys, tmp_path, pair):
    with pytest.raises(SystemExit) as e:
        main(["explain", *map(str, pair), "--same", "--different", "--out", str(tmp_path / "x")])
    assert e.value.code == 2 and "not allowed with" in capsys.readouterr().err
