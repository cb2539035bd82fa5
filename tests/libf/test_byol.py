"""BYOL mechanics: EMA update, augmentations, loss decreasing on real patches, checkpoints."""
from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from xaiface.errors import ConfigError, WeightsError
from xaiface.libf import BYOL, BYOLConfig, LIBFEncoder, PatchEncoder, load_checkpoint, train_byol
from xaiface.libf.byol import augment, byol_loss, save_checkpoint, tau_schedule

TINY = dict(embedding_dim=4, width=4, hidden_dim=16, projection_dim=8, batch_size=32, steps_per_epoch=6, epochs=3,
            lr=3e-3)


@pytest.fixture(scope="module")
def real_patches(small_bank):
    """(N, 24, 24, 3) uint8 patches of a few LFW faces."""
    return np.concatenate([fp.pixels for fp in list(small_bank.values())[:8]])


def test_ema_update_is_exact():
    torch.manual_seed(0)
    m = BYOL(BYOLConfig(**TINY))
    with torch.no_grad():
        for p in m.online_encoder.parameters():
            p.add_(torch.randn_like(p))
    online = [p.clone() for p in list(m.online_encoder.parameters()) + list(m.online_projector.parameters())]
    target = [p.clone() for p in list(m.target_encoder.parameters()) + list(m.target_projector.parameters())]
    m.update_target(0.9)
    for o, t, new in zip(online, target, list(m.target_encoder.parameters()) + list(m.target_projector.parameters())):
        torch.testing.assert_close(new, 0.9 * t + 0.1 * o)
        assert not new.requires_grad
    m.update_target(0.0)  # tau 0 copies the online network
    for o, new in zip(online, list(m.target_encoder.parameters()) + list(m.target_projector.parameters())):
        torch.testing.assert_close(new, o)
    # the predictor has no target copy and gets gradients; the target gets none
    assert all(p.requires_grad for p in m.predictor.parameters())


def test_tau_schedule_and_loss():
    assert tau_schedule(0, 100, 0.99) == pytest.approx(0.99)
    assert tau_schedule(100, 100, 0.99) == pytest.approx(1.0)
    assert tau_schedule(0, 100, 0.99) < tau_schedule(50, 100, 0.99) < tau_schedule(99, 100, 0.99)
    x = torch.randn(5, 8)
    torch.testing.assert_close(byol_loss(x, 3 * x), torch.zeros(5), atol=1e-6, rtol=0)
    torch.testing.assert_close(byol_loss(x, -x), torch.full((5,), 4.0))


def test_augment_keeps_range_and_changes_views(real_patches):
    x = torch.from_numpy(real_patches[:16]).permute(0, 3, 1, 2).float() / 255
    g = torch.Generator().manual_seed(0)
    v1, v2 = augment(x, g), augment(x, g)
    assert v1.shape == x.shape and v1.min() >= 0 and v1.max() <= 1
    assert (v1 - v2).abs().mean() > 0.02
    # a view stays close to its patch: nearer its own patch than to the other patches, on average
    d_own = (v1 - x).abs().mean(dim=(1, 2, 3))
    d_other = (v1 - x.roll(1, 0)).abs().mean(dim=(1, 2, 3))
    assert (d_own < d_other).float().mean() > 0.6


def test_loss_decreases_on_real_patches(real_patches):
    res = train_byol(real_patches, BYOLConfig(**TINY), progress=False)
    assert len(res.epoch_loss) == 3 and all(np.isfinite(res.epoch_loss))
    assert res.epoch_loss[-1] < res.epoch_loss[0] - 0.1, res.epoch_loss
    e = res.encoder.embed_uint8(real_patches[:10])
    assert e.shape == (10, 4) and np.isfinite(e).all() and not res.encoder.training


