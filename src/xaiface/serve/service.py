"""The demo's computations, apart from HTTP: what every endpoint of :mod:`.app` calls.

:class:`DemoService` composes the library's own stages and never re-implements them: a
:class:`~xaiface.pipeline.FacePipeline` per model and operating point (built on first use; the
last :attr:`Limits.max_pipelines` are kept), :meth:`~xaiface.explain.Verifier.from_pipeline`
and :func:`~xaiface.explain.get_explainer` for the maps, :mod:`xaiface.explain.visualize` for
the pictures (the colour legend of the report: green similar, pink dissimilar),
:func:`xaiface.soft.report.report_section` for the soft-biometric explanation and
:func:`xaiface.factors.get_transform` for an influencing factor. Results are plain dicts (JSON),
maps as PNG data URIs and, when asked, as arrays.

Inputs are decoded once, by :func:`xaiface.io.load_image` (content sniffing by Pillow, never the
file name; the pixel limit checked from the header before decoding). The pipeline's face
detector is not known to be thread-safe (dlib), so detection and alignment run under one lock per
pipeline; embeddings and explanations run outside it.
"""
from __future__ import annotations

import base64
import io
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import ConfigError, ImageError, NoFaceError

#: the operating points the page offers (names of every model's calibrated thresholds)
OPERATING_POINTS = ("eer", "fmr=1e-2", "fmr=1e-3")
#: families of the methods answered at once (one forward and a few backward passes); every other
#: family (perturbation: hundreds of forwards; interpretable: a model to load) runs as a background job
FAST_FAMILIES = ("gradient", "baseline")
#: gradient methods that are slow all the same: fggb takes one backward pass per embedding dimension
#: (N = 128-1,024: seconds to minutes a pair), so it runs as a job
SLOW_METHODS = ("fggb",)


def is_fast(method: str) -> bool:
    """Whether a registered method answers at once (its family is in :data:`FAST_FAMILIES` and it
    is not one of :data:`SLOW_METHODS`)."""
    from ..explain.base import explainer_info

    return explainer_info(method).family in FAST_FAMILIES and method not in SLOW_METHODS


@dataclass(frozen=True)
class Limits:
    """What one request may bring (each refused with a 4xx and a message naming the limit).

    Attributes:
        max_upload_bytes: the largest request body (all files together), checked while it arrives.
        max_pixels: the largest ``width * height`` of a photo, checked from its header before decoding.
        max_methods: methods per explanation.
        max_pending_jobs: background jobs queued or running at once (then 429).
        max_video_frames: frames of a clip read at most (the rest is ignored, and said so).
        max_pipelines: face pipelines kept in memory (least recently used dropped first).
    """

    max_upload_bytes: int = 20 * 1024 * 1024
    max_pixels: int = 16_000_000
    max_methods: int = 4
    max_pending_jobs: int = 4
    max_video_frames: int = 300
    max_pipelines: int = 3


@dataclass(frozen=True)
class Photo:
    """An uploaded (or sample) photo, decoded: ``image`` ``(H, W, 3)`` uint8 RGB; ``name`` for messages."""

    name: str
    image: np.ndarray


