"""The factor study on real LFW pairs and the real model: metrics, resume, plug-ins, CLI."""
from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest

from xaiface.cli import main
from xaiface.errors import ConfigError
from xaiface.factors.study import rank_correlation, run_factor_study, top_overlap

SMALL = dict(folds=[0, 1], pairs_per_fold=2, drift_pairs=2, workers=0, progress=False)


def _outcome(summary):
    drop = {"wall_s_this_call"}
    return {k: v for k, v in summary.items() if k not in drop}


@pytest.fixture(scope="module")
def jpeg_study(tmp_path_factory):
    out = tmp_path_factory.mktemp("jpeg-study")
    return out, run_factor_study(out, "jpeg", [30, 3], **SMALL)


def test_study_reports_every_level(jpeg_study):
    out, s = jpeg_study
    assert s["complete"] and s["pairs"] == 4 and s["transformed_photos"] == 8
    clean, q30, q3 = s["levels"]
    assert clean["level"] == "clean" and clean["bpp"] is None
    assert 0.5 < s["clean_threshold"]["value"] < 1
    assert q30["bpp"] > q3["bpp"] > 0 and q30["psnr_db"] > q3["psnr_db"]
    for r in (q30, q3):
        assert r["scored_pairs"] == 4 and 0 <= r["fmr"] <= 1 and 0 <= r["fnmr"] <= 1
        assert 0 <= r["detection_failure_rate"] <= 1
        assert r["drift"]["maps"] == 4 and -1 <= r["drift"]["spearman_mean"] <= 1
        assert 0 <= r["drift"]["top10_overlap_mean"] <= 1
    # quality 3 wrecks the photos: the similarity of the pairs moves more than at quality 30
    assert abs(q3["mean_similarity_change"]) > abs(q30["mean_similarity_change"])
    assert (out / "summary.md").read_text().count("|") > 30 and (out / "curves.png").stat().st_size > 10_000
    assert json.loads((out / "summary.json").read_text())["factor"] == "jpeg"


def test_interrupted_study_resumes_to_the_same_result(jpeg_study, tmp_path):
    _, full = jpeg_study
    part = run_factor_study(tmp_path, "jpeg", [30, 3], max_new_images=11, **SMALL)
    assert part["complete"] is False
    again = run_factor_study(tmp_path, "jpeg", [30, 3], **SMALL)
    assert again["complete"] is True
    assert _outcome(again) == _outcome(full)


def test_reused_landmarks_are_a_separate_run(jpeg_study):
    out, s = jpeg_study
    r = run_factor_study(out, "jpeg", [30], reuse_landmarks=True, **{**SMALL, "drift_pairs": 0})
    assert r["run_key"] != s["run_key"] and "reused" in r["landmarks"]
    assert r["levels"][1]["detection_failure_rate"] is None
    assert r["levels"][0]["eer"] == s["levels"][0]["eer"]  # same clean reference


def test_probe_only_transforms_the_second_photo(tmp_path):
    s = run_factor_study(tmp_path, "resolution", [0.25], apply="probe", **SMALL)
    assert s["transformed_photos"] < 8 and s["levels"][1]["drift"]["maps"] == 2


def test_drift_measures():
    a = np.arange(100.0).reshape(10, 10)
    assert rank_correlation(a, a) == pytest.approx(1)
    assert rank_correlation(a, -a) == pytest.approx(-1)
    assert math.isnan(rank_correlation(a, np.zeros_like(a)))
    assert top_overlap(a, a) == 1 and top_overlap(a, -a) == 0
    b = a.copy()
    b.ravel()[[99, 98]] = -1  # two of the top ten leave
    assert top_overlap(a, b) == pytest.approx(0.8)


def test_bad_study_options(tmp_path):
    with pytest.raises(ConfigError, match="quality"):
        run_factor_study(tmp_path, "jpeg", [30, 0], **SMALL)
    with pytest.raises(ConfigError, match="apply"):
        run_factor_study(tmp_path, "jpeg", [30], apply="gallery", **SMALL)
    with pytest.raises(ConfigError, match="repeat"):
        run_factor_study(tmp_path, "jpeg", [30, 30], **SMALL)


def test_cli_study_with_an_external_codec_on_a_worker(tmp_path, capsys):
    py = sys.executable
    enc = (f"{py} -c \"import sys; from PIL import Image; Image.open(sys.argv[1]).save(sys.argv[2], 'JPEG', "
           f"quality=int(float(sys.argv[3])))\" {{input}} {{output}} {{level}}")
    dec = f"{py} -c \"import sys; from PIL import Image; Image.open(sys.argv[1]).save(sys.argv[2])\" {{input}} {{output}}"
    out = tmp_path / "ext"
    rc = main(["study", "factors", "--factor", "ext-jpeg", "--codec", "ext-jpeg", "--encode-cmd", enc, "--decode-cmd", dec,
               "--levels", "30", "--folds", "1", "--pairs-per-fold", "2", "--drift-pairs", "0", "--workers", "1",
               "--out", str(out), "--quiet"])
    assert rc == 0
    ext = json.loads((out / "summary.json").read_text())
    ref = run_factor_study(tmp_path / "ref", "jpeg", [30], folds=[0], pairs_per_fold=2, drift_pairs=0, workers=0,
                           progress=False)
    assert ext["levels"][1]["bpp"] == ref["levels"][1]["bpp"]
    assert ext["levels"][1]["eer"] == ref["levels"][1]["eer"]
    assert "ext-jpeg" in capsys.readouterr().out


