"""A registered model's metadata (:class:`ModelSpec`, :class:`Preprocessing`), without torch.

Kept apart from :mod:`.base` (the torch module contract) so that listing models
(``xaiface models``) and reading their specs never imports torch.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .thresholds import OperatingPoint, operating_point


@dataclass(frozen=True)
class Preprocessing:
    """How an aligned crop becomes the network's input.

    Attributes:
        input_size: side of the square aligned crop in pixels.
        geometry: alignment geometry name (see :mod:`xaiface.align`).
        color_order: ``"RGB"`` or ``"BGR"``: channel order the network expects.
        mean: per-channel mean subtracted, in the network's channel order, in 0..255 units.
        std: per-channel divisor, in 0..255 units.
    """

    input_size: int
    geometry: str
    color_order: str = "RGB"
    mean: tuple[float, float, float] = (127.5, 127.5, 127.5)
    std: tuple[float, float, float] = (127.5, 127.5, 127.5)


@dataclass(frozen=True)
class ModelSpec:
    """Metadata a registered model carries.

    Attributes:
        name: registry name.
        architecture: network family (``"dlib-resnet29"``, ``"iresnet100"``...).
        embedding_size: ``D``.
        preprocessing: see :class:`Preprocessing`.
        license: licence of the weights.
        weights_sha256: SHA-256 of the weight file: in a registered spec, the packaged file's
            (checked on load); in a loaded model's spec, the file actually loaded (``None`` for
            random or in-memory weights).
        thresholds: calibrated cosine-similarity thresholds by name (``"eer"``, ``"fmr=1e-2"``,
            ``"fmr=1e-3"``) and where they were calibrated (``"calibrated_on"``).
        description: one line for ``xaiface models``.
        weights_required: True when there is no default weight file (the user must pass one).
        layers: named internal layers that layer-wise explainers read (see
            :meth:`xaiface.models.base.FaceModel.forward_with_layers`): ``"last"``, the last
            spatial feature maps, from which the embedding is an affine function (pooling /
            flattening, linear layers, batch norm in eval mode), and ``"cam"``, the deepest layer
            whose maps keep at least 1/16 of the crop's side (output stride <= 16, the usual
            choice for CAM-style maps). Values are module paths (``"blocks.13"``) or, for graph
            models, node names. Empty: the model offers none.
    """

    name: str
    architecture: str
    embedding_size: int
    preprocessing: Preprocessing
    license: str = "unknown"
    weights_sha256: str | None = None
    thresholds: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    weights_required: bool = False
    layers: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def operating_point(self, threshold: str | float | OperatingPoint = "eer", flip: bool = False) -> OperatingPoint:
        """The :class:`~xaiface.models.thresholds.OperatingPoint` of ``threshold`` for this model.

        Args:
            threshold: a calibrated threshold's name (``"eer"``, ``"fmr=1e-2"``, ``"fmr=1e-3"``),
                a number (labelled ``"user"``), or an operating point (checked, passed on).
            flip: for mirror-averaged (True) or plain (False) embeddings.
        Raises:
            ConfigError: an unknown name, or not a finite number in [-1, 1].

        Example:
            >>> from xaiface.models import model_spec
            >>> op = model_spec("dlib-resnet").operating_point("eer", flip=True)
            >>> op.name, op.calibrated, op.value == model_spec("dlib-resnet").thresholds["flip"]["eer"]
            ('eer', True, True)
        """
        return operating_point(self, threshold, flip)

    def threshold(self, name: str | float = "eer", flip: bool = False) -> float:
        """The decision threshold's value (cosine similarity): ``operating_point(name, flip).value``."""
        return self.operating_point(name, flip).value
