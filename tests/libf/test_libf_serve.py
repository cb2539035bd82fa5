"""The web demo's LIBF-EBM path: listed as available once a trained model exists, and its patch
contributions in the API's result (a small EBM fitted on real LFW patches, as the explainer's tests)."""
from __future__ import annotations

import numpy as np
import pytest

from libf_helpers import write_artefacts


def test_service_lists_and_explains_libf_ebm(small_ebm, fold0_pairs, tmp_path):
    from xaiface.libf import PATCH_NAMES
    from xaiface.serve import DemoService

    enc, ver, *_ = small_ebm
    missing = {e["name"]: e["available"] for e in DemoService(libf_artefacts=tmp_path / "none").explainers()}
    assert isinstance(missing["libf-ebm"], str) and "xaiface train libf" in missing["libf-ebm"]
    svc = DemoService(libf_artefacts=write_artefacts(tmp_path / "libf", enc, ver))
    rows = {e["name"]: e for e in svc.explainers()}
    assert rows["libf-ebm"]["available"] is True and rows["libf-ebm"]["mode"] == "job"
    p = next(p for p in fold0_pairs if p.same)
    a, b = svc.photo(p.path_a.read_bytes(), "a"), svc.photo(p.path_b.read_bytes(), "b")
    res = svc.explain(a, b, ["xssab", "libf-ebm"])["original"]
    xssab, libf = res["methods"]
    # the pair's verdict is the deep model's; the EBM decides its own entry (probability vs 0.5)
    assert res["verdict"]["model"] == "dlib-resnet" and res["verdict"]["similarity"] == pytest.approx(xssab["score"], abs=1e-6)
    assert libf["threshold"] == 0.5 and libf["threshold_name"] == "p=0.5"
    contrib = libf["patch_contributions"]
    assert sorted(c["patch"] for c in contrib) == sorted(PATCH_NAMES)
    mags = [abs(c["contribution"]) for c in contrib]
    assert mags == sorted(mags, reverse=True)  # largest first
    total = libf["extra"]["intercept"] + sum(c["contribution"] for c in contrib)
    assert total == pytest.approx(libf["extra"]["logit"], abs=1e-9)
    assert libf["decision"] == ("match" if libf["extra"]["logit"] >= 0 else "no match")
    assert set(libf["maps"]) == {"combined", libf["evidence"]} and all(u is not None for u in libf["maps"]["combined"])
    assert "terms" not in libf["extra"] and np.isfinite(libf["extra"]["probability"])
