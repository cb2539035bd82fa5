"""`xaiface eval lfw` end to end on a small real subset (2 genuine + 2 impostor pairs per fold)."""
from __future__ import annotations

import json

from xaiface.cli import main


def test_eval_lfw_small(tmp_path, capsys, data_root):
    out = tmp_path / "eval"
    code = main(["eval", "lfw", "--out", str(out), "--pairs-per-fold", "4", "--cache", str(tmp_path / "c.sqlite"),
                 "--quiet", "--data", str(data_root)])
    assert code == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["pairs"] == 40 and rep["result"]["n_pairs"] == 40
    assert len(rep["result"]["fold_accuracies"]) == 10
    # the default model on easy pairs: well above chance
    assert rep["result"]["mean_accuracy"] >= 0.85
    assert set(rep["variants"]) == {f"select={s},flip={f}" for s in ("center", "largest") for f in ("on", "off")}
    for f in ("roc.png", "det.png", "scores.png", "scores.npz"):
        assert (out / f).stat().st_size > 1000
    # a rerun takes every detection from the cache
    code = main(["eval", "lfw", "--out", str(out), "--pairs-per-fold", "4", "--cache", str(tmp_path / "c.sqlite"),
                 "--quiet", "--data", str(data_root)])
    rep2 = json.loads((out / "report.json").read_text())
    assert rep2["timing_s"]["detections_computed"] == 0
    assert rep2["result"]["fold_accuracies"] == rep["result"]["fold_accuracies"]
    capsys.readouterr()


def test_eval_lfw_one_fold_is_refused_before_any_work(tmp_path, capsys, data_root):
    out = tmp_path / "one"
    assert main(["eval", "lfw", "--out", str(out), "--data", str(data_root), "--folds", "1", "--pairs-per-fold", "4",
                 "--quiet"]) == 1
    assert "at least 2 folds" in capsys.readouterr().err and not out.exists()
