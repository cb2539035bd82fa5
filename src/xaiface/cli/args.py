"""The arguments shared by the ``xaiface`` commands, and how they are turned into library values.

One place defines each shared option (its name, default and usual help text) and one function
reads it back: ``--folds`` (:func:`lfw_folds`), ``--threshold`` (:func:`threshold_value`), the
face-pipeline options (:func:`add_pipeline_args` / :func:`pipeline_from_args`), the data
folder, ``--threads`` (:func:`set_torch_threads`), ``--out`` and ``--quiet``. Every command module
of :mod:`xaiface.cli` builds its parser from these.

Importing this module costs nothing heavy: the library is imported inside the functions that
build library objects, so ``xaiface --help`` stays fast.
"""
from __future__ import annotations

import argparse
from typing import Any

from ..errors import ConfigError

DEFAULT_MODEL = "dlib-resnet"
"""The model of every command that takes ``--model`` (see ``xaiface models``)."""

DEFAULT_DETECTOR = "dlib-hog"
"""The face detector of every command that takes ``--detector``."""

FOLDS_HELP = "comma-separated LFW folds numbered 1..10, e.g. 1,2 (default: all ten)"
"""The help text of every ``--folds`` option (one convention: folds counted from 1)."""

DATA_HELP = "data folder holding lfw/ (default ../shared/data or $XAIFACE_DATA)"
"""The usual help text of ``--data``."""

THREADS_HELP = "torch CPU threads (1 is often fastest on a shared machine)"
"""The usual help text of ``--threads``."""

PAIRS_PER_FOLD_HELP = "quick run: first N/2 genuine + N/2 impostor pairs per fold"
"""The usual help text of ``--pairs-per-fold``."""

FLIP_STUDY_HELP = "mirror-averaged embeddings, as `xaiface eval lfw` (default on)"
"""The help text of ``--flip`` in the data-set studies (on by default there, as in ``eval lfw``)."""


# ---------------------------------------------------------------------------- reading arguments back

def lfw_folds(text: str | None) -> list[int] | None:
    """``--folds`` of every command (numbered 1..10): 0-based fold indices, ``None`` for all.

    Raises:
        ConfigError: not a comma-separated list of numbers 1..10 (see :func:`xaiface.datasets.lfw.parse_folds`).
    """
    from ..datasets.lfw import parse_folds

    folds = parse_folds(text)
    return None if folds is None else list(folds)


def threshold_value(text: str) -> str | float:
    """``--threshold``: a number (cosine similarity) or the name of a calibrated threshold (``eer``, ``fmr=1e-3``)."""
    try:
        return float(text)
    except ValueError:
        return text


def detector_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The dlib detectors' settings from ``--upsample`` and ``--pad-retry`` (none for the others)."""
    if not args.detector.startswith("dlib"):
        return {}
    kw: dict[str, Any] = {"upsample": args.upsample}
    if getattr(args, "pad_retry", False):
        kw["pad_retry"] = True
    return kw


def pipeline_from_args(args: argparse.Namespace, **overrides: Any) -> Any:
    """The :class:`~xaiface.pipeline.FacePipeline` of the options of :func:`add_pipeline_args`.

    ``overrides`` replace the keyword arguments taken from ``args`` (e.g. ``flip=False``).
    """
    from ..pipeline import FacePipeline

    kw: dict[str, Any] = dict(weights=args.weights, select=args.select, flip=args.flip,
                              threshold=threshold_value(args.threshold), cache=args.cache if args.cache else False)
    kw.update(overrides)
    det_kwargs = detector_kwargs(args)
    if getattr(args, "detector_model", None):
        det_kwargs["model_path"] = args.detector_model
    return FacePipeline(args.model, args.detector, detector_kwargs=det_kwargs, **kw)


def set_torch_threads(threads: int | None) -> None:
    """``--threads``: torch's intra-op CPU threads (``None``: torch's default, untouched).

    Raises:
        ConfigError: fewer than one thread.
    """
    if threads is None:
        return
    if threads < 1:
        raise ConfigError(f"--threads must be >= 1, got {threads}")
    import torch

    torch.set_num_threads(int(threads))


