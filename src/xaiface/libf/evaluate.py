"""``xaiface eval libf``: the figures and numbers of a trained LIBF-EBM folder.

Writes into ``out``:

* ``accuracy.png``: LFW 10-fold accuracy of each pair encoding beside the deep model's (from
  ``xaiface eval lfw``'s report), and the wall time of BYOL, LIBF features and EBM fits;
* ``patches.png``: the eleven patches on a real LFW face, in its photo, in its aligned crop,
  rotated and scaled, and pushed partly out of the image (visibility flags);
* ``explanation.png`` + ``explanations/``: the ``libf-ebm`` explanation of the first genuine and
  the first impostor pair (with both faces detected) of the test fold of the model used (that
  model never saw their people);
* ``global_explanation.json``: term and patch importances of that model;
* ``summary.json``: the numbers.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import NoFaceError, WeightsError

__all__ = ["evaluate_libf", "transformed_face"]


def transformed_face(image: np.ndarray, landmarks: np.ndarray, angle_deg: float = 0.0, scale: float = 1.0,
                     shift: tuple[float, float] = (0.0, 0.0), out_shape: tuple[int, int] | None = None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The photo rotated by ``angle_deg`` and scaled by ``scale`` about its centre, then shifted.

    Returns ``(new_image, new_landmarks, matrix)`` where ``matrix`` (2, 3) maps old pixels to new.
    """
    from ..align import apply_affine, warp_image

    h, w = image.shape[:2]
    oh, ow = out_shape or (int(round(h * scale)), int(round(w * scale)))
    a = np.radians(angle_deg)
    r = scale * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    c_old = np.array([(w - 1) / 2, (h - 1) / 2])
    c_new = np.array([(ow - 1) / 2, (oh - 1) / 2]) + np.asarray(shift, dtype=np.float64)
    m = np.hstack([r, (c_new - r @ c_old)[:, None]])
    if ow != oh:  # warp_image makes square outputs; warp to the larger side and cut
        s = max(ow, oh)
        out = warp_image(image, m, s)[:oh, :ow]
    else:
        out = warp_image(image, m, ow)
    return np.ascontiguousarray(out), apply_affine(m, landmarks), m


def evaluate_libf(model_dir: str | os.PathLike, out: str | os.PathLike, *, deep_report: str | os.PathLike | None = None,
                  fold: int | None = None, data: str | os.PathLike | None = None, encoding: str | None = None,
                  cache: Any = True) -> dict[str, Any]:
    """Make the figures and the summary (see the module docstring); returns the summary.

    ``cache``: detection cache of the pipeline that aligns the explained pairs (``True``: the default one).
    """
    from ..datasets import LFW
    from ..explain.base import Verifier
    from ..explain.report import save_explanations
    from ..io import load_image
    from ..pipeline import FacePipeline
    from .explainer import LIBFEBMExplainer
    from .figures import accuracy_figure, explanation_figure, patch_layout_figure
    from .model import LIBFModel
    from .patches import patch_layout

    root, o = Path(model_dir), Path(out)
    o.mkdir(parents=True, exist_ok=True)
    rep_path = root / "report.json"
    if not rep_path.is_file():
        raise WeightsError(f"{root}: no report.json; train first with `xaiface train libf --out {root}`")
    report = json.loads(rep_path.read_text())
    deep = json.loads(Path(deep_report).read_text()) if deep_report else None
    files: dict[str, str] = {"accuracy": str(accuracy_figure(report, o / "accuracy.png", deep))}

    lfw = LFW(data)
    pipe = FacePipeline("dlib-resnet", "dlib-hog", select="center", cache=cache)
    # the patch layout on a real face: photo, aligned crop, rotated + scaled, partly outside
    photo_path = lfw.image_path("Abel_Pacheco", 1)
    photo = load_image(photo_path)
    face = pipe.align(photo_path)
    from ..align import apply_affine

    lm = face.face.landmarks
    rot, lm_rot, _ = transformed_face(photo, lm, angle_deg=35, scale=1.6)
    off, lm_off, _ = transformed_face(photo, lm, shift=(60.0, -95.0))
    panels = [
        (photo, patch_layout(lm, photo.shape), "LFW photo (250 px)"),
        (face.image, patch_layout(apply_affine(face.matrix, lm), face.image.shape), "dlib-150 aligned crop"),
        (rot, patch_layout(lm_rot, rot.shape), "rotated 35 deg, scaled 1.6"),
        (off, patch_layout(lm_off, off.shape), "shifted: partly outside the image"),
    ]
    files["patches"] = str(patch_layout_figure(panels, o / "patches.png"))

    model = LIBFModel.load(root, fold, encoding)
    k = model.fold
    pairs = lfw.pairs(folds=[k - 1])
    verifier = Verifier(pipe.model, threshold=pipe.operating_point)
    explainer = LIBFEBMExplainer(verifier, model=model)
    chosen, aligned = [], []
    for same in (True, False):  # the first genuine and impostor pair whose faces are both detected
        for p in (q for q in pairs if q.same == same):
            try:
                aligned.append((pipe.align(p.path_a), pipe.align(p.path_b)))
            except NoFaceError:
                continue
            chosen.append(p)
            break
    exps, titles = [], []
    for p, (fa, fb) in zip(chosen, aligned):
        e = explainer.explain((fa, fb))
        exps.append(e)
        kind = "genuine" if p.same else "impostor"
        titles.append(f"{kind} pair (LFW fold {k}, pair {p.index}): {p.name_a} #{p.num_a} vs {p.name_b} #{p.num_b}")
    files["explanation"] = str(explanation_figure(exps, titles, o / "explanation.png"))
    files["explanations_json"] = str(save_explanations(exps, o / "explanations"))
    glob = model.verifier.global_explanation()
    (o / "global_explanation.json").write_text(json.dumps(glob, indent=2))
    files["global_explanation"] = str(o / "global_explanation.json")

    summary: dict[str, Any] = {
        "libf_ebm": {enc: {"mean_accuracy": e["mean_accuracy"], "std_accuracy": e["std_accuracy"], "folds": e["folds"],
                           **({"protocol_on_out_of_fold_logits": e["protocol_on_out_of_fold_logits"]["mean_accuracy"]}
                              if "protocol_on_out_of_fold_logits" in e else {})}
                     for enc, e in report.get("encodings", {}).items()},
        "timing_s": report.get("timing_s"),
        "explained_with": {"fold": k, "encoding": model.encoding},
        "explained_pairs": [
            {"title": t, "label": "match" if p.same else "no match", "logit": e.extra["logit"],
             "probability": e.extra["probability"], "decision": "match" if e.match else "no match",
             "sum_check": e.extra["intercept"] + sum(e.extra["patch_contributions"].values()),
             "patch_contributions": e.extra["patch_contributions"]}
            for t, p, e in zip(titles, chosen, exps)
        ],
        "top_global_patches": dict(sorted(glob["patches"].items(), key=lambda kv: -kv[1])),
        "files": files,
    }
    if deep is not None:
        summary["deep_model"] = {"model": deep.get("model"), **{
            k2: {"mean_accuracy": v["mean_accuracy"], "std_accuracy": v["std_accuracy"]}
            for k2, v in deep.get("variants", {}).items() if k2.startswith("select=center")}}
    (o / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary
