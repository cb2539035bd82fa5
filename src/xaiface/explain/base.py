"""The explainer contract: ``Explainer(verifier).explain(pair) -> PairExplanation``.

In the manner of captum's attributions: every method is built from a :class:`Verifier` (a face
model and its decision threshold) and answers :meth:`Explainer.explain` for a pair of aligned
faces with a :class:`PairExplanation` holding, for each image, a similarity map, a
dissimilarity map and their combination (``combined = similarity - dissimilarity``) at the
aligned crop's resolution, plus the verdict, the method's parameters and what it cost.

The family splits by mechanism: :class:`GradientExplainer` (white-box, vector-Jacobian products
of the similarity) and :class:`PerturbationExplainer` (black-box, batched forwards of masked
crops) share their machinery here; each method is one file registered with
:func:`register_explainer`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError, NumericalError
from ..models.base import FaceModel, crops_to_tensor
from ..models.registry import get_model
from ..models.thresholds import OperatingPoint, WithOperatingPoint
from ..registry import Registry
from ..types import AlignedFace

MAP_KINDS = ("similarity", "dissimilarity", "combined")


class Verifier(WithOperatingPoint):
    """A face model with its decision threshold (cosine similarity, ``>=`` means match).

    Args:
        model: a registered name or a :class:`FaceModel`.
        threshold: a name from the model's calibration for plain (un-flipped) embeddings
            (``"eer"`` by default, as xSSAB uses), a number (finite, in [-1, 1], labelled
            ``"user"``; else ConfigError) or an :class:`OperatingPoint` for plain embeddings (a
            pipeline's ``operating_point``, which keeps its name). ``self.operating_point`` holds it.
    """

    def __init__(self, model: str | FaceModel = "dlib-resnet", threshold: str | float | OperatingPoint = "eer",
                 weights: Any = None):
        self.model = model if isinstance(model, FaceModel) else get_model(model, weights=weights)
        self.model.eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self.operating_point = self.model.spec.operating_point(threshold, flip=False)

    @property
    def input_size(self) -> int:
        return self.model.input_size

    @property
    def embedding_size(self) -> int:
        return self.model.spec.embedding_size

    def embed(self, pixels: torch.Tensor) -> torch.Tensor:
        """L2-normalised embeddings ``(B, D)`` of pixels ``(B, 3, S, S)`` (differentiable)."""
        e = self.model(pixels)
        if not torch.isfinite(e).all():
            raise NumericalError(f"model {self.model.spec.name} produced NaN or infinite embeddings")
        return F.normalize(e, dim=1)


@dataclass(frozen=True)
class FacePair:
    """Two aligned faces to explain (``a`` and ``b``), each a crop in the verifier's geometry."""

    a: AlignedFace
    b: AlignedFace

    @property
    def crops(self) -> tuple[np.ndarray, np.ndarray]:
        return self.a.image, self.b.image


def as_pair(pair: Any, size: int | None = None) -> FacePair:
    """Accept a :class:`FacePair`, two :class:`AlignedFace` or two ``(S, S, 3)`` uint8 crops."""
    if isinstance(pair, FacePair):
        fp = pair
    else:
        try:
            a, b = pair
        except (TypeError, ValueError):
            raise ConfigError("explain() takes a FacePair, or a pair of AlignedFace or of (S, S, 3) uint8 crops") from None
        fp = FacePair(_as_aligned(a), _as_aligned(b))
    for face in (fp.a, fp.b):
        im = face.image
        if im.ndim != 3 or im.shape[2] != 3 or im.dtype != np.uint8 or im.shape[0] != im.shape[1]:
            raise ConfigError(f"aligned crops must be (S, S, 3) uint8, got {im.shape} {im.dtype}")
        if size is not None and im.shape[0] != size:
            raise ConfigError(f"aligned crop of {im.shape[0]} px, but the model takes {size} px crops ({face.geometry})")
    return fp


def _as_aligned(x: Any) -> AlignedFace:
    if isinstance(x, AlignedFace):
        return x
    arr = np.asarray(x)
    s = arr.shape[0] if arr.ndim == 3 else 0
    return AlignedFace(arr, np.array([[1.0, 0, 0], [0, 1.0, 0]]), f"crop-{s}", (s, arr.shape[1] if arr.ndim == 3 else 0))


@dataclass
class PairExplanation:
    """Maps for both images of a pair, the verdict, and the method's parameters and cost.

    Maps are float32 ``(S, S)`` at the aligned crop's resolution, unnormalised (each method's own
    units); :meth:`normalized` gives a view scaled into [-1, 1] by the largest absolute value of
    the pair's combined maps, so both images share one scale.

    Attributes:
        method: registry name. params: the method's parameters.
        similarity_maps, dissimilarity_maps, combined_maps: ``(map_a, map_b)``; a method that
            explains one image only (``images=(0,)``) leaves the other as ``None``.
        score: cosine similarity of the clean pair. threshold, match: the verdict.
        n_forward: images passed forward through the network. n_backward: vector-Jacobian
            products of one image's embedding (backward passes counted per image).
        seconds: wall time of :meth:`Explainer.explain`.
        weights_sha256: SHA-256 of the face model's weight file (``None``: random/in-memory weights).
    """

    method: str
    params: dict[str, Any]
    similarity_maps: tuple[np.ndarray | None, np.ndarray | None]
    dissimilarity_maps: tuple[np.ndarray | None, np.ndarray | None]
    combined_maps: tuple[np.ndarray | None, np.ndarray | None]
    score: float
    threshold: float
    match: bool
    model: str
    n_forward: int = 0
    n_backward: int = 0
    seconds: float = 0.0
    pair: FacePair | None = field(default=None, repr=False)
    extra: dict[str, Any] = field(default_factory=dict)
    weights_sha256: str | None = None

    def maps(self, kind: str = "combined") -> tuple[np.ndarray | None, np.ndarray | None]:
        if kind not in MAP_KINDS:
            raise ConfigError(f"map kind must be one of {MAP_KINDS}, got {kind!r}")
        return getattr(self, f"{kind}_maps")

    def normalized(self, kind: str = "combined") -> tuple[np.ndarray | None, np.ndarray | None]:
        """Maps scaled into [-1, 1] (``similarity``/``dissimilarity`` into [0, 1]) by one pair-wide factor."""
        ref = [m for m in self.combined_maps if m is not None]
        scale = max((float(np.abs(m).max()) for m in ref), default=0.0)
        if kind != "combined":
            scale = max((float(np.abs(m).max()) for m in self.maps(kind) if m is not None), default=0.0)
        return tuple(None if m is None else (m / scale if scale > 0 else np.zeros_like(m)) for m in self.maps(kind))  # type: ignore[return-value]

    def on_photo(self, index: int, kind: str = "combined") -> np.ndarray:
        """The map of image ``index`` drawn back onto its original photo (NaN outside the crop)."""
        from ..align import unwarp_map

        if self.pair is None:
            raise ConfigError("this explanation carries no aligned faces to map back")
        face = (self.pair.a, self.pair.b)[index]
        m = self.maps(kind)[index]
        if m is None:
            raise ConfigError(f"{self.method} computed no {kind} map for image {index}")
        return unwarp_map(m, face.matrix, face.photo_shape)

    def data(self, include_maps: bool = True) -> dict[str, Any]:
        """A JSON-serialisable dict (maps as nested lists when ``include_maps``)."""
        d: dict[str, Any] = {
            "method": self.method,
            "params": _jsonable(self.params),
            "model": self.model,
            "weights_sha256": self.weights_sha256,
            "score": float(self.score),
            "threshold": float(self.threshold),
            "decision": "match" if self.match else "no match",
            "n_forward": int(self.n_forward),
            "n_backward": int(self.n_backward),
            "seconds": float(self.seconds),
            "extra": _jsonable(self.extra),
        }
        if self.pair is not None:
            d["sources"] = [self.pair.a.source, self.pair.b.source]
        if include_maps:
            for kind in MAP_KINDS:
                d[f"{kind}_maps"] = [None if m is None else np.round(m.astype(np.float64), 8).tolist() for m in self.maps(kind)]
        return d


def _jsonable(x: Any) -> Any:
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    return x


class Explainer:
    """Base class: subclasses set ``name`` and implement :meth:`_explain`.

    ``_explain(pixels_a, pixels_b, emb_a, emb_b)`` receives the clean crops as float pixels
    ``(1, 3, S, S)`` and their normalised embeddings ``(1, D)`` (already computed: 2 forwards)
    and returns ``(similarity, dissimilarity, combined)``, each a pair of ``(S, S)`` arrays.
    """

    name = "explainer"
    #: which images the method explains by default (both)
    images: tuple[int, ...] = (0, 1)

    def __init__(self, verifier: Verifier | str | FaceModel = "dlib-resnet", **params: Any):
        self.verifier = verifier if isinstance(verifier, Verifier) else Verifier(verifier)
        self.params: dict[str, Any] = {}
        self._n_forward = 0
        self._n_backward = 0

    # -- cost accounting -----------------------------------------------------------------
    def _embed(self, pixels: torch.Tensor) -> torch.Tensor:
        self._n_forward += int(pixels.shape[0])
        return self.verifier.embed(pixels)

    def explain(self, pair: Any, images: Sequence[int] | None = None) -> PairExplanation:
        """Explain a pair of aligned faces.

        Args:
            pair: a :class:`FacePair`, two :class:`AlignedFace` or two ``(S, S, 3)`` uint8 crops.
            images: which images to explain (``(0, 1)`` both, ``(0,)`` the first only, as the
                Patch-LFW protocol needs); default both.
        Returns:
            a :class:`PairExplanation`.
        """
        t0 = time.perf_counter()
        fp = as_pair(pair, self.verifier.input_size)
        which = tuple(self.images if images is None else images)
        if not which or any(i not in (0, 1) for i in which):
            raise ConfigError(f"images must be a non-empty subset of (0, 1), got {which}")
        self._n_forward = 0
        self._n_backward = 0
        self._extra: dict[str, Any] = {}
        x = crops_to_tensor([fp.a.image, fp.b.image])
        sim, dis, comb = self._explain(x[0:1], x[1:2], which)
        with torch.no_grad():
            score = float(self._clean_score)
        keep = lambda ms: tuple(None if (i not in which or m is None) else np.asarray(m, dtype=np.float32) for i, m in enumerate(ms))  # noqa: E731
        return PairExplanation(
            method=self.name, params=dict(self.params), similarity_maps=keep(sim), dissimilarity_maps=keep(dis),
            combined_maps=keep(comb), score=score, threshold=self.verifier.threshold,
            match=score >= self.verifier.threshold, model=self.verifier.model.spec.name,
            n_forward=self._n_forward, n_backward=self._n_backward, seconds=time.perf_counter() - t0, pair=fp,
            extra=dict(self._extra), weights_sha256=self.verifier.model.weights_sha256,
        )

    _clean_score: float = float("nan")

    def _explain(self, xa: torch.Tensor, xb: torch.Tensor, which: tuple[int, ...]):  # pragma: no cover - abstract
        raise NotImplementedError


# ---- shared machinery -------------------------------------------------------------------------

def gaussian_kernel2d(size: int, sigma: float) -> torch.Tensor:
    """Normalised ``(size, size)`` Gaussian kernel."""
    ax = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(ax**2) / (2 * sigma**2))
    k = torch.outer(g, g)
    return (k / k.sum()).float()


