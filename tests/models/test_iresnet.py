"""IResNet: architecture, checkpoint families, refusals.

No real checkpoint can be had here, so randomly initialised networks (with perturbed BatchNorms)
are saved in each family's layout and loaded back through ``get_model``; outputs must match the
original network.
"""
from __future__ import annotations

import hashlib
import pickle
from pathlib import Path
from typing import Any, Callable

import pytest
import torch

from xaiface.errors import ConfigError, WeightsError
from xaiface.models.iresnet import ARCHITECTURES, IResNet, IResNetModel, IResNetVariant, load_state_dict_file
from xaiface.models.registry import get_model, list_models, model_spec

ARCH = "iresnet18"


Perturb = Callable[[torch.nn.Module, int], torch.nn.Module]


def _random(perturb: Perturb, seed: int = 1, **kwargs: Any) -> IResNetModel:
    """A random iresnet18 with perturbed BatchNorms (so a swapped BatchNorm shows)."""
    model = get_model(ARCH, weights="random", seed=seed, **kwargs)
    perturb(model, seed)
    return model.eval()


@pytest.fixture(scope="module")
def reference(perturb: Perturb) -> IResNetModel:
    return _random(perturb)


@pytest.fixture(scope="module")
def reference_out(reference: IResNetModel, pixels: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return reference(pixels)


def _save(obj: Any, path: Path) -> Path:
    torch.save(obj, path)
    return path


def _embed(model: torch.nn.Module, pixels: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return model(pixels)


def test_registered_with_spec() -> None:
    assert list_models("iresnet*") == ["iresnet100", "iresnet18", "iresnet34", "iresnet50"]
    for arch in ARCHITECTURES:
        spec = model_spec(arch)
        p = spec.preprocessing
        assert (spec.architecture, spec.embedding_size, spec.weights_required) == (arch, 512, True)
        assert (p.input_size, p.geometry, p.color_order) == (112, "arcface-112", "RGB")
        assert p.mean == p.std == (127.5, 127.5, 127.5)
        assert "non-commercial" in spec.license


def test_features_is_the_raw_backbone_embedding(reference: IResNetModel, pixels: torch.Tensor,
                                                reference_out: torch.Tensor) -> None:
    with torch.no_grad():
        raw = reference.backbone((pixels - 127.5) / 127.5)
    assert reference_out.shape == (1, 512)
    assert torch.equal(reference_out, raw)


def test_random_weights_are_seeded_and_well_scaled(pixels: torch.Tensor) -> None:
    two = torch.cat([pixels, 255 - pixels])
    a = _embed(get_model(ARCH, weights="random"), two)
    b = _embed(get_model(ARCH, weights="random", seed=0), pixels)
    c = _embed(get_model(ARCH, weights="random", seed=3), pixels)
    torch.testing.assert_close(a[:1], b, rtol=1e-5, atol=1e-5)  # same seed (batch size may change kernels)
    assert not torch.allclose(b, c, atol=1e-2)
    assert torch.isfinite(a).all() and 0.1 < a.std().item() < 100
    assert not torch.allclose(a[0], a[1], atol=1e-2)  # different inputs, different embeddings


def test_iresnet100_forward_smoke() -> None:
    model = get_model("iresnet100", weights="random")
    assert sum(len(getattr(model.backbone, f"layer{i}")) for i in range(1, 5)) == 49
    x = torch.rand(1, 3, 112, 112, generator=torch.Generator().manual_seed(0)) * 255
    out = _embed(model, x)
    assert out.shape == (1, 512) and torch.isfinite(out).all()


_ARCFACE_LAYOUTS: dict[str, Callable[[dict[str, torch.Tensor]], Any]] = {
    "plain": lambda sd: sd,
    "module_prefix": lambda sd: {f"module.{k}": v for k, v in sd.items()},
    "under_state_dict": lambda sd: {"state_dict": sd, "epoch": 7, "best_acc": 0.99},
    "under_model": lambda sd: {"model": {f"module.{k}": v for k, v in sd.items()}, "optimizer": {"lr": 0.1}},
    "under_backbone": lambda sd: {"backbone": sd},
}


@pytest.mark.parametrize("layout", sorted(_ARCFACE_LAYOUTS))
def test_arcface_torch_layouts_round_trip(layout: str, tmp_path: Path, reference: IResNetModel,
                                          pixels: torch.Tensor, reference_out: torch.Tensor) -> None:
    path = _save(_ARCFACE_LAYOUTS[layout](reference.backbone.state_dict()), tmp_path / f"{layout}.pth")
    loaded = get_model(ARCH, weights=path)
    assert torch.equal(_embed(loaded, pixels), reference_out)
    assert loaded.spec.weights_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert not loaded.training


def test_in_memory_state_dict(reference: IResNetModel, pixels: torch.Tensor, reference_out: torch.Tensor) -> None:
    loaded = get_model(ARCH, weights=reference.backbone.state_dict())
    assert torch.equal(_embed(loaded, pixels), reference_out)


@pytest.mark.parametrize("prefix", ["features.module.", "module.features."])
def test_magface_checkpoint(prefix: str, tmp_path: Path, pixels: torch.Tensor, perturb: Perturb) -> None:
    original = _random(perturb, seed=2, checkpoint_format="magface")
    assert all(m.eps == 2e-5 for m in original.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm))
    head = {"fc.weight": torch.randn(512, 10)}  # MagLinear classifier, dropped on load
    state = {f"{prefix}{k}": v for k, v in original.backbone.state_dict().items()} | head
    path = _save({"epoch": 25, "arch": ARCH, "state_dict": state}, tmp_path / "magface_epoch_00025.pth")
    loaded = get_model(ARCH, weights=path)
    assert all(m.eps == 2e-5 for m in loaded.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm))
    torch.testing.assert_close(_embed(loaded, pixels), _embed(original, pixels), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(("mid_bn", "prefix"), [(True, "module."), (False, "")],
                         ids=["tface_dataparallel", "curricularface_original"])
def test_tface_curricularface_checkpoint(mid_bn: bool, prefix: str, tmp_path: Path, pixels: torch.Tensor,
                                         perturb: Perturb, tface_backbone: type) -> None:
    torch.manual_seed(3)
    original = perturb(tface_backbone(ARCHITECTURES[ARCH], mid_bn=mid_bn), 3).eval()
    state = {f"{prefix}{k}": v for k, v in original.state_dict().items()}
    path = _save(state, tmp_path / "CurricularFace_Backbone.pth")
    loaded = get_model(ARCH, weights=path)
    assert loaded.backbone.variant == IResNetVariant(mid_bn=mid_bn, pool_shortcut=True)
    with torch.no_grad():
        expected = original((pixels - 127.5) / 127.5)
    torch.testing.assert_close(_embed(loaded, pixels), expected, rtol=1e-6, atol=1e-6)


def test_tface_random_variant_matches_its_own_state_dict(pixels: torch.Tensor) -> None:
    model = get_model(ARCH, weights="random", checkpoint_format="curricularface")  # alias of "tface"
    assert isinstance(model.backbone.layer1[0].downsample, torch.nn.MaxPool2d)
    assert torch.isfinite(_embed(model, pixels)).all()


# ---------------------------------------------------------------------------------------------
# refusals


def test_no_weights_is_an_error_naming_the_options() -> None:
    with pytest.raises(WeightsError, match="random"):
        get_model(ARCH)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="nothing_here.pth"):
        get_model(ARCH, weights=tmp_path / "nothing_here.pth")
    with pytest.raises(WeightsError, match="not a file"):
        get_model(ARCH, weights=tmp_path)


