"""Estimate where the five ArcFace-order landmarks sit inside dlib's 150x150 chips.

Prints the mean landmark positions (crop pixels) over N LFW faces of folds 1-2; the result is
``xaiface.align.aligner.DLIB150_TEMPLATE``, used only when a detector gives no dlib 5-point
shape (RetinaFace/SCRFD with the dlib model).

    python benchmarks/estimate_dlib_template.py --n 200
"""
from __future__ import annotations

import argparse

import numpy as np

from xaiface.align import apply_affine
from xaiface.align.aligner import _dlib_chip_matrix
from xaiface.datasets import LFW
from xaiface.detect.base import get_detector, select_faces
from xaiface.io import load_image


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--data", default=None)
    args = ap.parse_args()
    det = get_detector("dlib-hog")
    paths = []
    for p in LFW(args.data).pairs():
        if p.fold < 2:
            paths += [p.path_a]
    pts = []
    for path in paths[: args.n]:
        img = load_image(path)
        faces = det.detect(img)
        if not faces:
            continue
        f = select_faces(faces, img.shape, "center")[0]
        pts.append(apply_affine(_dlib_chip_matrix(f), f.landmarks))
    arr = np.stack(pts)
    print(f"{len(arr)} faces; mean (x, y) per landmark in the 150 px chip, then std:")
    print(np.array2string(arr.mean(0), precision=1, separator=", "))
    print(np.array2string(arr.std(0), precision=1, separator=", "))


if __name__ == "__main__":
    main()