def gaussian_blur2d(x: torch.Tensor | np.ndarray, size: int = 5, sigma: float = 5.0) -> Any:
    """Gaussian blur of ``(H, W)`` or ``(B, C, H, W)`` maps with reflect padding (numpy in -> numpy out)."""
    is_np = isinstance(x, np.ndarray)
    t = torch.from_numpy(np.asarray(x, dtype=np.float32)) if is_np else x
    shape = t.shape
    t4 = t.reshape(-1, 1, *shape[-2:])
    k = gaussian_kernel2d(size, sigma).to(t4.dtype)[None, None]
    p = size // 2
    out = F.conv2d(F.pad(t4, (p, p, p, p), mode="reflect"), k).reshape(shape)
    return out.numpy() if is_np else out


class GradientExplainer(Explainer):
    """White-box methods: one forward of the pair, then vector-Jacobian products of the embeddings."""

    def _forward_pair(self, xa: torch.Tensor, xb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.cat([xa, xb]).detach().requires_grad_(True)
        e = self._embed(x)
        self._clean_score = float((e[0] * e[1]).sum().detach())
        return x, e

    def _vjp(self, x: torch.Tensor, e: torch.Tensor, cotangents: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Gradients ``d <e, v> / d x`` for each cotangent ``v`` ``(B, D)``; each counts B backward passes."""
        out = []
        for i, v in enumerate(cotangents):
            (g,) = torch.autograd.grad(e, x, grad_outputs=v, retain_graph=i < len(cotangents) - 1)
            self._n_backward += int((v.abs().sum(dim=1) > 0).sum())
            out.append(g)
        return out


class PerturbationExplainer(Explainer):
    """Black-box methods: embeddings of many perturbed crops, in batches, without gradients.

    Args (common): batch_size: images per forward batch (default 64).
    """

    def __init__(self, verifier: Verifier | str | FaceModel = "dlib-resnet", batch_size: int = 64, progress: bool = False, **params: Any):
        super().__init__(verifier)
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = int(batch_size)
        self.progress = progress

    @torch.inference_mode()
    def _clean(self, xa: torch.Tensor, xb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        e = self._embed(torch.cat([xa, xb]))
        self._clean_score = float((e[0] * e[1]).sum())
        return e[0:1], e[1:2]

    @torch.inference_mode()
    def _embed_perturbed(self, x: torch.Tensor, masks: torch.Tensor | Callable[[int, int], torch.Tensor], n: int,
                         fill: float | torch.Tensor = 0.0) -> torch.Tensor:
        """Normalised embeddings ``(n, D)`` of ``x * m + fill * (1 - m)`` for each mask ``m``.

        Args:
            x: ``(1, 3, S, S)`` pixels.
            masks: ``(n, 1, S, S)`` masks in [0, 1] (1 keeps the pixel), or a function
                ``(start, stop) -> (stop - start, 1, S, S)`` making them batch by batch.
            n: number of masks.
            fill: value of removed pixels (0: black, as xFace and RISE use).
        """
        out = []
        rng = range(0, n, self.batch_size)
        if self.progress:
            from tqdm import tqdm

            rng = tqdm(rng, desc=self.name, unit="batch", leave=False)
        for i in rng:
            j = min(n, i + self.batch_size)
            m = masks(i, j) if callable(masks) else masks[i:j]
            xm = x * m if (isinstance(fill, float) and fill == 0.0) else x * m + fill * (1 - m)
            out.append(self._embed(xm))
        return torch.cat(out)


# ---- registry ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class ExplainerInfo:
    name: str
    cls: type
    family: str  # "gradient" | "perturbation" | "baseline" | "interpretable"
    reference: str
    description: str
    needs_gradients: bool


#: the explainers' :class:`ExplainerInfo` by name; the built-in methods are this package's modules
EXPLAINERS: Registry[ExplainerInfo] = Registry(
    "explanation method", builtins=tuple(f"{__package__}.{m}" for m in
                                         ("xssab", "gradient", "random", "xface", "corrrise", "rise", "libf_ebm")))


def register_explainer(name: str, family: str, reference: str, description: str, needs_gradients: bool = False):
    """Class decorator registering an explainer with its metadata (a duplicate name: ConfigError)."""

    def deco(cls: type) -> type:
        EXPLAINERS.register(name, ExplainerInfo(name, cls, family, reference, description, needs_gradients))
        cls.name = name
        return cls

    return deco


def list_explainers(pattern: str = "*") -> list[str]:
    """Registered explanation methods matching a shell-style wildcard, sorted."""
    return EXPLAINERS.list(pattern)


def explainer_info(name: str) -> ExplainerInfo:
    """A method's :class:`ExplainerInfo` (ModelNotFoundError naming the known methods when unknown)."""
    return EXPLAINERS.get(name)


def get_explainer(name: str, verifier: Verifier | str | FaceModel = "dlib-resnet", **params: Any) -> Explainer:
    """Build a registered explainer (``xssab``, ``xface1``..``xface3``, ``corrrise``, ``rise``, ``gradient``, ``random``)."""
    return explainer_info(name).cls(verifier, **params)


def iter_pairs(pairs: Iterable[Any]) -> Iterable[FacePair]:
    for p in pairs:
        yield as_pair(p)
