"""`xaiface train libf` (tiny, resumable) and `xaiface explain --method libf-ebm` with its artefacts."""
from __future__ import annotations

import json

import numpy as np
import pytest

from xaiface.cli import main

TINY = ["--folds", "1", "--pairs-per-fold", "2", "--epochs", "2", "--steps-per-epoch", "2", "--batch-size", "16",
        "--embedding-dim", "2", "--width", "4", "--interactions", "0", "--outer-bags", "1", "--max-rounds", "50",
        "--n-jobs", "1", "--threads", "1", "--encodings", "symmetric", "--quiet"]


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="module")
def tiny_pairs(lfw, cached_hog):
    """The first genuine and impostor pair of every fold; their detections put in the session cache."""
    from xaiface.io import load_image

    pairs = []
    for k in range(10):
        fold = [p for p in lfw.pairs() if p.fold == k]
        pairs += [next(p for p in fold if p.same), next(p for p in fold if not p.same)]
    for p in pairs:
        for path in (p.path_a, p.path_b):
            cached_hog.detect(load_image(path))
    return pairs


@pytest.fixture(scope="module")
def trained(tiny_pairs, det_cache, tmp_path_factory):
    out = tmp_path_factory.mktemp("libf-train") / "model"
    code = main(["train", "libf", "--out", str(out), "--cache", str(det_cache), *TINY])
    assert code == 0
    return out


def test_train_writes_every_stage(trained, capsys):
    for rel in ("config.json", "patches.npz", "report.json", "fold-01/encoder.pt", "fold-01/byol-checkpoint.pt",
                "fold-01/libf.npz", "fold-01/ebm-symmetric/model.json", "fold-01/ebm-symmetric/arrays.npz",
                "fold-01/result-symmetric.json"):
        assert (trained / rel).is_file(), rel
    rep = json.loads((trained / "report.json").read_text())
    assert rep["default_fold"] == 1 and rep["folds_trained"] == [1]
    res = json.loads((trained / "fold-01/result-symmetric.json").read_text())
    assert res["n_test"] == 2 and res["n_train"] == 18 and 0 <= res["accuracy"] <= 1
    assert rep["encodings"]["symmetric"]["fold_accuracies"] == [res["accuracy"]]
    assert rep["timing_s"]["byol_per_fold"]["1"] > 0
    with np.load(trained / "patches.npz", allow_pickle=False) as z:
        assert z["pixels"].shape == (40, 11, 24, 24, 3)


def test_rerun_resumes_without_retraining(trained, det_cache, capsys):
    before = {p: p.stat().st_mtime_ns for p in trained.rglob("*") if p.is_file() and p.name != "report.json"}
    code, out, err = run(capsys, "train", "libf", "--out", trained, "--cache", det_cache, *TINY)
    assert code == 0, err
    assert "symmetric" in out and "BYOL" in out
    after = {p: p.stat().st_mtime_ns for p in before}
    assert after == before
    code, out, err = run(capsys, "train", "libf", "--out", trained, "--cache", det_cache,
                         *[a if a != "50" else "60" for a in TINY])
    assert code == 1 and "other settings" in err


def test_explain_cli_uses_the_artefacts(trained, tiny_pairs, det_cache, capsys, monkeypatch, tmp_path):
    p = tiny_pairs[0]
    monkeypatch.setenv("XAIFACE_LIBF", str(trained))
    code, out, err = run(capsys, "explain", p.path_a, p.path_b, "--method", "libf-ebm", "--out", tmp_path / "e",
                         "--cache", det_cache, "--select", "center", "--no-on-photo")
    assert code == 0, err
    s = json.loads(out)
    assert [m["method"] for m in s["methods"]] == ["libf-ebm"]
    rec = json.loads((tmp_path / "e" / "explanations.json").read_text())["explanations"][0]
    ex = rec["extra"]
    assert ex["intercept"] + sum(ex["patch_contributions"].values()) == pytest.approx(ex["logit"], abs=1e-9)
    assert rec["params"]["fold"] == 1 and rec["params"]["encoding"] == "symmetric"
    m = np.load(tmp_path / "e" / rec["files"]["combined"][0])
    assert m.shape == (150, 150) and len(np.unique(m)) <= 12
    assert (tmp_path / "e" / "report.html").is_file()
    monkeypatch.setenv("XAIFACE_LIBF", str(tmp_path / "untrained"))
    code, out, err = run(capsys, "explain", p.path_a, p.path_b, "--method", "libf-ebm", "--out", tmp_path / "f",
                         "--cache", det_cache)
    assert code == 1 and "xaiface train libf" in err


