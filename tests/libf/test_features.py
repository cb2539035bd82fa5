"""LIBF vectors (187-d) and pair encodings (374-d) on real LFW patches."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from xaiface.errors import ConfigError
from xaiface.libf import (
    LIBF_DIM, PATCH_NAMES, BYOLConfig, LIBFEncoder, PatchEncoder, libf_feature_names, libf_from_embeddings,
    pair_feature_names, pair_features,
)
from xaiface.libf.features import feature_patch


@pytest.fixture(scope="module")
def encoder16(small_bank):
    torch.manual_seed(0)
    enc = PatchEncoder(16, 4)
    fps = list(small_bank.values())
    px, vis = np.stack([f.pixels for f in fps]), np.stack([f.visible for f in fps])
    return LIBFEncoder(enc, LIBFEncoder.centers_from(enc, px, vis), BYOLConfig(width=4)), px, vis


def test_libf_shape_and_per_patch_normalisation(encoder16):
    enc, px, vis = encoder16
    vis = vis.copy()
    vis[0, PATCH_NAMES.index("left_chin")] = False  # one hidden patch
    lf = enc.transform(px, vis)
    assert LIBF_DIM == 187 and lf.shape == (len(px), 187) and lf.dtype == np.float32
    per = lf.reshape(len(px), 11, 17)
    norms = np.linalg.norm(per[..., :16], axis=-1)
    np.testing.assert_allclose(norms[vis], 1.0, atol=1e-5)  # visible patches: unit embeddings
    assert np.all(per[~vis][:, :16] == 0)  # hidden ones carry no appearance
    np.testing.assert_array_equal(per[..., 16], vis.astype(np.float32))
    # centred: the mean normalised embedding of a patch kind is far from unit length
    assert np.linalg.norm(per[:, 2, :16].mean(0)) < 0.9
    names = libf_feature_names()
    assert len(names) == 187 and names[0] == "left_eye.e0" and names[16] == "left_eye.visible" and names[-1] == "right_chin.visible"


def test_libf_from_embeddings_by_hand():
    e = np.zeros((1, 11, 2))
    e[0, :, 0] = 3.0
    e[0, :, 1] = 4.0
    vis = np.ones((1, 11), bool)
    vis[0, 5] = False
    lf = libf_from_embeddings(e, vis, np.zeros((11, 2))).reshape(11, 3)
    np.testing.assert_allclose(lf[0], [0.6, 0.8, 1.0], atol=1e-6)
    np.testing.assert_allclose(lf[5], [0, 0, 0])
    with pytest.raises(ConfigError, match="centres"):
        libf_from_embeddings(e, vis, np.zeros((10, 2)))


def test_pair_encodings(encoder16):
    enc, px, vis = encoder16
    lf = enc.transform(px, vis)
    a, b = lf[:4], lf[4:8]
    cat = pair_features(a, b, "concat")
    sym = pair_features(a, b, "symmetric")
    assert cat.shape == sym.shape == (4, 374)
    np.testing.assert_array_equal(cat[:, :187], a)
    np.testing.assert_array_equal(cat[:, 187:], b)
    np.testing.assert_array_equal(sym, pair_features(b, a, "symmetric"))  # symmetric in the two faces
    # per patch, the products of the unit embeddings sum to their cosine similarity
    ea, eb = a.reshape(4, 11, 17)[..., :16], b.reshape(4, 11, 17)[..., :16]
    np.testing.assert_allclose(sym[:, 187:].reshape(4, 11, 17)[..., :16].sum(-1), (ea * eb).sum(-1), atol=1e-6)
    assert pair_feature_names("concat")[187] == "b.left_eye.e0"
    assert pair_feature_names("symmetric")[200] == "prod.left_eye.e13"
    assert feature_patch(187 + 17 * 2 + 5) == (1, 2) and feature_patch(186) == (0, 10)
    with pytest.raises(ConfigError, match="pair encoding"):
        pair_features(a, b, "difference")
    with pytest.raises(ConfigError, match="one shape"):
        pair_features(a, b[:, :10])


def test_bad_patch_arrays(encoder16):
    enc, px, vis = encoder16
    with pytest.raises(ConfigError, match="uint8 patches"):
        enc.transform(px[:, :10], vis[:, :10])
    with pytest.raises(ConfigError, match="uint8 patches"):
        enc.transform(px.astype(np.float32), vis)