def png_uri(rgb: np.ndarray) -> str:
    """An RGB ``uint8`` image as a ``data:image/png;base64`` URI (compress level 1: fast, the images are small)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buf, format="PNG", compress_level=1)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


class DemoService:
    """The computations behind the web demo (see the module docstring).

    Args:
        limits: the :class:`Limits`. detector: the face detector of every pipeline.
        data: the data folder (LFW samples); ``None``: the default (``$XAIFACE_DATA``...).
        libf_artefacts: where a trained LIBF-EBM model lies (``None``: its default place).
    """

    def __init__(self, limits: Limits | None = None, detector: str = "dlib-hog", data: Any = None,
                 libf_artefacts: Any = None):
        self.limits = limits or Limits()
        self.detector = detector
        self.data = data
        self.libf_artefacts = libf_artefacts
        self._pipes: OrderedDict[tuple[str, str], tuple[Any, threading.Lock]] = OrderedDict()
        self._pipes_lock = threading.Lock()
        self._samples: list[Any] | None = None

    # ---- inputs ---------------------------------------------------------------------------
    def photo(self, data: bytes, name: str) -> Photo:
        """Decode an upload (Pillow sniffs the content; the name only labels messages)."""
        from ..io import load_image

        if not data:
            raise ImageError(f"{name}: empty upload; expected a JPEG, PNG, BMP, GIF, TIFF or WebP photo")
        return Photo(name, load_image(data, name=name, max_pixels=self.limits.max_pixels))

    def samples(self) -> list[dict[str, Any]]:
        """A few LFW View 2 pairs (genuine and impostor, fold 1) the page offers; empty without the data."""
        out = []
        for i, p in enumerate(self._sample_pairs()):
            out.append({"id": i, "a": f"{p.name_a} {p.num_a}", "b": f"{p.name_b} {p.num_b}", "same": bool(p.same)})
        return out

    def sample_path(self, index: int, side: str) -> Path:
        """The file of sample ``index``'s photo ``side`` (``"a"`` or ``"b"``); only listed pairs are served."""
        pairs = self._sample_pairs()
        if side not in ("a", "b") or not 0 <= index < len(pairs):
            raise ConfigError(f"no sample {index}{side}: samples are 0..{len(pairs) - 1}, sides a and b")
        return Path(pairs[index].path_a if side == "a" else pairs[index].path_b)

    def sample_photos(self, index: int) -> tuple[Photo, Photo]:
        from ..io import load_image

        pa, pb = self.sample_path(index, "a"), self.sample_path(index, "b")
        return Photo(pa.name, load_image(pa)), Photo(pb.name, load_image(pb))

    def _sample_pairs(self) -> list[Any]:
        if self._samples is None:
            from ..datasets import LFW
            from ..errors import DatasetError

            try:
                pairs = LFW(self.data).pairs(folds=[0], per_fold=8)
            except DatasetError:
                pairs = []
            self._samples = pairs
        return self._samples

    # ---- registries -----------------------------------------------------------------------
    def models(self) -> list[dict[str, Any]]:
        """The registered models, each with whether it can run here and its calibrated operating points."""
        from ..models.registry import list_models, model_spec

        rows = []
        for name in list_models():
            s = model_spec(name)
            rows.append({"name": name, "description": s.description, "embedding_size": s.embedding_size,
                         "available": self._model_available(name), "license": s.license,
                         "operating_points": [t for t in OPERATING_POINTS if t in s.thresholds.get("plain", {})]})
        return rows

    @staticmethod
    def _model_available(name: str) -> bool | str:
        from ..models.catalog import TFJS_SPECS
        from ..models.registry import model_spec

        if model_spec(name).weights_required:
            return "needs a user weight file"
        if name in TFJS_SPECS:
            from ..io.fetch import HUMAN_MODELS, is_fetched

            return True if is_fetched(HUMAN_MODELS) else "weights not fetched (xaiface models fetch)"
        return True

    def explainers(self) -> list[dict[str, Any]]:
        """The registered methods: family, whether they answer at once or as a job, whether they can run here."""
        from ..explain import list_explainers
        from ..explain.base import explainer_info

        rows = []
        for name in list_explainers():
            info = explainer_info(name)
            rows.append({"name": name, "family": info.family, "description": info.description,
                         "reference": info.reference, "mode": "sync" if is_fast(name) else "job",
                         "available": (self._libf_state() if info.family == "interpretable" else
                                       "needs trained weights (weights=), which the page cannot pass"
                                       if info.family == "amortised" else True)})
        return rows

    def _libf_state(self) -> bool | str:
        from ..errors import WeightsError
        from ..libf.model import LIBFModel

        try:
            LIBFModel.load(self.libf_artefacts)
        except WeightsError as e:
            return str(e)
        return True

    def factors(self) -> list[dict[str, Any]]:
        """The registered influencing factors with what their level means and two example levels."""
        from ..factors.transforms import factor_info, list_factors

        rows = []
        for name in list_factors():
            f = factor_info(name)
            rows.append({"name": name, "family": f.family, "level": f.level, "description": f.description,
                         "levels": list(f.gallery_levels), "default_levels": list(f.default_levels)})
        return rows

    # ---- pipelines ------------------------------------------------------------------------
    def pipeline(self, model: str, threshold: str) -> tuple[Any, threading.Lock]:
        """The pipeline of ``model`` at operating point ``threshold`` (plain embeddings), and its detector lock."""
        from ..pipeline import FacePipeline

        key = (model, str(threshold))
        with self._pipes_lock:
            if key in self._pipes:
                self._pipes.move_to_end(key)
                return self._pipes[key]
        pipe = FacePipeline(model, self.detector, threshold=str(threshold), flip=False)
        with self._pipes_lock:
            entry = self._pipes.setdefault(key, (pipe, threading.Lock()))
            while len(self._pipes) > self.limits.max_pipelines:
                self._pipes.popitem(last=False)
        return entry

    def align(self, pipe_lock: tuple[Any, threading.Lock], photos: Sequence[Photo]) -> list[Any]:
        pipe, lock = pipe_lock
        with lock:
            return [pipe.align(p.image, name=p.name) for p in photos]

    # ---- verify ---------------------------------------------------------------------------
    def verify(self, a: Photo, b: Photo, model: str = "dlib-resnet", threshold: str = "eer") -> dict[str, Any]:
        """The verdict of ``xaiface verify`` on two decoded photos (its JSON)."""
        pl = self.pipeline(model, threshold)
        fa, fb = self.align(pl, (a, b))
        return _verdict(pl[0], fa, fb).to_dict()

    # ---- explain --------------------------------------------------------------------------
    def check_methods(self, methods: Sequence[str]) -> list[str]:
        """The methods asked, checked against the registry and :attr:`Limits.max_methods` (before any work)."""
        from ..explain.base import explainer_info

        methods = [m for m in methods if m]
        if not methods:
            raise ConfigError("explain: no method given; see GET /api/explainers")
        if len(methods) > self.limits.max_methods:
            raise ConfigError(f"explain: at most {self.limits.max_methods} methods a request, got {len(methods)}")
        for m in methods:
            explainer_info(m)  # ModelNotFoundError naming the known methods
        return methods

    @staticmethod
    def check_factor(factor: str | None, level: float | None, apply: str = "both") -> Any:
        """The transform of a registered factor at ``level`` (``None`` without a factor); ConfigError when bad."""
        if not factor:
            return None
        from ..factors.transforms import get_transform

        if level is None:
            raise ConfigError(f"factor {factor!r} needs a level (see GET /api/factors)")
        if apply not in ("both", "probe"):
            raise ConfigError(f"apply must be 'both' or 'probe', got {apply!r}")
        return get_transform(factor, float(level))

    def explain(self, a: Photo, b: Photo, methods: Sequence[str] = ("xssab",), model: str = "dlib-resnet",
                threshold: str = "eer", soft: bool = False, factor: str | None = None, level: float | None = None,
                apply: str = "both", arrays: bool = False, all_maps: bool = False, painted: bool = False,
                progress: Callable[[float, str], None] | None = None) -> dict[str, Any]:
        """Verdict, maps and evidence of a pair; with ``factor``, the same under that factor side by side.

        Args:
            a, b: the photos. methods: registered methods, run in order. model, threshold: the pipeline.
            soft: add the soft-biometric explanation (gender, age; BMI/weight when cached).
            factor, level: a registered influencing factor applied to ``apply`` (``"both"`` photos or
                the ``"probe"``, B) and the pair explained again.
            arrays: add the maps as arrays (nested lists, crop resolution) to the PNGs.
            all_maps, painted: see :func:`method_entry`.
            progress: ``progress(fraction, stage)`` as the work advances; raising there cancels.
        Returns:
            ``{"original": {...}, "factor": {...} | None}``, each as :meth:`explain_one` gives; when the
            factor leaves no detectable face, ``factor`` holds ``"error"`` (no face) and no verdict.
        """
        methods = self.check_methods(methods)
        transform = self.check_factor(factor, level, apply)
        runs = 2 if transform is not None else 1
        tick = _Ticker(progress, runs * len(methods))
        out: dict[str, Any] = {"original": self.explain_one(a, b, methods, model, threshold, soft, arrays, tick, all_maps,
                                                          painted)}
        out["factor"] = None
        if transform is not None:
            ta = Photo(f"{a.name} [{transform.describe()}]", transform(a.image).image) if apply == "both" else a
            tb = Photo(f"{b.name} [{transform.describe()}]", transform(b.image).image)
            about = {**transform.config(), "apply": apply, "description": transform.describe()}
            try:
                res = self.explain_one(ta, tb, methods, model, threshold, soft, arrays, tick, all_maps, painted)
            except NoFaceError as e:  # the factor hid a face: that is a result, not a bad request
                res = {"verdict": None, "methods": [], "error": str(e)}
            res["factor"] = about
            res["photos"] = [png_uri(ta.image), png_uri(tb.image)]
            out["factor"] = res
        return out

    def explain_one(self, a: Photo, b: Photo, methods: Sequence[str], model: str, threshold: str, soft: bool,
                    arrays: bool, tick: "_Ticker | None" = None, all_maps: bool = False,
                    painted: bool = False) -> dict[str, Any]:
        """One pair: ``verdict`` (the pipeline's verifier's), ``crops`` (PNG), ``faces`` (how to draw a map on
        each photo, :func:`face_geometry`), ``legend``, ``methods`` (:func:`method_entry` each), ``soft_biometrics``."""
        from ..explain.base import FacePair, PerturbationExplainer, Verifier, explainer_info, get_explainer

        tick = tick or _Ticker(None, len(methods))
        pl = self.pipeline(model, threshold)
        pipe = pl[0]
        fa, fb = self.align(pl, (a, b))
        verifier = Verifier.from_pipeline(pipe)
        pair = FacePair(fa, fb)
        entries = []
        verdict = None
        for name in methods:
            info = explainer_info(name)
            params: dict[str, Any] = {}
            if issubclass(info.cls, PerturbationExplainer):
                params["progress"] = tick.step_callback(name)
            if info.family == "interpretable" and self.libf_artefacts is not None:
                params["artefacts"] = self.libf_artefacts
            tick.start(name)
            expl = get_explainer(name, verifier, **params).explain(pair)
            tick.done()
            if verdict is None and info.family != "interpretable":  # scored by the pipeline's verifier
                verdict = expl.verdict
            entries.append(method_entry(expl, (a.image, b.image), info.family, arrays, painted, all_maps))
        verdict = verdict if verdict is not None else _verdict(pipe, fa, fb)
        res: dict[str, Any] = {"verdict": verdict.to_dict(), "crops": [png_uri(fa.image), png_uri(fb.image)],
                               "faces": [face_geometry(fa), face_geometry(fb)], "legend": legend(), "methods": entries}
        if soft:
            res["soft_biometrics"] = self.soft_biometrics(pipe, fa, fb, (a.image, b.image), res["verdict"])
        return res

    def soft_biometrics(self, pipe: Any, fa: Any, fb: Any, photos: tuple[np.ndarray, np.ndarray],
                        verdict: dict[str, Any]) -> dict[str, Any]:
        """The soft-biometric explanation of the verdict (``{"skipped": why}`` without its model files)."""
        from ..soft.dlib_age_gender import models_missing
        from ..soft.report import default_estimators, report_section

        missing = models_missing()
        if missing is not None:
            return {"skipped": missing}
        sec = report_section(fa, fb, float(verdict["similarity"]), float(verdict["threshold"]),
                             estimators=default_estimators(body_mass="if-cached", model=pipe.model),
                             photos=list(photos), model=pipe.model.spec.name)
        return {"summary": sec.summary, "data": sec.data, "figure": png_uri(sec.figure)}


