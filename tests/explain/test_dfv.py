"""dfv (discriminative deep feature visualisation): exact channel regions and signed decomposition on a
hand-set toy network and linear decoder; the decomposition of the cosine on real faces; the
reconstructor's record, digest and resumable training."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from xaiface.errors import ConfigError, WeightsError
from xaiface.explain import Verifier, get_explainer
from xaiface.explain.dfv import Reconstructor, channel_regions, load_reconstructor

sys.path.insert(0, str(Path(__file__).parent))
from test_cam import CellModel, _crops  # noqa: E402


class LinearDecoder(nn.Module):
    """Hand-set linear decoder for the 3-channel, 2 x 2 cells of :class:`CellModel`: channel ``c``'s
    place-mean times a template ``T_c`` (RGB, 8 x 8): red in the top-left quadrant, green and blue in
    the bottom-right one, with weights 1, 2 and 3 (so that the RGB norm of a group is known)."""

    def __init__(self, mean_maps: torch.Tensor):
        super().__init__()
        self.register_buffer("mean_maps", mean_maps.clone())
        t = torch.zeros(3, 3, 8, 8)
        t[0, 0, :4, :4] = 1.0
        t[1, 1, 4:, 4:] = 2.0
        t[2, 2, 4:, 4:] = 3.0
        self.templates = t

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bc,cdij->bdij", maps.mean(dim=(2, 3)), self.templates)


def _kappa(model: CellModel, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Each channel's share of s_a by hand: pooled cell means times (W^T e_b) / |f_a| (gap head)."""
    pa = a.reshape(2, 4, 2, 4, 3).mean(axis=(0, 1, 2, 3)) / 255.0
    pb = b.reshape(2, 4, 2, 4, 3).mean(axis=(0, 1, 2, 3)) / 255.0
    w = model.w.numpy().astype(np.float64)
    fa, fb = w @ pa, w @ pb
    eb = fb / np.linalg.norm(fb)
    return pa * (w.T @ eb) / np.linalg.norm(fa)


def _verifier_and_decoder(mean: torch.Tensor | None = None):
    model = CellModel("gap")
    return Verifier(model, threshold=0.5), LinearDecoder(torch.zeros(3, 2, 2) if mean is None else mean)


def test_channel_regions_and_the_map_are_exact_on_a_linear_decoder():
    v, dec = _verifier_and_decoder()
    a, b = _crops()
    r = get_explainer("dfv", v, reconstructor=dec).explain((a, b))
    kappa = _kappa(v.model, a, b)
    # channel regions: red -> top-left quadrant, green and blue -> bottom-right, each of unit sum,
    # so the map is kappa_c / 16 on channel c's quadrant
    want = np.zeros((8, 8))
    want[:4, :4] += kappa[0] / 16
    want[4:, 4:] += (kappa[1] + kappa[2]) / 16
    np.testing.assert_allclose(r.combined_maps[0], want, atol=1e-6)
    # image a has no blue, so its blue channel argues nothing; image b's green is absent the same way
    assert kappa[2] == 0 and kappa[0] > 0 and kappa[1] < 0  # red shared; green against W's blue row
    assert r.similarity_maps[0][0, 0] > 0 and r.dissimilarity_maps[0][7, 7] > 0
    # the channels (and the map's pixels) sum to the cosine: dlib-like bias-free head
    assert r.extra["channel_sum"][0] == pytest.approx(r.score, abs=1e-6)
    assert float(r.combined_maps[0].sum()) == pytest.approx(r.score, abs=1e-5)
    assert r.extra["decoder_passes"] == 2 * (3 + 1) + 3 and (r.n_forward, r.n_backward) == (2, 2)
    assert r.extra["top_channels"][0]["against"][0][0] == 1
    # the pictures: each face's reconstruction and the mean-feature one, as the report shows them
    assert len(r.images) == 3 and all(im.dtype == np.uint8 and im.shape == (8, 8, 3) for im in r.images.values())
    assert r.data(include_maps=False)["images"] == sorted(r.images)


def test_regions_are_relative_to_the_mean_feature_and_groups_add_up():
    a, b = _crops()
    v = Verifier(CellModel("gap"), threshold=0.5)
    # with the mean feature equal to image a's own red cells, a's red channel has no region of its own:
    # its share is spread uniformly (the documented rule), and the map still sums to the cosine
    red = torch.full((3, 2, 2), 0.0)
    red[0] = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    dec = LinearDecoder(red)
    x = torch.from_numpy(a).permute(2, 0, 1)[None].float()
    _, layers = v.model.forward_with_layers(x, ["cells"])
    regions = channel_regions(dec, layers["cells"][0])
    assert float(regions[0].abs().max()) == pytest.approx(0.0, abs=1e-7)
    assert float(regions[1][4:, 4:].min()) == pytest.approx(2 * 0.25, abs=1e-6)  # |delta| = 1/4 (1 of 4 cells) x 2
    r = get_explainer("dfv", v, reconstructor=dec).explain((a, b))
    kappa = _kappa(v.model, a, b)
    assert r.combined_maps[0][4, 0] == pytest.approx(kappa[0] / 64, abs=1e-7)  # uniform share, outside every template
    assert float(r.combined_maps[0].sum()) == pytest.approx(r.score, abs=1e-5)
    # one group of all three channels: one region |sum_c delta_c T_c|, one share sum_c kappa_c = the cosine
    g = get_explainer("dfv", v, reconstructor=LinearDecoder(torch.zeros(3, 2, 2)), group_size=3).explain((a, b))
    assert g.extra["groups"] == 1 and g.extra["decoder_passes"] == 2 * 2 + 3
    assert float(g.combined_maps[0].sum()) == pytest.approx(g.score, abs=1e-5)
    assert float(np.abs(g.combined_maps[0][:4, 4:]).max()) == 0.0  # outside every template: no region, no share


