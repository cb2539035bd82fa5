"""The video path on clips made from real LFW photos: per-frame scores, the decision, the explained frame.

No face video is shared with the project, so each clip is made by :func:`xaiface.video.make_clip`
from real LFW photos of one person (moving, scaled 0.7..1.15, JPEG quality 90 -> 12 -> 90,
written with OpenCV's VideoWriter into a temporary folder that is removed). Each clip is then
verified with ``xaiface verify-video`` (its command function, in this process) against

* a *genuine* reference: another LFW photo of the same person, and
* an *impostor* reference: a photo of someone else,

and the runs' plots (``scores.png``) and explanations of the best frame (``explained.png``) are
copied into ``--out`` with a ``summary.json`` of both runs (the raw frames are not kept).

    python benchmarks/video_clip.py [--person Alejandro_Toledo] [--impostor Al_Gore] [--frames 40] \
        [--out docs/results/video]
"""
from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path


def main() -> None:
    from xaiface.cli import main as xaiface
    from xaiface.datasets import LFW
    from xaiface.io import load_image
    from xaiface.video import make_clip

    ap = argparse.ArgumentParser()
    ap.add_argument("--person", default="Alejandro_Toledo")
    ap.add_argument("--impostor", default="Al_Gore")
    ap.add_argument("--frames", type=int, default=40)
    ap.add_argument("--out", default="docs/results/video")
    args = ap.parse_args()
    lfw = LFW()
    clip_photos = [lfw.image_path(args.person, k) for k in (2, 3, 4)]
    references = {"genuine": lfw.image_path(args.person, 1), "impostor": lfw.image_path(args.impostor, 1)}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    summary: dict = {"clip": {"photos": [p.name for p in clip_photos], "frames": args.frames, "size": [320, 240],
                              "fps": 10, "scale": [0.7, 1.15], "jpeg_quality": [90, 12]}, "runs": {}}
    with tempfile.TemporaryDirectory(prefix="xaiface-video-") as tmp:
        clip = make_clip([load_image(p) for p in clip_photos], Path(tmp) / "clip.mp4", n_frames=args.frames)
        summary["clip"]["bytes"] = clip.stat().st_size
        for kind, ref in references.items():
            run_dir = Path(tmp) / kind
            t = time.perf_counter()
            rc = xaiface(["verify-video", str(ref), str(clip), "--out", str(run_dir)])
            seconds = time.perf_counter() - t
            v = json.loads((run_dir / "verdict.json").read_text())
            summary["runs"][kind] = {
                "reference": ref.name, "exit_code": rc, "seconds": round(seconds, 2), "decision": v["decision"],
                "score": v["score"], "threshold": v["threshold"], "threshold_name": v["threshold_name"],
                "rule": v["rule"], "deciding_frames": v["deciding_frames"], "explained_frame": v["explained_frame"],
                "frames_read": v["frames_read"], "frames_with_face": v["frames_with_face"],
                "tracks": v["track_scores"],
                "per_frame": [[f["frame"], f["track"], f["score"]] for f in v["frames"]],
            }
            for name in ("scores.png", "explained.png"):  # not the raw frame: LFW pixels stay out of the repo
                if (run_dir / name).is_file():
                    shutil.copy(run_dir / name, out / f"{kind}_{name}")
            print(f"{kind:9s} ref {ref.name}: {v['decision']}, clip score {v['score']:.4f} vs {v['threshold_name']} "
                  f"{v['threshold']:.4f}; deciding frames {v['deciding_frames']}; {v['frames_with_face']}/"
                  f"{v['frames_read']} frames with a face; {seconds:.1f} s")
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"wrote {out}/summary.json and the figures")


if __name__ == "__main__":
    main()
