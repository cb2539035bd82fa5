"""Command line of the influencing-factor stage (:mod:`xaiface.factors`).

* ``xaiface transform IMAGE --factor jpeg --level 30 --out OUT.png``: one transform, for a look
  (prints bits per pixel and PSNR as JSON); ``--gallery OUT.png``: every factor at two levels;
  ``--list``: the registered factors.
* ``xaiface study factors --factor jpeg --levels 90,70,50,30,10 --out DIR``: the study
  (:func:`xaiface.factors.study.run_factor_study`); resumes from ``DIR/study.sqlite``.
* ``xaiface study plot DIR [DIR ...] --out FIG.png``: several studies' EER curves in one figure.

Plug-in codecs: ``--codec NAME --encode-cmd '...' --decode-cmd '...'`` registers an external
encoder/decoder pair as factor NAME (templates with ``{input}``, ``{output}``, ``{level}``; see
:class:`~xaiface.factors.CommandCodec`); ``--plugin MODULE`` imports a module that calls
:func:`~xaiface.factors.register_codec` (imported again in each worker process).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .args import (
    add_executor_args,
    add_data_arg, add_detector_arg, add_flip_arg, add_folds_arg, add_model_arg, add_out_arg, add_pairs_per_fold_arg,
    add_quiet_arg, add_weights_arg, executor_kwargs, lfw_folds, subparsers_of,
)


def _levels(text: str | None) -> list[float] | None:
    if not text:
        return None
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"--levels takes comma-separated numbers, got {text!r}") from None


def _params(items: list[str] | None) -> dict[str, Any]:
    from ..factors.transforms import parse_value

    out: dict[str, Any] = {}
    for it in items or []:
        if "=" not in it:
            raise ConfigError(f"--param takes NAME=VALUE, got {it!r}")
        k, v = it.split("=", 1)
        out[k.strip()] = parse_value(v.strip())
    return out


def _plugins(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Plug-in specs from the command line, registered here (and again in workers by the study)."""
    from ..factors.study import register_plugins

    specs: list[dict[str, Any]] = [{"kind": "module", "name": m} for m in (args.plugin or [])]
    if args.codec:
        if not (args.encode_cmd and args.decode_cmd):
            raise ConfigError("--codec needs --encode-cmd and --decode-cmd")
        specs.append({"kind": "command", "name": args.codec, "encode": args.encode_cmd, "decode": args.decode_cmd,
                      "suffix": args.codec_suffix, "levels": _levels(args.levels) or []})
    elif args.encode_cmd or args.decode_cmd:
        raise ConfigError("--encode-cmd/--decode-cmd need --codec NAME")
    register_plugins(specs)
    return specs


def _plugin_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("plug-in codecs (e.g. JPEG AI reference software)")
    g.add_argument("--codec", default=None, metavar="NAME", help="register an external codec as factor NAME")
    g.add_argument("--encode-cmd", default=None, help="encoder command template: {input} PNG -> {output} bitstream, {level}")
    g.add_argument("--decode-cmd", default=None, help="decoder command template: {input} bitstream -> {output} image")
    g.add_argument("--codec-suffix", default=".bin", help="bitstream file suffix (default .bin)")
    g.add_argument("--plugin", action="append", default=None, metavar="MODULE",
                   help="import MODULE, which registers codecs with xaiface.factors.register_codec")


def cmd_transform(args: argparse.Namespace) -> int:
    from ..io import load_image
    from ..factors.figures import transform_gallery
    from ..factors.transforms import factor_info, get_transform, list_factors, psnr

    _plugins(args)
    if args.list:
        rows = []
        for n in list_factors():
            i = factor_info(n)
            rows.append({"name": n, "family": i.family, "level": i.level, "degrades_when": i.degrade,
                         "default_levels": list(i.default_levels), "params": i.params, "description": i.description})
        print(json.dumps({"factors": rows}, indent=2))
        return 0
    if not args.image:
        raise ConfigError("transform takes a photo (or --list)")
    image = load_image(args.image)
    if args.gallery:
        factors = [f.strip() for f in args.factor.split(",")] if args.factor else None
        crop = None
        if args.crop:
            try:
                crop = tuple(int(v) for v in args.crop.split(","))
                assert len(crop) == 4 and crop[0] < crop[2] and crop[1] < crop[3]
            except (ValueError, AssertionError):
                raise ConfigError(f"--crop takes x1,y1,x2,y2 with x1 < x2 and y1 < y2, got {args.crop!r}") from None
        out = transform_gallery(image, args.gallery, factors=factors, title=Path(args.image).name, crop=crop, dpi=args.dpi)
        print(json.dumps({"gallery": str(out)}))
        return 0
    if not args.factor or args.level is None:
        raise ConfigError("transform needs --factor and --level (or --gallery / --list)")
    t = get_transform(args.factor, args.level, **_params(args.param))
    r = t(image)
    res: dict[str, Any] = {"image": args.image, "transform": t.describe(), "psnr_db": _finite_or_none(psnr(image, r.image)),
                           "nbytes": r.nbytes, "bpp": r.bpp, "info": r.info}
    if args.out:
        from PIL import Image

        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.suffix.lower() not in (".png", ".bmp", ".tif", ".tiff", ".ppm"):
            raise ConfigError(f"--out {out}: write the transformed photo losslessly (.png, .bmp, .tif, .ppm), "
                              "or the codec's artefacts would be mixed with another codec's")
        Image.fromarray(r.image).save(out)
        res["out"] = str(out)
    print(json.dumps(res, indent=2, default=float))
    return 0


