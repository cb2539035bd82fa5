"""Embedding throughput: the PyTorch port of dlib's ResNet against dlib's compute_face_descriptor.

Same aligned chips (dlib's own get_face_chip of real LFW photos), one run, same threads.

    python benchmarks/embed_throughput.py [--n 64] [--threads 2]

Prints images/s for dlib (one chip a call, and dlib's own batched call), the port at batch 1
and batch 32, ratios to dlib's one-chip rate, forward+backward time per image, and the largest
descriptor difference on these chips.
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from common import lfw_dlib_chips, median, time_it
from xaiface.models import get_model
from xaiface.models.dlib_resnet import default_weights_path


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=64, help="number of chips (a multiple of 32)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import dlib

    chips = lfw_dlib_chips(args.n)
    n = len(chips)
    fr = dlib.face_recognition_model_v1(str(default_weights_path()))
    model = get_model("dlib-resnet")
    x = torch.from_numpy(chips).permute(0, 3, 1, 2).float().contiguous()

    def dlib_one():
        return [fr.compute_face_descriptor(c) for c in chips]

    def dlib_batch():
        return fr.compute_face_descriptor(list(chips))

    @torch.inference_mode()
    def port(bs: int):
        def run():
            for i in range(0, n, bs):
                model(x[i : i + bs])
        return run

    def fwd_bwd(bs: int):
        def run():
            for i in range(0, n, bs):
                xi = x[i : i + bs].clone().requires_grad_(True)
                e = model(xi)
                e.norm(dim=1).sum().backward()
        return run

    res = {}
    res["dlib_one_chip_per_call"] = n / median(time_it(dlib_one, args.repeat))
    res["dlib_batched_call"] = n / median(time_it(dlib_batch, args.repeat))
    res["port_batch1"] = n / median(time_it(port(1), args.repeat))
    res["port_batch32"] = n / median(time_it(port(32), args.repeat))
    fb1 = median(time_it(fwd_bwd(1), args.repeat)) / n
    fb32 = median(time_it(fwd_bwd(32), args.repeat)) / n
    ref = np.stack([np.array(d) for d in dlib_one()])
    ours = model.embed(chips, normalize=False)
    base = res["dlib_one_chip_per_call"]
    print(f"{n} real LFW chips (150x150), {torch.get_num_threads()} torch threads\n")
    print("| what | images/s | x dlib (one chip a call) |")
    print("|---|---:|---:|")
    for k, v in res.items():
        print(f"| {k} | {v:.1f} | {v / base:.2f} |")
    print(f"\nforward+backward per image: {1000 * fb1:.1f} ms at batch 1, {1000 * fb32:.1f} ms at batch 32")
    print(f"largest |port - dlib| over the {n} descriptors: {np.abs(ref - ours).max():.2e}")
    if args.json:
        res.update(fwd_bwd_ms_batch1=1000 * fb1, fwd_bwd_ms_batch32=1000 * fb32, max_abs_diff=float(np.abs(ref - ours).max()), n=n)
        with open(args.json, "w") as f:
            json.dump(res, f, indent=2)


if __name__ == "__main__":
    main()
