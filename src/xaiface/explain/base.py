"""The explainer contract: ``Explainer(verifier).explain(pair) -> PairExplanation``.

In the manner of captum's attributions: every method is built from a :class:`Verifier` (a face
model and its decision threshold) and answers :meth:`Explainer.explain` for a pair of aligned
faces with a :class:`PairExplanation` holding, for each image, a similarity map, a
dissimilarity map and their combination (``combined = similarity - dissimilarity``) at the
aligned crop's resolution, plus the :class:`~xaiface.types.PairVerdict`, the method's
parameters and what it cost.

A method implements one step, ``_explain(xa, xb, which, cost) -> MapResult``: its signed
combined maps, the clean pair's embeddings (the verdict is scored from them with
:func:`xaiface.verify.pair_similarity`) and what else it reports. The base class does the rest
once: the similarity map is the combined map's positive part, the dissimilarity map its
negative part (``max(combined, 0)``, ``max(-combined, 0)``) unless the method defines them
otherwise (xSSAB: each from its own set of arguments), and the verdict. Nothing of one call is
kept on the explainer, so one explainer object may explain several pairs at once (threads).

The family splits by mechanism: :class:`GradientExplainer` (white-box, vector-Jacobian products
of the similarity) and :class:`PerturbationExplainer` (black-box, batched forwards of masked
crops) share their machinery here; each method is one file registered with
:func:`register_explainer` (a method of another package, such as ``libf-ebm`` of
:mod:`xaiface.libf.explainer`, registers itself the same way).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError, NumericalError
from ..models.base import FaceModel, crops_to_tensor
from ..models.registry import get_model
from ..models.thresholds import OperatingPoint, WithOperatingPoint
from ..registry import Registry
from ..types import AlignedFace, PairVerdict

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

MAP_KINDS = ("similarity", "dissimilarity", "combined")

#: a map for each image of the pair; ``None`` for an image the method did not explain
MapPair = tuple["np.ndarray | None", "np.ndarray | None"]


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

    @classmethod
    def from_pipeline(cls, pipeline: Any) -> "Verifier":
        """The verifier of a :class:`~xaiface.pipeline.FacePipeline`: its model at its threshold.

        The pipeline's :class:`OperatingPoint` is taken as it is, so the name travels with the value.

        Raises:
            ConfigError: the pipeline averages mirror embeddings (``flip=True``): explanations
                use plain embeddings and the model's plain thresholds.
        """
        if pipeline.flip:
            raise ConfigError("explanations use plain (un-flipped) embeddings and the model's plain thresholds; "
                              "build the pipeline with flip=False")
        return cls(pipeline.model, threshold=pipeline.operating_point)  # the name travels with the value

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

    def verdict(self, emb_a: Any, emb_b: Any, pair: "FacePair | None" = None) -> PairVerdict:
        """The verdict on two normalised embeddings ``(D,)``, scored with :func:`~xaiface.verify.pair_similarity`.

        ``pair`` (optional) gives the faces' detections, detector and sources to the verdict.
        """
        from ..verify.similarity import pair_similarity  # the scoring path the thresholds were calibrated with

        s = float(pair_similarity(emb_a, emb_b))
        faces = (None, None) if pair is None else (pair.a, pair.b)
        dets = tuple(None if f is None else f.face for f in faces)
        return PairVerdict(
            similarity=s, threshold=self.threshold, match=s >= self.threshold, model=self.model.spec.name,
            threshold_name=self.threshold_name, detector=next((d.detector for d in dets if d is not None), ""),
            faces=dets, sources=tuple(None if f is None else f.source for f in faces),  # type: ignore[arg-type]
            weights_sha256=self.model.weights_sha256,
        )


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
        fp = FacePair(as_aligned(a), as_aligned(b))
    for face in (fp.a, fp.b):
        im = face.image
        if im.ndim != 3 or im.shape[2] != 3 or im.dtype != np.uint8 or im.shape[0] != im.shape[1]:
            raise ConfigError(f"aligned crops must be (S, S, 3) uint8, got {im.shape} {im.dtype}")
        if size is not None and im.shape[0] != size:
            raise ConfigError(f"aligned crop of {im.shape[0]} px, but the model takes {size} px crops ({face.geometry})")
    return fp


def as_aligned(x: Any) -> AlignedFace:
    """An :class:`AlignedFace` as is; an ``(S, S, 3)`` crop as :meth:`AlignedFace.from_crop`."""
    return x if isinstance(x, AlignedFace) else AlignedFace.from_crop(x)


@dataclass
class PairExplanation:
    """Maps for both images of a pair, the verdict, and the method's parameters and cost.

    Maps are float32 ``(S, S)`` at the aligned crop's resolution, unnormalised (each method's own
    units); :meth:`normalized` gives a view scaled into [-1, 1] by the largest absolute value of
    the pair's combined maps, so both images share one scale. :meth:`data` gives the numbers
    (JSON-serialisable), :meth:`visualize` the picture.

    Attributes:
        method: registry name. params: the method's parameters.
        similarity_maps, dissimilarity_maps, combined_maps: ``(map_a, map_b)``; a method that
            explains one image only (``images=(0,)``) leaves the other as ``None``.
        verdict: the :class:`~xaiface.types.PairVerdict` on the clean pair (its ``similarity``
            is the cosine similarity, or a method's own score, e.g. libf-ebm's match probability);
            ``score``, ``threshold``, ``threshold_name``, ``match``, ``model`` and
            ``weights_sha256`` read it.
        n_forward: images passed forward through the network. n_backward: vector-Jacobian
            products of one image's embedding (backward passes counted per image).
        seconds: wall time of :meth:`Explainer.explain`.
        pair: the aligned faces explained. extra: what else the method reports.
        images: pictures the method shows beside its maps (``label -> (H, W, 3)`` uint8; dfv: the
            reconstructions of the faces); drawn by the report, listed by name in :meth:`data`.
    """

    method: str
    params: dict[str, Any]
    similarity_maps: MapPair
    dissimilarity_maps: MapPair
    combined_maps: MapPair
    verdict: PairVerdict
    n_forward: int = 0
    n_backward: int = 0
    seconds: float = 0.0
    pair: FacePair | None = field(default=None, repr=False)
    extra: dict[str, Any] = field(default_factory=dict)
    images: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    @property
    def score(self) -> float:
        """The verdict's score (cosine similarity of the clean pair, or the method's own)."""
        return self.verdict.similarity

    @property
    def threshold(self) -> float:
        return self.verdict.threshold

    @property
    def threshold_name(self) -> str:
        return self.verdict.threshold_name

    @property
    def match(self) -> bool:
        return self.verdict.match

    @property
    def model(self) -> str:
        return self.verdict.model

    @property
    def weights_sha256(self) -> str | None:
        """SHA-256 of the face model's weight file (``None``: random/in-memory weights)."""
        return self.verdict.weights_sha256

    def maps(self, kind: str = "combined") -> MapPair:
        if kind not in MAP_KINDS:
            raise ConfigError(f"map kind must be one of {MAP_KINDS}, got {kind!r}")
        return getattr(self, f"{kind}_maps")

    def normalized(self, kind: str = "combined") -> MapPair:
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
            "threshold_name": self.threshold_name,
            "decision": "match" if self.match else "no match",
            "n_forward": int(self.n_forward),
            "n_backward": int(self.n_backward),
            "seconds": float(self.seconds),
            "extra": _jsonable(self.extra),
        }
        if self.images:
            d["images"] = sorted(self.images)
        if self.pair is not None:
            d["sources"] = [self.pair.a.source, self.pair.b.source]
        if include_maps:
            for kind in MAP_KINDS:
                d[f"{kind}_maps"] = [None if m is None else np.round(m.astype(np.float64), 8).tolist() for m in self.maps(kind)]
        return d

    def visualize(self, photos: Any = None, on_photo: bool = False, separate: bool = False) -> "Figure":
        """The picture of :func:`xaiface.explain.visualize.pair_figure` as a matplotlib ``Figure`` (not saved).

        Args: as :func:`~xaiface.explain.visualize.draw_pair_figure` (``photos``, ``on_photo``, ``separate``).
        """
        from .visualize import draw_pair_figure

        return draw_pair_figure(self, photos=photos, on_photo=on_photo, separate=separate)


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