def test_cli_transform_and_gallery(lfw, tmp_path, capsys):
    photo = str(lfw.image_path("Abel_Pacheco", 1))
    assert main(["transform", photo, "--factor", "jpeg2000", "--level", "50", "--out", str(tmp_path / "j.png")]) == 0
    res = json.loads(capsys.readouterr().out)
    assert 24 / res["bpp"] == pytest.approx(50, rel=0.1) and (tmp_path / "j.png").is_file()
    assert main(["transform", photo, "--factor", "jpeg", "--level", "50", "--out", str(tmp_path / "j.jpg")]) == 1
    assert "losslessly" in capsys.readouterr().err
    assert main(["transform", photo, "--gallery", str(tmp_path / "g.png"), "--factor", "jpeg,resolution,slim-face"]) == 0
    assert (tmp_path / "g.png").stat().st_size > 20_000
    assert main(["transform", "--list"]) == 0
    assert "smooth-skin" in capsys.readouterr().out


def test_cli_study_plot_and_table(jpeg_study, tmp_path, capsys):
    out, _ = jpeg_study
    assert main(["study", "plot", str(out), str(out), "--out", str(tmp_path / "eer.png"), "--table", str(tmp_path / "t.md")]) == 0
    table = (tmp_path / "t.md").read_text()
    assert table.count(" | 4 | clean |") == 2 and " | 4 | 30 |" in table  # (the folder's last run may be the reuse run)
    assert (tmp_path / "eer.png").stat().st_size > 10_000
    assert main(["study", "plot", str(tmp_path / "nothing"), "--out", str(tmp_path / "x.png")]) == 1
    assert "no study summary" in capsys.readouterr().err


def test_other_weights_into_the_same_folder_are_a_separate_run(jpeg_study):
    out, s = jpeg_study
    r = run_factor_study(out, "jpeg", [30], weights="random", **SMALL)
    assert r["run_key"] != s["run_key"]  # not the packaged model's stored rows
    assert r["clean_threshold"]["value"] != pytest.approx(s["clean_threshold"]["value"], abs=1e-3)
    back = run_factor_study(out, "jpeg", [30, 3], **SMALL)  # both runs live in the folder
    assert back["run_key"] == s["run_key"] and _outcome(back)["levels"] == _outcome(s)["levels"]


def test_study_store_refuses_a_run_key_stored_with_other_weights(tmp_path):
    from xaiface.factors.study import StudyStore

    store = StudyStore(tmp_path / "study.sqlite")
    store.register("k", {"factor": "jpeg", "weights_sha256": "a" * 64})
    store.register("k", {"factor": "jpeg", "weights_sha256": "a" * 64})  # the same run: fine
    with pytest.raises(ConfigError, match="another --out or delete"):
        store.register("k", {"factor": "jpeg", "weights_sha256": "b" * 64})
    store.close()


def test_unusable_clean_photos_do_not_advise_resuming(tmp_path):
    from types import SimpleNamespace

    from xaiface.errors import DatasetError
    from xaiface.factors.study import StudyConfig, StudyStore, summarise
    from xaiface.factors.transforms import factor_info

    store = StudyStore(tmp_path / "study.sqlite")
    row = dict(nbytes=None, pixels=100, psnr=None, detected=True, fallback=False, face_found=None, seconds=0.0)
    store.put_images("k", "clean", [{**row, "path": "a.jpg", "emb": np.ones(4) / 2, "emb_mirror": np.ones(4) / 2, "error": None},
                                    {**row, "path": "b.jpg", "emb": None, "emb_mirror": None, "error": "b.jpg: bad photo"}])
    pairs = [SimpleNamespace(path_a="a.jpg", path_b="b.jpg", same=True, fold=0),
             SimpleNamespace(path_a="a.jpg", path_b="a.jpg", same=False, fold=0)]
    with pytest.raises(DatasetError) as e:
        summarise(store, "k", StudyConfig("jpeg"), [], pairs, [], ["a.jpg", "b.jpg"], factor_info("jpeg"))
    assert "b.jpg: bad photo" in str(e.value) and "does not compute them again" in str(e.value)
    store.close()


def test_damaged_study_row_is_dropped_and_computed_again(tmp_path):
    import sqlite3

    from xaiface.factors.study import StudyStore

    store = StudyStore(tmp_path / "study.sqlite")
    row = dict(nbytes=10, pixels=100, psnr=30.0, detected=True, fallback=False, face_found=None, error=None, seconds=0.0)
    store.put_images("k", "30.0", [{**row, "path": p, "emb": np.full(4, 0.5), "emb_mirror": np.full(4, 0.5)}
                                   for p in ("a.jpg", "b.jpg")])
    store.close()
    con = sqlite3.connect(tmp_path / "study.sqlite")
    with con:
        con.execute("UPDATE images SET emb=? WHERE path='b.jpg'", (np.full(4, 0.25, np.float32).tobytes(),))
    con.close()
    store = StudyStore(tmp_path / "study.sqlite")
    with pytest.warns(UserWarning, match="checksum"):
        assert store.done("k", "30.0") == {"a.jpg"}  # b.jpg is computed again by the next run
    assert set(store.images("k", "30.0")) == {"a.jpg"}
    store.close()


def test_cli_transform_of_an_unchanged_image_prints_valid_json(tmp_path, capsys):
    from PIL import Image

    grey = tmp_path / "grey.png"  # no face: the beautification filter leaves it as it is (infinite PSNR)
    Image.new("RGB", (120, 120), (128, 128, 128)).save(grey)
    assert main(["transform", str(grey), "--factor", "smooth-skin", "--level", "0.5"]) == 0

    def no_constants(name):
        raise AssertionError(f"{name} is not JSON")

    res = json.loads(capsys.readouterr().out, parse_constant=no_constants)
    assert res["psnr_db"] is None
