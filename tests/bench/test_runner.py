"""`run_patch_lfw` and `xaiface bench`: an interrupted run resumes to exactly the uninterrupted result; bad input."""
from __future__ import annotations

import json

import numpy as np
import pytest

from xaiface.bench import ResultStore, run_patch_lfw
from xaiface.cli import main
from xaiface.errors import ConfigError, ModelNotFoundError

METHODS = ["random", "gradient"]


class Interrupt(Exception):
    pass


def _outcomes(out, summary):
    with ResultStore(out / "results.sqlite") as s:
        return {m: [r.outcome() for r in s.results(k)] for m, k in summary["run_keys"].items()}


def _strip_cost(summary):
    return {m: {k: v for k, v in r.items() if k != "cost"} for m, r in summary["methods"].items()}


@pytest.fixture(scope="module")
def uninterrupted(small_ds, dlib_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "full"
    s = run_patch_lfw(out, methods=METHODS, model=dlib_model, dataset=small_ds.root, n_pairs=4, progress=False)
    return out, s


def test_uninterrupted_run(uninterrupted):
    out, s = uninterrupted
    t = s["table1"]
    assert t["n_pairs"] == 6 and 0 <= t["patched_fmr"] <= 1 and t["patched_fnmr"] >= t["clean_fnmr"]
    assert s["selection"]["n_pairs"] == 4 and s["selection"]["n_genuine"] == 2
    for m in METHODS:
        r = s["methods"][m]
        assert r["n_pairs"] == 4 and r["n_failed"] == 0
        assert len(r["dpr"]["fmr"]) == 21 and 0 <= r["dpr"]["auc_fnmr"] <= 100
        assert r["dpr"]["restored_fraction"][0] == 0 and r["dpr"]["restored_fraction"][-1] == 1
        assert r["score_check_max_abs_diff"] < 1e-4  # the explainer's score of the patched pair agrees
    # the last DPR step is the clean pair: its errors are the clean pairs' errors
    for m, rows in _outcomes(out, s).items():
        same = np.array([r["same"] for r in rows])
        clean_match = np.array([r["score_clean"] >= t["threshold"] for r in rows])
        assert s["methods"][m]["dpr"]["fnmr"][-1] == pytest.approx((~clean_match[same]).mean())
        assert s["methods"][m]["dpr"]["fmr"][-1] == pytest.approx(clean_match[~same].mean())
        assert [r["dpr"][-1] for r in rows] == pytest.approx([r["score_clean"] for r in rows], abs=1e-6)
    assert "vs_random" in s["methods"]["gradient"]
    for f in ("summary.json", "summary.md", "dpr.png", "dpr-gradient.png", "deletion-insertion.png"):
        assert (out / "4pairs" / f).stat().st_size > 500
    assert json.loads((out / "4pairs" / "summary.json").read_text())["table1"]["threshold"] == pytest.approx(t["threshold"])


def test_protocol_steps_score_exactly_as_table1(uninterrupted, small_ds, dlib_model):
    # one scoring path: the DPR step that restores everything is the clean pair and the step that
    # restores nothing the patched pair, scored bit for bit as Table 1 scored them, so a pair lying
    # exactly on the EER threshold (an observed clean score) is decided alike on every CPU
    out, s = uninterrupted
    z = np.load(out / "table1-scores.npz")
    row = {int(i): k for k, i in enumerate(z["pair_index"])}
    th, t = s["table1"]["threshold"], s["table1"]
    assert t["eer_threshold"] in set(z["clean"].tolist())  # exact in the summary, not rounded
    # a partial data set decides at the model's calibrated EER threshold, exactly
    assert not small_ds.complete and th == dlib_model.spec.threshold("eer", flip=False) != t["eer_threshold"]
    with ResultStore(out / "results.sqlite") as store:
        for r in store.runs():
            for res in store.results(r["run_key"]):
                k = row[res.pair]
                assert res.score_clean == z["clean"][k] and res.dpr[-1] == z["clean"][k]
                assert res.score_patched == z["patched"][k] and res.dpr[0] == z["patched"][k]
                assert bool(res.match) == bool(z["patched"][k] >= th)


def test_interrupted_run_resumes_to_the_same_result(uninterrupted, small_ds, dlib_model, tmp_path):
    full_out, full = uninterrupted
    out = tmp_path / "resumed"
    seen = []

    def stop_in_the_second_method(method, index):
        seen.append((method, index))
        if method == "gradient":
            raise Interrupt  # after the first gradient pair is stored

    with pytest.raises(Interrupt):
        run_patch_lfw(out, methods=METHODS, model=dlib_model, dataset=small_ds.root, n_pairs=4, progress=False,
                      on_pair=stop_in_the_second_method)
    assert [m for m, _ in seen] == ["random"] * 4 + ["gradient"]
    with ResultStore(out / "results.sqlite") as s:
        assert sorted(len(s.done(r["run_key"])) for r in s.runs()) == [1, 4]
    again = []
    resumed = run_patch_lfw(out, methods=METHODS, model=dlib_model, dataset=small_ds.root, n_pairs=4, progress=False,
                            on_pair=lambda m, i: again.append((m, i)))
    assert [m for m, _ in again] == ["gradient"] * 3  # only what was missing
    assert resumed["run_keys"] == full["run_keys"]
    assert _outcomes(out, resumed) == _outcomes(full_out, full)
    assert _strip_cost(resumed) == _strip_cost(full)


def test_unknown_method_is_a_project_error_before_any_work(small_ds, dlib_model, tmp_path):
    with pytest.raises(ModelNotFoundError, match="unknown explanation method 'xssb'"):
        run_patch_lfw(tmp_path / "o", methods=["xssab", "xssb"], model=dlib_model, dataset=small_ds.root, progress=False)
    assert not (tmp_path / "o").exists()
    with pytest.raises(ConfigError):
        run_patch_lfw(tmp_path / "o", methods=["random"], model=dlib_model, dataset=small_ds.root, rule="best", progress=False)


def test_too_few_pairs_fail_before_the_embedding(small_ds, dlib_model, tmp_path):
    with pytest.raises(ConfigError, match="too few"):
        run_patch_lfw(tmp_path / "o", methods=["random"], model=dlib_model, dataset=small_ds.root, n_pairs=1,
                      progress=False)
    assert not list((tmp_path / "o").glob("embeddings-*.npz"))  # nothing was embedded


def test_cli(small_ds, tmp_path, capsys):
    out = tmp_path / "cli"
    code = main(["bench", "patch-lfw", "--methods", "random", "--pairs", "2", "--dataset", str(small_ds.root),
                 "--out", str(out), "--quiet"])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    assert "Table 1 (6 pairs, a partial data set)" in printed.out and "calibrated" in printed.out and "random" in printed.out
    md = (out / "2pairs" / "summary.md").read_text()
    assert "xaiface bench patch-lfw --methods random --pairs 2" in md and "| random | 2 |" in md
    assert main(["bench", "patch-lfw", "--methods", "random,nosuch", "--dataset", str(small_ds.root),
                 "--out", str(out), "--quiet"]) == 1
    assert "unknown explanation method 'nosuch'" in capsys.readouterr().err
    assert main(["bench", "patch-lfw", "--folds", "0,11", "--dataset", str(small_ds.root), "--out", str(out)]) == 1
    assert "--folds" in capsys.readouterr().err
    assert main(["bench", "patch-lfw", "--param", "xssab", "--dataset", str(small_ds.root), "--out", str(out)]) == 1
    assert "METHOD.NAME=VALUE" in capsys.readouterr().err
    assert main(["bench", "patch-lfw", "--methods", "random", "--dataset", str(tmp_path / "none"), "--out", str(out)]) == 1


def test_reference_rules_run_under_their_own_keys_with_the_reference_random_prefix(uninterrupted, small_ds, dlib_model,
                                                                                   tmp_path):
    from xaiface.bench import DPR_PERCENTS, dpr_masks
    from xaiface.explain.random import permutation_map

    full_out, full = uninterrupted
    out = tmp_path / "ref"
    s = run_patch_lfw(out, methods=METHODS, model=dlib_model, dataset=small_ds.root, n_pairs=4, progress=False,
                      reference_rules=True)
    assert set(s["run_keys"].values()).isdisjoint(full["run_keys"].values())
    assert s["protocol"]["reference_rules"] is True and full["protocol"]["reference_rules"] is False
    assert s["report_dir"].endswith("4pairs-reference") and (out / "4pairs-reference" / "summary.md").is_file()
    with ResultStore(out / "results.sqlite") as st:
        cfg = {r["method"]: r["config"] for r in st.runs()}
        rows = st.results(s["run_keys"]["random"])
    assert all(c["reference_rules"] is True for c in cfg.values())
    assert cfg["random"]["params"] == {"seed": 3, "reference": True} and cfg["random"]["rule"] == "bound"
    with ResultStore(full_out / "results.sqlite") as st:  # the default runs name no such key
        assert all("reference_rules" not in r["config"] for r in st.runs())
        assert {r["method"]: r["config"]["params"] for r in st.runs()}["random"] == {"seed": 0}
    # the random baseline restores the same prefix of the seed-3 permutation in matches and non-matches
    prefix = dpr_masks(permutation_map(150, 3), True, DPR_PERCENTS, rule="prefix", reference_steps=True)
    fold = small_ds.fold(0)
    assert {r.match for r in rows} == {True, False}
    for r in rows:
        mask = fold.get("mask", r.pair)
        want = (prefix & mask[None]).reshape(len(prefix), -1).sum(1) / mask.sum()
        assert r.restored == pytest.approx(want, abs=1e-12)
    assert "reference code: one permutation (seed 3)" in (out / "4pairs-reference" / "summary.md").read_text()
    with pytest.raises(ConfigError, match="reference"):
        run_patch_lfw(out, methods=["random"], model=dlib_model, dataset=small_ds.root, n_pairs=4, rule="rank",
                      reference_rules=True, progress=False)


def test_cli_default_methods_are_the_runners():
    from xaiface.bench import DEFAULT_METHODS
    from xaiface.cli.bench import DEFAULT_METHODS as CLI_DEFAULT

    assert CLI_DEFAULT == ",".join(DEFAULT_METHODS)
    assert DEFAULT_METHODS.index("xssab-noblur") == DEFAULT_METHODS.index("xssab") + 1