@dataclass
class Cost:
    """What one explanation costs, counted while it runs (one object per :meth:`Explainer.explain` call).

    Attributes:
        n_forward: images passed forward through the network.
        n_backward: vector-Jacobian products of one image's embedding.
    """

    n_forward: int = 0
    n_backward: int = 0


@dataclass(frozen=True)
class MapResult:
    """What a method's ``_explain`` gives back for one pair.

    Attributes:
        combined: the signed maps ``(map_a, map_b)`` (``(S, S)`` each; > 0 similar, < 0
            dissimilar); an image not explained may be ``None`` (it is dropped anyway).
        embeddings: the clean pair's normalised embeddings ``(D,)`` (tensors or arrays): the
            verdict is scored from them (:meth:`Verifier.verdict`).
        verdict: instead of ``embeddings``, a method's own verdict (a method that decides the
            pair itself, such as ``libf-ebm``).
        extra: what else the method reports (counts, intermediate scores), JSON-serialisable.
        similarity, dissimilarity: a method whose similarity and dissimilarity maps are not the
            positive and negative parts of ``combined`` gives them here (xSSAB); ``None``: the
            base class splits ``combined``.
        images: pictures shown beside the maps (see :attr:`PairExplanation.images`).
    """

    combined: MapPair
    embeddings: tuple[Any, Any] | None = None
    verdict: PairVerdict | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    similarity: MapPair | None = None
    dissimilarity: MapPair | None = None
    images: dict[str, np.ndarray] = field(default_factory=dict)


