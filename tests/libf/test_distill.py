"""The distilled patch encoder (:mod:`xaiface.libf.distill`), the per-patch projection and the patch-cosine encoding."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from xaiface.errors import ConfigError, WeightsError
from xaiface.libf.distill import (
    DistillConfig, distill_loss, distill_targets, fold_heads, light_augment, train_distilled,
)
from xaiface.libf.features import LIBFEncoder, feature_patch, pair_feature_names, pair_features

TINY = DistillConfig(embedding_dim=4, width=4, batch_size=8, steps_per_epoch=6, epochs=2, seed=3)


@pytest.fixture(scope="module")
def faces(small_bank, dlib_model):
    """Real patches of the small bank's photos and the real dlib model's mirror-averaged embeddings of them."""
    from xaiface.pipeline.batch import embed_faces, locate_faces

    paths = list(small_bank)
    located = locate_faces(paths, cache=False, workers=0, progress=False)
    emb = embed_faces(dlib_model, located.faces, store=False, progress=False)
    px = np.stack([small_bank[p].pixels for p in paths])
    vis = np.stack([small_bank[p].visible for p in paths])
    return px, vis, emb.vectors(paths, flip=True)


def test_targets_are_centred_unit_codes():
    rng = np.random.default_rng(0)
    t = rng.normal(size=(20, 6)) + 3.0
    codes, mean = distill_targets(t)
    u = t / np.linalg.norm(t, axis=1, keepdims=True)
    np.testing.assert_allclose(mean, u.mean(0), atol=1e-12)
    by_hand = (u - u.mean(0)) / np.linalg.norm(u - u.mean(0), axis=1, keepdims=True)
    np.testing.assert_allclose(codes, by_hand, atol=1e-6)
    with pytest.raises(ConfigError, match="finite"):
        distill_targets(np.full((3, 4), np.nan))


def test_folded_heads_keep_the_heads_metric():
    rng = np.random.default_rng(1)
    w = rng.normal(size=(11, 4, 9))
    a = fold_heads(w)
    for p in range(11):
        np.testing.assert_allclose(a[p] @ a[p].T, w[p] @ w[p].T, atol=1e-4 * np.abs(w[p] @ w[p].T).max())
        np.testing.assert_allclose(a[p], a[p].T, atol=1e-5)
    z1, z2 = rng.normal(size=4), rng.normal(size=4)
    # the folded embedding's dot product equals that of the heads' outputs
    np.testing.assert_allclose((z1 @ a[2]) @ (z2 @ a[2]), (z1 @ w[2]) @ (z2 @ w[2]), rtol=1e-4)


def test_loss_by_hand():
    torch.manual_seed(0)
    z = torch.randn(3, 11, 4)
    heads = torch.randn(11, 4, 5)
    vis = torch.ones(3, 11)
    vis[0, 2] = 0
    codes = torch.nn.functional.normalize(torch.randn(3, 5), dim=-1)
    total, per_patch, joint = distill_loss(z, heads, vis, codes, joint_weight=0.5)
    y = torch.einsum("bpd,pdt->bpt", z, heads)
    cp = torch.nn.functional.cosine_similarity(y, codes[:, None], dim=-1)
    want_pp = ((1 - cp) * vis).sum() / vis.sum()
    s = (y * vis[..., None]).sum(1)
    want_j = (1 - torch.nn.functional.cosine_similarity(s, codes, dim=-1)).mean()
    assert torch.allclose(per_patch, want_pp, atol=1e-6) and torch.allclose(joint, want_j, atol=1e-6)
    assert torch.allclose(total, want_pp + 0.5 * want_j, atol=1e-6)


def test_light_augment_range_and_change(faces):
    px = faces[0]
    x = torch.from_numpy(px[:2]).permute(0, 1, 4, 2, 3).float().div(255).flatten(0, 1)
    y = light_augment(x, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and float(y.min()) >= 0 and float(y.max()) <= 1
    assert float((y - x).abs().mean()) > 0.01


def test_training_lowers_the_loss_and_resumes_exactly(faces, tmp_path):
    px, vis, t = faces
    cfg = DistillConfig(embedding_dim=4, width=4, batch_size=8, steps_per_epoch=15, epochs=3, seed=3, lr=1e-2)
    one = train_distilled(px, vis, t, cfg, tmp_path / "a.pt", progress=False)
    assert one.epoch_loss[-1] < one.epoch_loss[0]
    assert one.projection.shape == (11, 4, 4)
    # stopped after one epoch, then continued: the same run (same batches, same augmentations)
    part = train_distilled(px, vis, t, cfg, tmp_path / "b.pt", progress=False, max_epochs=1)
    assert len(part.epoch_loss) == 1
    rest = train_distilled(px, vis, t, cfg, tmp_path / "b.pt", progress=False)
    assert rest.resumed_from_epoch == 1
    np.testing.assert_allclose(rest.epoch_loss, one.epoch_loss, rtol=1e-4)
    np.testing.assert_allclose(rest.projection, one.projection, atol=1e-4)
    with pytest.raises(ConfigError, match="another distillation"):
        train_distilled(px, vis, t, TINY, tmp_path / "b.pt", progress=False)
    (tmp_path / "c.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="c.pt"):
        train_distilled(px, vis, t, TINY, tmp_path / "c.pt", progress=False)
    with pytest.raises(ConfigError, match="teacher embeddings"):
        train_distilled(px, vis, t[:-1], TINY, None, progress=False)


def test_encoder_with_projection_round_trip(faces, tmp_path):
    px, vis, t = faces
    res = train_distilled(px, vis, t, TINY, None, progress=False)
    center = LIBFEncoder.centers_from(res.encoder, px, vis, res.projection)
    enc = LIBFEncoder(res.encoder, center, TINY.encoder_config(), projection=res.projection, meta={"method": "distill"})
    raw = res.encoder.embed_uint8(px.reshape(-1, 24, 24, 3)).reshape(len(px), 11, -1)
    np.testing.assert_allclose(enc.embed(px), np.einsum("npd,pde->npe", raw, res.projection), atol=1e-5)
    enc.save(tmp_path / "enc.pt")
    back = LIBFEncoder.load(tmp_path / "enc.pt")
    np.testing.assert_allclose(back.projection, res.projection, atol=0)
    np.testing.assert_allclose(back.transform(px, vis), enc.transform(px, vis), atol=1e-6)
    with pytest.raises(ConfigError, match="projection"):
        LIBFEncoder(res.encoder, center, TINY.encoder_config(), projection=np.zeros((11, 3, 3)))
    state = torch.load(tmp_path / "enc.pt", weights_only=True)
    state["projection"] = torch.zeros(2, 2)
    torch.save(state, tmp_path / "bad.pt")
    with pytest.raises(WeightsError, match="projection"):
        LIBFEncoder.load(tmp_path / "bad.pt")


def test_patch_cosine_encoding():
    rng = np.random.default_rng(2)
    d = 3
    z = rng.normal(size=(2, 5, 11, d))
    z /= np.linalg.norm(z, axis=-1, keepdims=True)
    vis = np.ones((2, 5, 11), bool)
    vis[0, 1, 4] = False
    z[0, 1, 4] = 0
    libf = np.concatenate([z, vis[..., None]], -1).reshape(2, 5, -1).astype(np.float32)
    x = pair_features(libf[0], libf[1], "patch-cosine")
    assert x.shape == (5, 11)
    np.testing.assert_allclose(np.nan_to_num(x, nan=9), np.where(vis[0] & vis[1], (z[0] * z[1]).sum(-1), 9), atol=1e-6)
    assert np.isnan(x[1, 4]) and np.isfinite(np.delete(x.ravel(), 1 * 11 + 4)).all()
    assert pair_feature_names("patch-cosine")[0] == "cos.left_eye" and len(pair_feature_names("patch-cosine")) == 11
    assert feature_patch(7, d, "patch-cosine") == (0, 7)
    with pytest.raises(ConfigError):
        feature_patch(11, d, "patch-cosine")
    # symmetric swap invariance
    np.testing.assert_allclose(np.nan_to_num(pair_features(libf[1], libf[0], "patch-cosine")), np.nan_to_num(x))


def test_patch_cosine_verifier_decomposes_per_patch(small_ebm):
    from xaiface.libf import LIBFVerifier

    _, _, xa, xb, yy = small_ebm
    ver = LIBFVerifier("patch-cosine", interactions=2, outer_bags=1, n_jobs=1, max_rounds=100, embedding_dim=2,
                       min_samples_leaf=2).fit(xa, xb, yy)
    w = ver.term_patches()
    assert w.shape[1] == 11 and np.allclose(w.sum(1), 1)
    logit = ver.decision_function(xa, xb)
    np.testing.assert_allclose(ver.patch_contributions(xa, xb).sum(1) + ver.intercept, logit, atol=1e-9)
    ex = ver.local_explanation(xa[0], xb[0])
    assert abs(sum(ex["patches"].values()) + ex["intercept"] - ex["logit"]) < 1e-9
    with pytest.raises(ConfigError, match="patch-cosine verifier"):
        ver.decision_function(xa[:, :10], xb[:, :10])


def test_bad_settings():
    with pytest.raises(ConfigError, match="batch_size"):
        DistillConfig(batch_size=1)
    with pytest.raises(ConfigError, match="unknown"):
        DistillConfig.from_dict({"nope": 1})
    assert DistillConfig.from_dict(TINY.to_dict()) == TINY