def test_truncated_file(tmp_path: Path, reference: IResNetModel) -> None:
    full = _save(reference.backbone.state_dict(), tmp_path / "full.pth").read_bytes()
    path = tmp_path / "truncated.pth"
    path.write_bytes(full[: len(full) // 2])
    with pytest.raises(WeightsError, match="truncated.pth.*cannot read"):
        get_model(ARCH, weights=path)


def test_not_a_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "notes.pth"
    path.write_text("this is not a checkpoint\n")
    with pytest.raises(WeightsError, match="notes.pth"):
        get_model(ARCH, weights=path)
    tensor_only = _save(torch.zeros(3), tmp_path / "tensor.pth")
    with pytest.raises(WeightsError, match="tensor.pth.*no state dict"):
        get_model(ARCH, weights=tensor_only)


_UNPICKLED: list[Any] = []


def _record_call(*args: Any) -> tuple[Any, ...]:
    _UNPICKLED.append(args)
    return args


class _Payload:
    """Unpickling this would call ``_record_call``: a stand-in for arbitrary code."""

    def __reduce__(self) -> tuple[Any, ...]:
        return (_record_call, ("executed",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_pickled_objects_are_refused_not_executed(tmp_path: Path, reference: IResNetModel) -> None:
    path = _save({"state_dict": reference.backbone.state_dict(), "payload": _Payload()}, tmp_path / "payload.pth")
    with pytest.raises(WeightsError, match="payload.pth.*weights_only") as err:
        get_model(ARCH, weights=path)
    assert "refused" in str(err.value) and "_record_call" in str(err.value)
    raw = tmp_path / "raw_pickle.pkl"
    raw.write_bytes(pickle.dumps({"conv1.weight": _Payload()}))
    with pytest.raises(WeightsError, match="raw_pickle.pkl"):
        load_state_dict_file(raw)
    assert _UNPICKLED == []


def test_wrong_architecture_names_file_expected_arch_and_guess(tmp_path: Path) -> None:
    other = get_model("iresnet34", weights="random")
    path = _save(other.backbone.state_dict(), tmp_path / "r34_backbone.pth")
    with pytest.raises(WeightsError) as err:
        get_model(ARCH, weights=path)
    msg = str(err.value)
    assert "r34_backbone.pth" in msg and "not an iresnet18 checkpoint" in msg
    assert "unexpected keys (first: layer1.2." in msg
    assert "look like iresnet34" in msg


def test_shape_mismatch_is_reported(tmp_path: Path) -> None:
    narrow = IResNet(ARCHITECTURES[ARCH], num_features=128)
    path = _save(narrow.state_dict(), tmp_path / "r18_128d.pth")
    with pytest.raises(WeightsError, match=r"r18_128d.pth.*shape mismatches.*fc.weight \(128, 25088\) \(expected \(512, 25088\)\)"):
        get_model(ARCH, weights=path)


def test_explicit_format_that_does_not_fit(tmp_path: Path, reference: IResNetModel) -> None:
    path = _save(reference.backbone.state_dict(), tmp_path / "arcface.pth")
    with pytest.raises(WeightsError, match="arcface.pth.*tface layout.*unexpected keys"):
        get_model(ARCH, weights=path, checkpoint_format="tface")


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="checkpoint_format"):
        get_model(ARCH, weights="random", checkpoint_format="caffe")
    with pytest.raises(ConfigError, match="unknown arguments"):
        get_model(ARCH, weights="random", fp16=True)
