"""The batched replace-and-score stage against a plain one-image-at-a-time transcription (real faces, real model)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from xaiface.bench import DELETION_PERCENTS, DPR_PERCENTS, PairScorer, dpr_masks, label_evidence, ranked_masks


@pytest.fixture(scope="module")
def pair(small_ds):
    f = small_ds.fold(0)
    i = 300  # an impostor pair: its patches are the partner's own pixels
    return tuple(f.get(k, i) for k in ("patched", "clean_a", "clean_b", "mask"))


def _embs(model, crops):
    x = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float()
    with torch.no_grad():
        return torch.nn.functional.normalize(model(x), dim=1)


def test_batched_scores_equal_a_plain_transcription(dlib_model, pair):
    patched, original, partner, mask = pair
    rng = np.random.default_rng(0)
    cmap = (rng.standard_normal(mask.shape) + 2 * mask).astype(np.float32)
    got = PairScorer(dlib_model).score(patched, original, partner, cmap, same=False, match=True, mask=mask)
    dm = dpr_masks(cmap, True)
    tm = ranked_masks(label_evidence(cmap, False), DELETION_PERCENTS)
    dpr_steps, del_steps = (0, 4, 20), (3,)
    imgs = [partner] + [np.where(dm[t][..., None], original, patched) for t in dpr_steps]
    imgs += [np.where(tm[t][..., None], 0, patched).astype(np.uint8) for t in del_steps]  # deletion: top pixels zeroed
    imgs += [np.where(tm[t][..., None], patched, 0).astype(np.uint8) for t in del_steps]  # insertion: only them kept
    e = _embs(dlib_model, imgs)
    want = (e[1:] @ e[0]).numpy()
    assert got.dpr[list(dpr_steps)] == pytest.approx(want[:3], abs=2e-5)  # 0: patched, 20: the clean image
    assert got.deletion[list(del_steps)] == pytest.approx(want[3:4], abs=2e-5)
    assert got.insertion[list(del_steps)] == pytest.approx(want[4:5], abs=2e-5)
    for t in dpr_steps:
        assert got.restored[t] == pytest.approx((dm[t] & mask).sum() / mask.sum())
    # 3 known images + 19 DPR steps + 9 deletion + 9 insertion steps in one forward
    assert got.n_forward == 3 + 19 + 9 + 9


def test_a_perfect_map_restores_the_clean_pair(dlib_model, pair):
    patched, original, partner, mask = pair
    hi = next(p for p in DPR_PERCENTS if mask.size * p // 100 >= mask.sum())  # the first step covering the patches
    scorer = PairScorer(dlib_model, rule="rank", dpr_percents=(0, hi - 5, hi, 100), deletion_percents=(0, 100))
    cmap = mask.astype(np.float32) + np.linspace(0, 0.01, mask.size, dtype=np.float32).reshape(mask.shape)
    got = scorer.score(patched, original, partner, cmap, same=False, match=True, mask=mask)
    assert got.restored[2] == 1.0 and got.restored[1] < 1.0
    assert got.n_forward == 3 + 2  # patched, original and partner (no embeddings given) and the two partial steps


def test_jpeg_mode_changes_scores_a_little(dlib_model, pair):
    patched, original, partner, mask = pair
    cmap = np.random.default_rng(1).standard_normal(mask.shape).astype(np.float32)
    kw = dict(dpr_percents=(0, 50, 100), deletion_percents=(0, 100))
    lossless = PairScorer(dlib_model, **kw).score(patched, original, partner, cmap, same=False, match=True)
    jpeg = PairScorer(dlib_model, jpeg=True, **kw).score(patched, original, partner, cmap, same=False, match=True)
    assert np.abs(jpeg.dpr - lossless.dpr).max() < 0.05
    assert not np.allclose(jpeg.dpr, lossless.dpr, atol=1e-6)
