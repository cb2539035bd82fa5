"""``xaiface serve`` (the web demo and its REST API) and ``xaiface verify-video`` (a photo against a clip)."""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from .args import add_pipeline_args, pipeline_from_args


def register(sub: argparse._SubParsersAction, eval_sub: argparse._SubParsersAction) -> None:
    """Add ``serve`` and ``verify-video`` to the top-level sub-commands."""
    p = sub.add_parser("serve", help="the web demo and its REST API (FastAPI + uvicorn, on 127.0.0.1)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; a non-loopback "
                                                       "address needs --allow-remote)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    p.add_argument("--allow-remote", action="store_true",
                   help="allow a non-loopback --host (the demo has no authentication)")
    p.add_argument("--max-upload-mb", type=float, default=20.0, help="largest request body in MiB (default 20)")
    p.add_argument("--max-pixels", type=int, default=16_000_000, help="largest photo, width x height (default 16e6)")
    p.add_argument("--max-jobs", type=int, default=4, help="background jobs queued or running at once (default 4)")
    p.add_argument("--detector", default="dlib-hog", help="face detector of every pipeline (default dlib-hog)")
    p.add_argument("--log-level", default="info", choices=["critical", "error", "warning", "info", "debug"])
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser("verify-video", help="a reference photo against the faces of a clip: a score per frame, "
                                            "the decision over the clip (JSON on stdout)")
    p.add_argument("reference")
    p.add_argument("clip")
    p.add_argument("--top-k", type=int, default=3, help="frames pooled per face track (mean of the top k; default 3)")
    p.add_argument("--stride", type=int, default=1, help="read every N-th frame (default 1)")
    p.add_argument("--max-frames", type=int, default=300, help="frames read at most (default 300)")
    p.add_argument("--explain", default="xssab", help="method explaining the best deciding frame ('' for none)")
    p.add_argument("--out", default=None, help="folder for scores.png, best_frame.png, explained.png and verdict.json")
    add_pipeline_args(p)
    p.set_defaults(func=cmd_verify_video)


def cmd_serve(args: argparse.Namespace) -> int:
    from ..serve import DemoService, Limits, serve

    limits = Limits(max_upload_bytes=int(args.max_upload_mb * 1024 * 1024), max_pixels=args.max_pixels,
                    max_pending_jobs=args.max_jobs)
    print(f"xaiface demo on http://{args.host}:{args.port}/  (API schema: /openapi.json)", flush=True)
    serve(args.host, args.port, limits=limits, allow_remote=args.allow_remote, log_level=args.log_level,
          service=DemoService(limits, detector=args.detector))
    return 0


def cmd_verify_video(args: argparse.Namespace) -> int:
    from ..video import verify_video

    pipe = pipeline_from_args(args, flip=False)
    v = verify_video(args.reference, args.clip, pipe, top_k=args.top_k, stride=args.stride, max_frames=args.max_frames,
                     explain=args.explain or None)
    d = v.to_dict()
    if args.out:
        from PIL import Image

        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        d["files"] = {"plot": str(v.plot(out / "scores.png"))}
        Image.fromarray(v.best_frame).save(out / "best_frame.png")
        d["files"]["best_frame"] = str(out / "best_frame.png")
        if v.explanation is not None:
            from ..explain.visualize import pair_figure

            d["files"]["explained"] = str(pair_figure([v.explanation], out / "explained.png",
                                                      on_photo=False))
        (out / "verdict.json").write_text(json.dumps(d, indent=2))
    print(json.dumps(d, indent=2))
    return 0
