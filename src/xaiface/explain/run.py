"""Explain the faces of two photos end to end: what ``xaiface explain`` does, as one library call.

:func:`explain_photos` aligns both photos with a :class:`~xaiface.pipeline.FacePipeline`, builds
the :class:`~xaiface.explain.Verifier` of the pipeline's model at the pipeline's threshold (the
threshold's name travels with it), runs each method, and writes into ``out``:

* ``<method>_<kind>_<a|b>.npy`` and ``explanations.json`` (:func:`~.report.save_explanations`);
* ``figure.png`` (:func:`~.visualize.pair_figure`);
* with ``soft_biometrics``: ``soft_biometrics.json`` and ``soft_biometrics.png``, and a section
  of the report (gender and age of both faces; left out, with a note saying why, when the
  gender and age models are not installed);
* ``report.html`` (:func:`~.report.write_report`).

It returns an :class:`ExplainRun`; :meth:`ExplainRun.summary` is the JSON summary the command
line prints.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import ConfigError
from ..types import AlignedFace
from .base import PairExplanation, PerturbationExplainer, Verifier, check_images, explainer_info, get_explainer

#: ``images`` of :func:`explain_photos` by name
IMAGES = {"both": (0, 1), "a": (0,)}


@dataclass(frozen=True)
class ExplainRun:
    """What :func:`explain_photos` made.

    Attributes:
        faces: the two aligned faces. explanations: one per method, in the order asked.
        threshold_name: the name of the first explanation's threshold, as its score and decision
            (the verifier's ``"eer"``, ``"fmr=1e-2"``, ``"user"`` for a number; a method that
            decides by itself, such as LIBF-EBM, gives its own).
        out: the output folder. explanations_json, figure, report: the files written there.
        records: the entries of ``explanations.json`` (with each map's file name).
        soft_biometrics: ``None`` when not asked; ``{"skipped": why}`` when the models are
            missing; else ``{"summary", "json", "figure"}``.
    """

    faces: tuple[AlignedFace, AlignedFace]
    explanations: tuple[PairExplanation, ...]
    threshold_name: str
    out: Path
    explanations_json: Path
    figure: Path
    report: Path
    records: tuple[dict[str, Any], ...]
    soft_biometrics: dict[str, Any] | None = None

    def summary(self) -> dict[str, Any]:
        """The run as ``xaiface explain`` prints it: the first method's verdict, each method's cost and files."""
        first = self.explanations[0]
        s: dict[str, Any] = {
            "images": [self.faces[0].source, self.faces[1].source],
            "model": first.model, "score": round(float(first.score), 6), "threshold": round(float(first.threshold), 6),
            "threshold_name": self.threshold_name, "decision": "match" if first.match else "no match",
            "methods": [
                {"method": e.method, "n_forward": e.n_forward, "n_backward": e.n_backward, "seconds": round(e.seconds, 4),
                 "files": {k: [None if f is None else str(self.out / f) for f in v] for k, v in r["files"].items()}}
                for e, r in zip(self.explanations, self.records)
            ],
            "explanations": str(self.explanations_json), "figure": str(self.figure), "report": str(self.report),
        }
        if self.soft_biometrics is not None:
            s["soft_biometrics"] = self.soft_biometrics
        return s


def explain_photos(photo_a: Any, photo_b: Any, out: str | Path, methods: Sequence[str] = ("xssab",),
                   pipeline: Any = None, images: str | Sequence[int] = "both", batch_size: int | None = None,
                   method_params: "dict[str, dict[str, Any]] | None" = None,
                   on_photo: bool = True, soft_biometrics: bool = True, genuine: bool | None = None,
                   soft_check: Callable[[], str | None] | None = None,
                   estimators: Sequence[str] | None = None) -> ExplainRun:
    """Align two photos, explain the pair with each method and write maps, JSON, figure and report.

    Args:
        photo_a, photo_b: the photos (a path, or anything :func:`~xaiface.io.load_image` reads).
        out: the output folder (created).
        methods: registered method names (see :func:`~xaiface.explain.list_explainers`), run in order.
        pipeline: a :class:`~xaiface.pipeline.FacePipeline` with ``flip=False``, or a function
            returning one (called once the other arguments are checked, so that a bad method name
            fails before a model is loaded); default ``FacePipeline()``. Its model and threshold
            make the verifier (:meth:`Verifier.from_pipeline`).
        images: ``"both"`` / ``(0, 1)``, or ``"a"`` / ``(0,)`` (the first image only).
        batch_size: images per forward batch of the perturbation methods (default theirs).
        method_params: parameters by method name (e.g. ``{"corrrise-student": {"weights": "s.pt"}}``);
            a method not in ``methods`` is a ConfigError.
        on_photo: also draw the maps on the original photos (figure and report).
        soft_biometrics: add the soft-biometric section (gender, age; BMI/weight when its
            regressor is cached) to the report.
        genuine: whether the photos show one person (``None``: unknown); the soft-biometric
            section then names a true/false accept/reject.
        soft_check: says why the section cannot be added (``None``: it can); default
            :func:`xaiface.soft.dlib_age_gender.models_missing`. Called before any work.
        estimators: registered soft-biometric estimator names for that section (e.g.
            ``["faceres-gender", "faceres-age"]`` or ``["levi-hassner-gender"]``; see
            :func:`xaiface.soft.list_estimators`); default dlib's gender and age (+ BMI/weight when cached).
    Returns:
        an :class:`ExplainRun`.
    Raises:
        ModelNotFoundError: an unknown method (before anything is loaded or written).
        ConfigError: no method, a bad ``images`` or ``batch_size``, a pipeline with ``flip=True``.
        NoFaceError: no face in a photo (nothing is written).
    """
    methods = list(methods)
    if not methods:
        raise ConfigError("explain: no method given")
    infos = [explainer_info(m) for m in methods]  # an unknown name fails here, before any work
    which = check_images(IMAGES[images] if isinstance(images, str) and images in IMAGES else images)
    if batch_size is not None and batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {batch_size}")
    stray = sorted(set(method_params or {}) - set(methods))
    if stray:
        raise ConfigError(f"parameters given for {stray}, which are not among the methods {list(methods)}")
    if estimators is not None:
        from ..soft import get_estimator

        built = [get_estimator(n) for n in estimators]  # an unknown name fails here, before any work
        soft_missing = None
    else:
        built = None
        soft_missing = (soft_check or _soft_models_missing)() if soft_biometrics else None
    pipe = _pipeline(pipeline)
    verifier = Verifier.from_pipeline(pipe)
    face_a, face_b = pipe.align(photo_a), pipe.align(photo_b)
    explanations = []
    for name, info in zip(methods, infos):
        params: dict[str, Any] = dict((method_params or {}).get(name, {}))
        if batch_size is not None and issubclass(info.cls, PerturbationExplainer):
            params["batch_size"] = batch_size
        explanations.append(get_explainer(name, verifier, **params).explain((face_a, face_b), images=which))
    return _write(Path(out), (face_a, face_b), explanations, verifier, pipe, photo_a, photo_b, on_photo,
                  soft_biometrics, soft_missing, genuine, built)


def _soft_models_missing() -> str | None:
    from ..soft.dlib_age_gender import models_missing

    return models_missing()


def _pipeline(pipeline: Any) -> Any:
    if pipeline is None:
        from ..pipeline import FacePipeline

        return FacePipeline()
    return pipeline() if callable(pipeline) else pipeline


def _write(out: Path, faces: tuple[AlignedFace, AlignedFace], explanations: list[PairExplanation], verifier: Verifier,
           pipe: Any, photo_a: Any, photo_b: Any, on_photo: bool, soft_biometrics: bool, soft_missing: str | None,
           genuine: bool | None, estimators: Sequence[Any] | None = None) -> ExplainRun:
    """The files of :func:`explain_photos` (maps and JSON, figure, soft biometrics, report)."""
    from ..io import load_image
    from .report import save_explanations, write_report
    from .visualize import pair_figure

    js = save_explanations(explanations, out)
    photos = (load_image(photo_a), load_image(photo_b)) if on_photo else None
    figure = pair_figure(explanations, out / "figure.png", photos=photos, on_photo=on_photo)
    sections: list[Any] = []
    soft: dict[str, Any] | None = None
    if soft_missing is not None:
        from ..soft.report import NoteSection

        sections.append(NoteSection("Soft biometrics", f"Left out: {soft_missing}"))
        soft = {"skipped": soft_missing}
    elif soft_biometrics:
        soft = _soft_section(out, faces, explanations[0], pipe, genuine, sections, estimators)
    report = write_report(explanations, out / "report.html", photos=photos, on_photo=on_photo, sections=sections)
    records = json.loads(js.read_text())["explanations"]
    return ExplainRun(faces=faces, explanations=tuple(explanations), threshold_name=explanations[0].threshold_name, out=out,
                      explanations_json=js, figure=figure, report=report, records=tuple(records), soft_biometrics=soft)


def _soft_section(out: Path, faces: tuple[AlignedFace, AlignedFace], first: PairExplanation, pipe: Any,
                  genuine: bool | None, sections: list[Any], estimators: Sequence[Any] | None = None) -> dict[str, Any]:
    """Write ``soft_biometrics.json`` / ``.png``, append the report's section; its summary entry."""
    from PIL import Image

    from ..soft.report import default_estimators, report_section

    sec = report_section(faces[0], faces[1], float(first.score), float(first.threshold), genuine=genuine,
                         estimators=list(estimators) if estimators is not None
                         else default_estimators(body_mass="if-cached", model=pipe.model),
                         model=pipe.model.spec.name)
    sections.append(sec)
    (out / "soft_biometrics.json").write_text(json.dumps(sec.data, indent=2))
    Image.fromarray(sec.figure).save(out / "soft_biometrics.png")
    return {"summary": sec.summary, "json": str(out / "soft_biometrics.json"), "figure": str(out / "soft_biometrics.png")}