def test_refusals(tmp_path):
    v, dec = _verifier_and_decoder()
    with pytest.raises(ConfigError, match="dfv needs weights"):
        get_explainer("dfv", v)
    with pytest.raises(ConfigError, match="group_size"):
        get_explainer("dfv", v, reconstructor=dec, group_size=0)
    with pytest.raises(WeightsError, match="no reconstructor weights"):
        get_explainer("dfv", v, weights=str(tmp_path / "none.pt"))
    with pytest.raises(ConfigError, match="maps of shape"):
        channel_regions(dec, torch.zeros(4, 2, 2))


def test_record_digest_and_model_are_checked(tmp_path, dlib_model):
    net = Reconstructor(256, (2, 2), 150)
    p = tmp_path / "r.pt"
    torch.save(net.state_dict(), p)
    from xaiface.io.hashing import file_sha256

    meta = {"model": "dlib-resnet", "model_weights_sha256": dlib_model.weights_sha256, "layer": "blocks.13",
            "channels": 256, "places": [2, 2], "crop_size": 150, "sha256": file_sha256(p)}
    p.with_suffix(".json").write_text(json.dumps(meta))
    got, _ = load_reconstructor(p, dlib_model)
    assert torch.equal(got.mean_maps, net.mean_maps)
    p.with_suffix(".json").write_text(json.dumps({**meta, "sha256": "0" * 64}))
    with pytest.raises(WeightsError, match="SHA-256"):
        load_reconstructor(p, dlib_model)
    p.with_suffix(".json").write_text(json.dumps({**meta, "model": "mobileface"}))
    with pytest.raises(WeightsError, match="for model 'mobileface'"):
        load_reconstructor(p, dlib_model)
    p.write_bytes(b"not a state dict")
    p.with_suffix(".json").write_text(json.dumps({**meta, "sha256": file_sha256(p)}))
    with pytest.raises(WeightsError, match="not a reconstructor state dict"):
        load_reconstructor(p, dlib_model)


def test_the_channels_share_of_the_cosine_sums_to_it_on_real_faces(dlib_model, lfw):
    """dlib: global mean and a bias-free fc after the 256 x 2 x 2 maps, so the channels' shares (and
    the map's pixels) sum to the pair's cosine, genuine and impostor, whatever the decoder (here an
    untrained one, seeded): float32 sums of 256 terms, and of 150 x 150 pixels."""
    from xaiface.pipeline import FacePipeline

    torch.manual_seed(0)
    net = Reconstructor(256, (2, 2), 150).eval()
    pipe = FacePipeline(model=dlib_model, threshold=0.5)
    a, b = (pipe.align(lfw.image_path("Abel_Pacheco", i)).image for i in (1, 4))
    c = pipe.align(lfw.image_path("Aaron_Peirsol", 1)).image
    ex = get_explainer("dfv", Verifier(dlib_model), reconstructor=net, group_size=16)
    scores = []
    for pair in ((a, b), (a, c)):
        r = ex.explain(pair)
        scores.append(r.score)
        for i in (0, 1):
            assert r.extra["channel_sum"][i] == pytest.approx(r.score, abs=2e-5)
            assert float(r.combined_maps[i].astype(np.float64).sum()) == pytest.approx(r.score, abs=1e-4)
        assert r.extra["groups"] == 16 and r.combined_maps[0].shape == (150, 150)
    assert scores[0] > scores[1]


def test_training_resumes_where_it_stopped(tmp_path):
    """Two calls (stopped at the first checkpoint, then resumed) give the weights of one uninterrupted run."""
    from xaiface.explain.train_dfv import train

    class Spec:  # what train() reads of the face model
        input_size = 8

    rng = np.random.default_rng(0)
    maps = rng.standard_normal((40, 8, 2, 2)).astype(np.float32)
    small = rng.integers(0, 256, (40, 3, 4, 4), dtype=np.uint8)  # the decoder works at ceil(8 / 2)
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        np.savez(tmp_path / d / "train-x-000.npz", maps=maps, small=small, paths=np.array(["p"] * 40))
    one = train(Spec, tmp_path / "a", steps=6, every=2, progress=False)
    first = train(Spec, tmp_path / "b", steps=6, every=2, minutes=0, progress=False)
    assert not first["done"] and first["step"] == 2
    two = train(Spec, tmp_path / "b", steps=6, every=2, progress=False)
    assert two["done"] and two["step"] == 6 and len(two["losses"]) == 3
    for (k, x), y in zip(one["net"].state_dict().items(), two["net"].state_dict().values()):
        assert torch.allclose(x.float(), y.float(), atol=1e-5), k