def _verdict(pipe: Any, fa: Any, fb: Any) -> Any:
    """The verdict on two aligned faces: the pipeline's embeddings scored by its verifier (the same
    scoring and threshold as :meth:`FacePipeline.verify`, without detecting the faces again)."""
    from ..explain.base import FacePair, Verifier

    e = pipe.embed_aligned([fa, fb])
    return Verifier.from_pipeline(pipe).verdict(e[0], e[1], pair=FacePair(fa, fb))


def map_png(signed: np.ndarray) -> str:
    """A signed map in [-1, 1] as an 8-bit grey PNG data URI: ``pixel = 128 + round(127 * value)``
    (so ``value = (pixel - 128) / 127``; 0 is exact; NaN, outside a photo's crop, is 0)."""
    v = np.clip(np.nan_to_num(np.asarray(signed, dtype=np.float32), nan=0.0), -1.0, 1.0)
    return png_uri(np.rint(128 + 127 * v).astype(np.uint8))


def face_geometry(face: Any) -> dict[str, Any]:
    """How the page draws a crop-resolution map onto the photo: the photo's size and the canvas
    transform ``[a, b, c, d, e, f]`` (``setTransform`` order) taking crop pixels to photo pixels.

    :class:`~xaiface.types.AlignedFace` ``.matrix`` maps photo to crop coordinates with pixel
    centres at integers; a canvas puts pixel centres at ``+0.5``, hence the shifts.
    """
    from ..align import invert_affine

    inv = invert_affine(face.matrix)
    A, t = inv[:, :2], inv[:, 2]
    shift = t + 0.5 - A @ np.array([0.5, 0.5])
    h, w = face.photo_shape
    return {"crop_size": int(face.image.shape[0]), "photo_size": [int(w), int(h)],
            "canvas_transform": [float(A[0, 0]), float(A[1, 0]), float(A[0, 1]), float(A[1, 1]),
                                 float(shift[0]), float(shift[1])]}