def test_checkpoint_resume_matches_one_run(real_patches, tmp_path):
    cfg = BYOLConfig(**TINY)
    straight = train_byol(real_patches, cfg, tmp_path / "a.pt", progress=False)
    first = train_byol(real_patches, cfg, tmp_path / "b.pt", progress=False, max_epochs=1)
    assert len(first.epoch_loss) == 1
    state = torch.load(tmp_path / "b.pt", weights_only=True)
    assert state["epoch"] == 1 and state["config"] == cfg.to_dict()
    resumed = train_byol(real_patches, cfg, tmp_path / "b.pt", progress=False)
    assert resumed.resumed_from_epoch == 1
    np.testing.assert_allclose(resumed.epoch_loss, straight.epoch_loss, rtol=1e-5)
    for (k, a), b in zip(straight.encoder.state_dict().items(), resumed.encoder.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6, msg=k)
    # a finished run resumes to itself without training
    again = train_byol(real_patches, cfg, tmp_path / "b.pt", progress=False)
    assert again.resumed_from_epoch == 3 and again.epoch_loss == resumed.epoch_loss
    with pytest.raises(ConfigError, match="another BYOL configuration"):
        train_byol(real_patches, BYOLConfig(**{**TINY, "lr": 1e-3}), tmp_path / "b.pt", progress=False)


def test_encoder_file_round_trip(tmp_path, real_patches):
    torch.manual_seed(1)
    cfg = BYOLConfig(**TINY)
    enc = LIBFEncoder(PatchEncoder(4, 4), np.arange(44, dtype=np.float32).reshape(11, 4), cfg, meta={"fold": 3})
    enc.save(tmp_path / "enc.pt")
    back = LIBFEncoder.load(tmp_path / "enc.pt")
    assert back.config == cfg and back.meta == {"fold": 3}
    np.testing.assert_array_equal(back.center, enc.center)
    px = real_patches[:22].reshape(2, 11, 24, 24, 3)
    np.testing.assert_array_equal(back.embed(px), enc.embed(px))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_corrupt_and_unsafe_checkpoints(tmp_path, real_patches):
    cfg = BYOLConfig(**TINY)
    good = tmp_path / "good.pt"
    train_byol(real_patches, cfg, good, progress=False, max_epochs=1)
    raw = good.read_bytes()
    (tmp_path / "trunc.pt").write_bytes(raw[: len(raw) // 2])
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint at all" * 10)
    for name in ("trunc.pt", "junk.pt"):
        with pytest.raises(WeightsError, match=f"{name}: not a readable checkpoint"):
            load_checkpoint(tmp_path / name)
        with pytest.raises(WeightsError):
            train_byol(real_patches, cfg, tmp_path / name, progress=False)
        with pytest.raises(WeightsError):
            LIBFEncoder.load(tmp_path / name)
    with pytest.raises(WeightsError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")
    # a checkpoint of another kind, and a BYOL checkpoint read as an encoder file
    save_checkpoint(tmp_path / "other.pt", {"format": "something-else", "version": 1})
    with pytest.raises(WeightsError, match="something-else"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(WeightsError, match="xaiface-libf-encoder"):
        LIBFEncoder.load(good)
    # pickled Python objects are refused by the weights-only loader, never executed
    (tmp_path / "evil.pt").write_bytes(pickle.dumps({"format": "xaiface-libf-byol", "obj": _Evil(tmp_path / "pwned")}))
    with pytest.raises(WeightsError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "evil.pt")
    assert not (tmp_path / "pwned").exists()


class _Evil:
    """Unpickling this would create a folder: a weights-only load must refuse it."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        import os

        return (os.mkdir, (self.path,))


def test_bad_settings():
    with pytest.raises(ConfigError, match="embedding_dim"):
        BYOLConfig(embedding_dim=0)
    with pytest.raises(ConfigError, match="batch_size"):
        BYOLConfig(batch_size=1)
    with pytest.raises(ConfigError, match="unknown BYOL settings"):
        BYOLConfig.from_dict({"epochs": 2, "colour": 1})
    with pytest.raises(ConfigError, match="uint8 patches"):
        train_byol(np.zeros((4, 16, 16, 3), np.uint8), BYOLConfig(**TINY), progress=False)