def split_signed(combined: MapPair) -> tuple[MapPair, MapPair]:
    """``(similarity, dissimilarity)``: the positive and negative parts ``max(c, 0)``, ``max(-c, 0)`` of each map."""
    sim = tuple(None if m is None else np.maximum(m, 0) for m in combined)
    dis = tuple(None if m is None else np.maximum(-m, 0) for m in combined)
    return sim, dis  # type: ignore[return-value]


def _kept(maps: MapPair, which: tuple[int, ...]) -> MapPair:
    """The explained images' maps as float32 ``(S, S)``; ``None`` for the others."""
    return tuple(None if (i not in which or m is None) else np.asarray(m, dtype=np.float32)  # type: ignore[return-value]
                 for i, m in enumerate(maps))


def check_images(images: Sequence[int]) -> tuple[int, ...]:
    """``images`` as a tuple, when it is a non-empty subset of ``(0, 1)`` (else ConfigError)."""
    which = tuple(images)
    if not which or any(i not in (0, 1) for i in which):
        raise ConfigError(f"images must be a non-empty subset of (0, 1), got {which}")
    return which


class Explainer:
    """Base class: subclasses set ``name`` and implement :meth:`_explain`.

    ``_explain(xa, xb, which, cost)`` receives the clean crops as float pixels ``(1, 3, S, S)``,
    the images to explain and the call's :class:`Cost` (counted by :meth:`_embed`), and returns
    a :class:`MapResult`. A method that needs the aligned faces themselves (landmarks, uint8
    crops) overrides :meth:`_explain_faces` instead. Neither may keep anything of the call on
    ``self``: one explainer may run several explanations at once.
    """

    name = "explainer"
    #: which images the method explains by default (both)
    images: tuple[int, ...] = (0, 1)

    def __init__(self, verifier: Verifier | str | FaceModel = "dlib-resnet", **params: Any):
        self.verifier = verifier if isinstance(verifier, Verifier) else Verifier(verifier)
        self.params: dict[str, Any] = {}

    # -- cost accounting -----------------------------------------------------------------
    def _embed(self, pixels: torch.Tensor, cost: Cost) -> torch.Tensor:
        cost.n_forward += int(pixels.shape[0])
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
        which = check_images(self.images if images is None else images)
        cost = Cost()
        res = self._explain_faces(fp, which, cost)
        comb = _kept(res.combined, which)
        sim, dis = split_signed(comb)
        if res.similarity is not None:
            sim = _kept(res.similarity, which)
        if res.dissimilarity is not None:
            dis = _kept(res.dissimilarity, which)
        if (res.verdict is None) == (res.embeddings is None):
            raise ConfigError(f"explainer {self.name}: _explain must give either the clean embeddings or a verdict")
        verdict = res.verdict if res.verdict is not None else self.verifier.verdict(*res.embeddings, pair=fp)
        return PairExplanation(
            method=self.name, params=dict(self.params), similarity_maps=sim, dissimilarity_maps=dis,
            combined_maps=comb, verdict=verdict, n_forward=cost.n_forward, n_backward=cost.n_backward,
            seconds=time.perf_counter() - t0, pair=fp, extra=dict(res.extra), images=dict(res.images),
        )

    def _explain_faces(self, pair: FacePair, which: tuple[int, ...], cost: Cost) -> MapResult:
        """The maps of a checked pair of aligned faces: :meth:`_explain` on their float pixels."""
        x = crops_to_tensor([pair.a.image, pair.b.image])
        return self._explain(x[0:1], x[1:2], which, cost)

    def _explain(self, xa: torch.Tensor, xb: torch.Tensor, which: tuple[int, ...], cost: Cost) -> MapResult:  # pragma: no cover - abstract
        raise NotImplementedError