def test_eval_libf_figures(trained, tiny_pairs, abel, lfw, det_cache, capsys, tmp_path):
    deep = tmp_path / "deep.json"
    deep.write_text(json.dumps({"model": "dlib-resnet", "variants": {
        "select=center,flip=off": {"mean_accuracy": 0.98, "std_accuracy": 0.005},
        "select=center,flip=on": {"mean_accuracy": 0.99, "std_accuracy": 0.004}}}))
    code, out, err = run(capsys, "eval", "libf", "--model", trained, "--out", tmp_path / "ev", "--deep-report", deep,
                         "--cache", det_cache)
    assert code == 0, err
    s = json.loads(out)
    for name in ("accuracy", "patches", "explanation"):
        assert (tmp_path / "ev" / f"{name}.png").stat().st_size > 10_000
    kinds = [x["label"] for x in s["explained_pairs"]]
    assert kinds == ["match", "no match"]
    for x in s["explained_pairs"]:
        assert x["sum_check"] == pytest.approx(x["logit"], abs=1e-9)
    assert s["deep_model"]["select=center,flip=on"]["mean_accuracy"] == 0.99
    assert (tmp_path / "ev" / "global_explanation.json").is_file()


def test_train_distilled_encoder_and_patch_cosine(tiny_pairs, det_cache, capsys, tmp_path):
    """`--encoder distill`: the real dlib teacher's embeddings, a distilled encoder with its folded heads, resumable."""
    from xaiface.libf.features import LIBFEncoder

    argv = [a for a in TINY]
    argv[argv.index("--encodings") + 1] = "patch-cosine,symmetric"
    out = tmp_path / "distilled"
    code, text, err = run(capsys, "train", "libf", "--out", out, "--cache", det_cache, "--encoder", "distill",
                          "--max-byol-epochs", "1", *argv)
    assert code == 0, err
    assert "distillation stopped after epoch 1 of 2" in err and not (out / "fold-01/encoder.pt").exists()
    code, text, err = run(capsys, "train", "libf", "--out", out, "--cache", det_cache, "--encoder", "distill", *argv)
    assert code == 0, err
    assert "patch-cosine" in text and "distillation" in text
    for rel in ("teacher.npz", "fold-01/distill-checkpoint.pt", "fold-01/encoder.pt", "fold-01/result-patch-cosine.json",
                "fold-01/ebm-patch-cosine/model.json"):
        assert (out / rel).is_file(), rel
    enc = LIBFEncoder.load(out / "fold-01/encoder.pt")
    assert enc.meta["method"] == "distill" and enc.meta["teacher"] == "dlib-resnet"
    assert enc.projection is not None and enc.projection.shape == (11, 2, 2)
    with np.load(out / "teacher.npz", allow_pickle=False) as z:
        assert z["lfw"].shape == (40, 128)
        np.testing.assert_allclose(np.linalg.norm(z["lfw"], axis=1), 1, atol=1e-4)
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["encoder"] == "distill" and "byol" not in cfg
    rep = json.loads((out / "report.json").read_text())
    assert set(rep["encodings"]) == {"patch-cosine", "symmetric"} and rep["timing_s"]["byol_per_fold"]["1"] > 0
    res = json.loads((out / "fold-01/result-patch-cosine.json").read_text())
    assert res["n_test"] == 2 and 0 <= res["accuracy"] <= 1