def legend() -> dict[str, Any]:
    """The colours of the maps (those of the report, :mod:`xaiface.explain.visualize`) and the maps' PNG encoding."""
    from ..explain.visualize import DISSIMILARITY_RGB, MAX_ALPHA, SIMILARITY_RGB

    return {"similarity_rgb": list(SIMILARITY_RGB), "dissimilarity_rgb": list(DISSIMILARITY_RGB), "max_alpha": MAX_ALPHA,
            "map_encoding": "grey PNG, value = (pixel - 128) / 127; painted with opacity max_alpha * |value|, "
                            "green where > 0 (similarity), pink-red where < 0 (dissimilarity)"}


def method_entry(expl: Any, photos: tuple[np.ndarray, np.ndarray] | None, family: str, arrays: bool = False,
                 painted: bool = False, all_maps: bool = False) -> dict[str, Any]:
    """One method's part of a result: its verdict and cost, its maps as PNG (and arrays when asked).

    ``maps`` holds, for both faces, the signed maps scaled pair-wide into [-1, 1] as
    :func:`~xaiface.explain.visualize.signed_maps` scales them for the report (``combined``, and
    the map that argues for the verdict: ``similarity`` for an accept, ``dissimilarity`` (negative)
    for a reject, as the XAIface demo shows; both with ``all_maps``), each a grey PNG
    (:func:`map_png`) that the page paints over the crop and, through :func:`face_geometry`, over
    the photo. ``painted`` adds ``images``: the same maps painted by the server
    (:func:`~xaiface.explain.visualize.crop_overlays`, ``photo_overlays``) as RGB PNGs.
    """
    from ..explain.visualize import crop_overlays, photo_overlays, signed_maps

    d = expl.data(include_maps=False)
    d["family"] = family
    evidence = "similarity" if expl.match else "dissimilarity"
    kinds = ("combined", "similarity", "dissimilarity") if all_maps else ("combined", evidence)
    d["evidence"] = evidence
    d["maps"] = {k: [None if m is None else map_png(m) for m in signed_maps(expl, k)] for k in kinds}
    if painted:
        d["images"] = {f"{k}_crop": [png_uri(x) for x in crop_overlays(expl, k)] for k in kinds}
        d["images"]["combined_photo"] = [png_uri(x) for x in photo_overlays(expl, photos, "combined")]
    if arrays:
        d["arrays"] = {k: [None if m is None else np.round(m.astype(np.float64), 6).tolist() for m in expl.maps(k)]
                       for k in ("similarity", "dissimilarity", "combined")}
    if "patch_contributions" in d["extra"]:  # libf-ebm: the per-patch logit contributions, largest first
        pc = d["extra"]["patch_contributions"]
        d["patch_contributions"] = sorted(({"patch": k, "contribution": float(v)} for k, v in pc.items()),
                                          key=lambda r: -abs(r["contribution"]))
    d["extra"] = {k: v for k, v in d["extra"].items() if k not in ("terms", "layout")}
    return d


class _Ticker:
    """Progress of a multi-method job as one fraction: each method is one equal step; a perturbation
    method's own ``progress(done, total)`` (per explained image, so twice a pair) fills its step."""

    def __init__(self, report: Callable[[float, str], None] | None, steps: int):
        self.report, self.steps, self.k = report, max(1, steps), 0
        self._calls = 0
        self._last = -1

    def start(self, name: str) -> None:
        self._calls, self._last = 0, -1
        self._emit(self.k / self.steps, name)

    def done(self) -> None:
        self.k += 1
        self._emit(self.k / self.steps, "")

    def step_callback(self, name: str) -> Callable[[int, int], None]:
        def cb(done: int, total: int) -> None:
            if done <= self._last:  # the method moved on to its next image
                self._calls += 1
            self._last = done
            inner = min(1.0, (self._calls + done / max(1, total)) / 2)
            self._emit((self.k + inner) / self.steps, name)

        return cb

    def _emit(self, fraction: float, stage: str) -> None:
        if self.report is not None:
            self.report(min(1.0, fraction), stage)