def read_trained_record(path: Any, model: FaceModel, layer_key: str, what: str, train_module: str) -> tuple[Any, dict[str, Any]]:
    """``(state_dict, record)`` of an explainer's trained network (``<path>.pt`` with ``<path>.json`` beside it).

    The record's SHA-256 must be the file's, and its ``model``, ``model_weights_sha256`` and
    ``layer`` those of ``model`` (its ``layer_key`` layer); the state dict is read with
    ``weights_only=True``.

    Raises:
        WeightsError: a missing file or record, a digest that differs, a network made for another
            model, weights or layer, or a file that is not a state dict.
    """
    import json
    import pickle
    from pathlib import Path

    from ..errors import WeightsError
    from ..io.hashing import file_sha256

    path = Path(path)
    meta_path = path.with_suffix(".json")
    if not path.is_file():
        raise WeightsError(f"{path}: no {what} weights (train them: python -m {train_module} --help)")
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise WeightsError(f"{meta_path}: the {what}'s record is missing or unreadable ({e})") from None
    sha = file_sha256(path)
    if meta.get("sha256") != sha:
        raise WeightsError(f"{path}: SHA-256 {sha}, but its record {meta_path} says {meta.get('sha256')}")
    if meta.get("model") != model.spec.name:
        raise WeightsError(f"{path}: a {what} for model {meta.get('model')!r}, not {model.spec.name!r}")
    if meta.get("model_weights_sha256") not in (None, model.weights_sha256):
        raise WeightsError(f"{path}: trained on weights {meta.get('model_weights_sha256')}, the model has {model.weights_sha256}")
    if meta.get("layer") != model.layer_name(layer_key):
        raise WeightsError(f"{path}: trained at layer {meta.get('layer')!r}, the model's {layer_key} layer is "
                           f"{model.layer_name(layer_key)!r}")
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, ValueError, TypeError, EOFError, pickle.UnpicklingError) as e:
        raise WeightsError(f"{path}: not a {what} state dict ({e})") from None
    return sd, meta


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

    def _forward_pair(self, xa: torch.Tensor, xb: torch.Tensor, cost: Cost) -> tuple[torch.Tensor, torch.Tensor]:
        """Pixels ``(2, 3, S, S)`` requiring gradients and their embeddings ``(2, D)`` (with the graph)."""
        x = torch.cat([xa, xb]).detach().requires_grad_(True)
        return x, self._embed(x, cost)

    def _vjp(self, x: torch.Tensor, e: torch.Tensor, cotangents: Sequence[torch.Tensor], cost: Cost) -> list[torch.Tensor]:
        """Gradients ``d <e, v> / d x`` for each cotangent ``v`` ``(B, D)``; each counts B backward passes."""
        out = []
        for i, v in enumerate(cotangents):
            (g,) = torch.autograd.grad(e, x, grad_outputs=v, retain_graph=i < len(cotangents) - 1)
            cost.n_backward += int((v.abs().sum(dim=1) > 0).sum())
            out.append(g)
        return out