def cmd_study_factors(args: argparse.Namespace) -> int:
    from ..factors.study import run_factor_study

    specs = _plugins(args)
    s = run_factor_study(args.out, args.factor, _levels(args.levels), params=_params(args.param), model=args.model,
                         weights=args.weights, detector=args.detector, flip=args.flip, apply=args.apply,
                         reuse_landmarks=args.reuse_landmarks, folds=lfw_folds(args.folds),
                         pairs_per_fold=args.pairs_per_fold, drift_pairs=args.drift_pairs, data=args.data,
                         max_new_images=args.max_new_images, plugins=specs, progress=not args.quiet,
                         **executor_kwargs(args))
    print(Path(args.out, "summary.md").read_text())
    if not s["complete"]:
        print("partial: run the same command again to resume")
    print(f"summary: {Path(args.out) / 'summary.json'}; curves: {Path(args.out) / 'curves.png'}")
    return 0


def cmd_study_plot(args: argparse.Namespace) -> int:
    from ..factors.figures import plot_studies

    sums = []
    for d in args.dirs:
        p = Path(d) / "summary.json"
        if not p.is_file():
            raise ConfigError(f"{p}: no study summary (run `xaiface study factors --out {d}` first)")
        sums.append(json.loads(p.read_text()))
    from ..factors.study import studies_markdown

    out = plot_studies(sums, args.out)
    res = {"figure": str(out)}
    if args.table:
        Path(args.table).write_text(studies_markdown(sums))
        res["table"] = args.table
    print(json.dumps(res))
    return 0


def register(sub: Any, eval_sub: Any) -> None:
    """Add ``transform`` and ``study factors`` / ``study plot``."""
    p = sub.add_parser("transform", help="apply an influencing factor (codec, resolution, enhancement, beautification) "
                                         "to a photo, or show them all",
                       description="One transform: prints bits per pixel (codecs) and PSNR; --out writes the result "
                                   "losslessly. --gallery: every factor at a mild and a strong level in one figure.")
    p.add_argument("image", nargs="?", metavar="IMAGE")
    p.add_argument("--factor", default=None, help="factor name (see --list); with --gallery, a comma-separated subset")
    p.add_argument("--level", type=float, default=None, help="the factor's level (e.g. JPEG quality)")
    p.add_argument("--param", action="append", default=None, metavar="NAME=VALUE", help="a fixed parameter of the factor")
    add_out_arg(p, help="write the transformed photo (.png)", required=False)
    p.add_argument("--gallery", default=None, metavar="FIG.png", help="figure: the photo under every factor at two levels")
    p.add_argument("--crop", default=None, metavar="X1,Y1,X2,Y2", help="gallery: show only this region of each result")
    p.add_argument("--dpi", type=int, default=110, help="gallery resolution (default 110)")
    p.add_argument("--list", action="store_true", help="list the registered factors")
    p.add_argument("--levels", default=None, help=argparse.SUPPRESS)
    _plugin_args(p)
    p.set_defaults(func=cmd_transform)

    ssub = subparsers_of(sub, "study", "studies of influencing factors", "study")
    s = ssub.add_parser("factors", help="how a factor changes LFW verification (EER, FMR/FNMR at the clean threshold, "
                                        "detection failures, bpp) and xSSAB explanations (drift)")
    s.add_argument("--factor", required=True, help="a registered factor (see `xaiface transform --list`)")
    s.add_argument("--levels", default=None, help="comma-separated levels (default: the factor's)")
    s.add_argument("--param", action="append", default=None, metavar="NAME=VALUE", help="a fixed parameter of the factor")
    add_out_arg(s, help="study folder (resumes from its study.sqlite)")
    s.add_argument("--apply", choices=("both", "probe"), default="both",
                   help="transform both photos of a pair (default) or only the second")
    s.add_argument("--reuse-landmarks", action="store_true",
                   help="align transformed photos with the clean photo's landmarks (no detection rerun; reported separately)")
    add_folds_arg(s)
    add_pairs_per_fold_arg(s, help="first N/2 genuine + N/2 impostor pairs per fold")
    s.add_argument("--drift-pairs", type=int, default=300, help="pairs whose xSSAB maps measure drift (default 300; 0: none)")
    s.add_argument("--max-new-images", type=int, default=None, help="stop after computing this many photos (resume later)")
    add_model_arg(s)
    add_weights_arg(s)
    add_detector_arg(s)
    add_flip_arg(s)
    add_executor_args(s, workers_help="processes for transform + detection (default 2)")
    add_data_arg(s)
    add_quiet_arg(s)
    _plugin_args(s)
    s.set_defaults(func=cmd_study_factors)

    pl = ssub.add_parser("plot", help="EER curves of several studies in one figure")
    pl.add_argument("dirs", nargs="+", metavar="DIR")
    add_out_arg(pl, help="the figure (.png)")
    pl.add_argument("--table", default=None, help="also write one markdown table of every study's levels")
    pl.set_defaults(func=cmd_study_plot)


def _finite_or_none(v: float) -> float | None:
    """JSON has no Infinity: an unchanged image (infinite PSNR) is reported as ``null``."""
    import math

    return float(v) if math.isfinite(v) else None