# ---------------------------------------------------------------------------- adding arguments

def subparsers_of(sub: Any, name: str, help_text: str, dest: str) -> Any:
    """The sub-parsers of top-level command ``name`` (e.g. ``train``), created here or shared with
    the other command modules that add sub-commands to it."""
    parser = sub.choices.get(name)
    if parser is None:
        parser = sub.add_parser(name, help=help_text)
    for action in parser._actions:  # another command module may have created the group already
        if isinstance(action, argparse._SubParsersAction):
            return action
    return parser.add_subparsers(dest=dest, required=True)


def add_out_arg(p: argparse.ArgumentParser, help: str | None = None, required: bool = True) -> None:
    """``--out``: where the command writes its results."""
    p.add_argument("--out", required=required, default=None, help=help)


def add_quiet_arg(p: argparse.ArgumentParser, help: str | None = None) -> None:
    """``--quiet``: no progress bars."""
    p.add_argument("--quiet", action="store_true", help=help)


def add_data_arg(p: argparse.ArgumentParser, help: str = DATA_HELP) -> None:
    """``--data``: the folder holding the data sets (``None``: the default data folder)."""
    p.add_argument("--data", default=None, help=help)


def add_threads_arg(p: argparse.ArgumentParser, help: str = THREADS_HELP) -> None:
    """``--threads``: torch CPU threads (read back with :func:`set_torch_threads`)."""
    p.add_argument("--threads", type=int, default=None, help=help)


def add_folds_arg(p: argparse.ArgumentParser, help: str = FOLDS_HELP) -> None:
    """``--folds`` (read back with :func:`lfw_folds`); ``help`` should keep :data:`FOLDS_HELP` in it."""
    p.add_argument("--folds", default=None, help=help)


def add_pairs_per_fold_arg(p: argparse.ArgumentParser, help: str = PAIRS_PER_FOLD_HELP) -> None:
    """``--pairs-per-fold``: a balanced subset of each LFW fold (``None``: every pair)."""
    p.add_argument("--pairs-per-fold", type=int, default=None, help=help)


def add_model_arg(p: argparse.ArgumentParser, help: str | None = None) -> None:
    """``--model``: a registered model name (default :data:`DEFAULT_MODEL`)."""
    p.add_argument("--model", default=DEFAULT_MODEL, help=help)


def add_weights_arg(p: argparse.ArgumentParser, help: str | None = None) -> None:
    """``--weights``: the model's weight file (``None``: the packaged one)."""
    p.add_argument("--weights", default=None, help=help)


def add_detector_arg(p: argparse.ArgumentParser, help: str | None = None) -> None:
    """``--detector``: a registered face detector (default :data:`DEFAULT_DETECTOR`)."""
    p.add_argument("--detector", default=DEFAULT_DETECTOR, help=help)


def add_flip_arg(p: argparse.ArgumentParser, default: bool = True, help: str = FLIP_STUDY_HELP) -> None:
    """``--flip`` / ``--no-flip``: mirror-averaged embeddings."""
    p.add_argument("--flip", action=argparse.BooleanOptionalAction, default=default, help=help)


def add_threshold_arg(p: argparse.ArgumentParser, help: str) -> None:
    """``--threshold`` (default ``eer``; read back with :func:`threshold_value`)."""
    p.add_argument("--threshold", default="eer", help=help)


def add_cache_arg(p: argparse.ArgumentParser, help: str) -> None:
    """``--cache``: the detection cache file (``None``: the command's default)."""
    p.add_argument("--cache", default=None, help=help)


def add_workers_arg(p: argparse.ArgumentParser, help: str) -> None:
    """``--workers``: worker processes (``None``: the library's default)."""
    p.add_argument("--workers", type=int, default=None, help=help)