class PerturbationExplainer(Explainer):
    """Black-box methods: embeddings of many perturbed crops, in batches, without gradients.

    Args (common): batch_size: images per forward batch (default 64). progress: ``True`` shows a
    tqdm bar; a function ``progress(done, total)`` is called after each batch with the masks done
    so far of the current image (a caller's progress bar; raising there, e.g. on a cancelled job,
    stops the explanation cooperatively between batches).
    """

    def __init__(self, verifier: Verifier | str | FaceModel = "dlib-resnet", batch_size: int = 64,
                 progress: bool | Callable[[int, int], None] = False, **params: Any):
        super().__init__(verifier)
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = int(batch_size)
        self.progress = progress

    @torch.inference_mode()
    def _clean(self, xa: torch.Tensor, xb: torch.Tensor, cost: Cost) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised embeddings ``(1, D)`` of the clean crops."""
        e = self._embed(torch.cat([xa, xb]), cost)
        return e[0:1], e[1:2]

    @torch.inference_mode()
    def _embed_perturbed(self, x: torch.Tensor, masks: torch.Tensor | Callable[[int, int], torch.Tensor], n: int,
                         cost: Cost, fill: float | torch.Tensor = 0.0) -> torch.Tensor:
        """Normalised embeddings ``(n, D)`` of ``x * m + fill * (1 - m)`` for each mask ``m``.

        Args:
            x: ``(1, 3, S, S)`` pixels.
            masks: ``(n, 1, S, S)`` masks in [0, 1] (1 keeps the pixel), or a function
                ``(start, stop) -> (stop - start, 1, S, S)`` making them batch by batch.
            n: number of masks.
            cost: the call's cost (``n`` forwards are added).
            fill: value of removed pixels (0: black, as xFace and RISE use).
        """
        out = []
        rng = range(0, n, self.batch_size)
        report = self.progress if callable(self.progress) else None
        if self.progress and report is None:
            from tqdm import tqdm

            rng = tqdm(rng, desc=self.name, unit="batch", leave=False)
        for i in rng:
            j = min(n, i + self.batch_size)
            m = masks(i, j) if callable(masks) else masks[i:j]
            xm = x * m if (isinstance(fill, float) and fill == 0.0) else x * m + fill * (1 - m)
            out.append(self._embed(xm, cost))
            if report is not None:
                report(j, n)
        return torch.cat(out)


# ---- registry ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class ExplainerInfo:
    name: str
    cls: type
    family: str  # "gradient" | "perturbation" | "baseline" | "interpretable" | "amortised" (needs trained weights)
    reference: str
    description: str
    needs_gradients: bool


#: modules registering the built-in methods, imported on first look-up: this package's own, and
#: plug-ins of other packages named in full (imported by name only, so ``explain`` imports none of them)
_BUILTIN_MODULES = ("xssab", "gradient", "fggb", "cam", "integrated", "student", "dfv", "random", "xface", "corrrise", "rise", "xaiface.libf.explainer")

#: the explainers' :class:`ExplainerInfo` by name
EXPLAINERS: Registry[ExplainerInfo] = Registry(
    "explanation method", builtins=tuple(m if "." in m else f"{__package__}.{m}" for m in _BUILTIN_MODULES))


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