def add_executor_args(p: argparse.ArgumentParser, workers_help: str) -> None:
    """Where a data-set run computes (:mod:`xaiface.executor`): ``--executor``, ``--workers``,
    ``--scheduler``, ``--dashboard``; read back with :func:`executor_kwargs`."""
    p.add_argument("--executor", choices=["local", "dask"], default=None,
                   help="local: this process; dask: a Dask cluster (default: dask when --workers N >= 1 or "
                        "--scheduler is given, else the command's own default)")
    add_workers_arg(p, help=workers_help + "; N >= 1 starts a local Dask cluster of N single-thread worker "
                                           "processes on 127.0.0.1, 0 runs in this process")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run on the workers of an existing Dask scheduler (tcp://HOST:8786, started with "
                        "`dask scheduler`; workers with `dask worker ADDRESS --nthreads 1`)")
    p.add_argument("--dashboard", action="store_true", help="serve the local Dask cluster's dashboard on 127.0.0.1")


def executor_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """``executor``, ``workers`` and ``scheduler`` of :func:`add_executor_args`' options; with
    ``--dashboard`` the executor is built here (a local Dask cluster serving its dashboard)."""
    if args.executor == "local" and args.scheduler:
        raise ConfigError("--scheduler needs --executor dask (or no --executor)")
    if getattr(args, "dashboard", False) and not args.scheduler:
        from ..executor import get_executor

        ex = get_executor("dask", workers=args.workers, dashboard=True)
        print(f"Dask dashboard: {ex.dashboard_link}", flush=True)
        return {"executor": ex, "workers": args.workers, "scheduler": None}
    return {"executor": args.executor, "workers": args.workers, "scheduler": args.scheduler}


def add_same_args(p: argparse.ArgumentParser, same_help: str, different_help: str) -> None:
    """``--same`` / ``--different``: whether the two photos show one person (``args.same``: True, False or None)."""
    g = p.add_mutually_exclusive_group()  # both at once is a usage error (exit 2)
    g.add_argument("--same", dest="same", action="store_const", const=True, default=None, help=same_help)
    g.add_argument("--different", dest="same", action="store_const", const=False, help=different_help)


def add_pipeline_args(p: argparse.ArgumentParser, select: str = "largest", flip: bool = False) -> None:
    """The face-pipeline options (model, weights, detector and its settings, face selection, flip,
    threshold, detection cache), read back with :func:`pipeline_from_args`."""
    add_model_arg(p, help="registered model name (see `xaiface models`)")
    add_weights_arg(p, help="weight file for the model (default: the packaged one)")
    add_detector_arg(p, help="dlib-hog (default), dlib-mmod, retinaface-onnx, scrfd-onnx")
    p.add_argument("--detector-model", default=None, help="ONNX file for retinaface-onnx / scrfd-onnx")
    p.add_argument("--upsample", type=int, default=1, help="dlib detectors: times to upsample the photo (default 1)")
    p.add_argument("--pad-retry", action="store_true",
                   help="dlib detectors: when no face is found, detect again with a border around the photo "
                        "(finds faces that fill a tight crop; off by default)")
    p.add_argument("--select", default=select, choices=["largest", "center", "score"], help=f"which face (default {select})")
    add_flip_arg(p, default=flip, help="average with the mirror image's embedding")
    add_threshold_arg(p, help="eer, fmr=1e-2, fmr=1e-3 or a number (cosine)")
    add_cache_arg(p, help="detection cache file (default: none for single images)")


def _param_value(s: str) -> Any:
    """A ``--param`` value: JSON when it parses (numbers, booleans, lists), else the string."""
    import json

    try:
        return json.loads(s)
    except json.JSONDecodeError:
        return s


def method_params(items: list[str] | None) -> dict[str, dict[str, Any]]:
    """``--param METHOD.NAME=VALUE`` items (repeatable) as ``{method: {name: value}}`` (else ConfigError)."""
    out: dict[str, dict[str, Any]] = {}
    for it in items or []:
        key, sep, val = it.partition("=")
        method, dot, name = key.partition(".")
        if not sep or not dot or not method or not name:
            raise ConfigError(f"--param takes METHOD.NAME=VALUE (e.g. corrrise.n_masks=300), got {it!r}")
        out.setdefault(method, {})[name] = _param_value(val)
    return out
