"""The dfv reconstructor's pictures and cost: which facial region each deep feature channel stands for.

    python benchmarks/dfv_gallery.py --weights runs/dfv/dlib-reconstructor.pt --faces 40 --out docs/results/dfv

On held-out faces (the first images of Patch-LFW's 600-pair subset: people the reconstructor was
never trained on), aligned by the one pipeline:

* ``reconstructions.png``: inputs, their reconstructions from the last maps, and the mean-feature
  reconstruction (what every channel region is relative to).
* each channel's region (:mod:`xaiface.explain.dfv`, step 3) on every face, scaled to unit sum and
  averaged over the faces; a channel's **part** is the facial part where its mean region is most
  concentrated: the mass inside a disk around the part's mean landmark (eye centres, nose tip,
  mouth centre; radius 1/10 of the crop) over the disk's share of the crop (``enrichment``; 1 =
  no preference); below 1.5 the channel is ``diffuse``. ``channel-parts.json``: every channel's
  enrichments and part; ``regions-grid.png``: all channels' mean regions; ``regions-by-part.png``:
  the most concentrated channels of each part, on the mean face.
* ``cost.json``: multiply-accumulates of the decoder and of the face model for one image (conv and
  linear layers, counted by forward hooks), the decoder passes of one explained image, and the wall
  time of one ``dfv`` explanation against one ``simcam`` explanation (same pair, same run).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

PARTS = ("image-left eye", "image-right eye", "nose", "mouth")


def macs(module: nn.Module, x: torch.Tensor, run=None) -> int:
    """Multiply-accumulates of conv and linear layers in one forward of ``x`` (batch 1), by hooks
    (``run(x)`` instead of ``module(x)``: an eager path where the module's own forward is traced)."""
    total = [0]

    def hook(m, inp, out):
        if isinstance(m, nn.Conv2d):
            total[0] += int(out.numel()) * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
        elif isinstance(m, nn.Linear):
            total[0] += int(out.numel()) * m.in_features

    hs = [m.register_forward_hook(hook) for m in module.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        (run or module)(x)
    for h in hs:
        h.remove()
    return total[0]


def main() -> None:
    from xaiface.explain import Verifier, get_explainer
    from xaiface.explain.dfv import channel_regions, load_reconstructor
    from xaiface.explain.train_dfv import heldout_photos
    from xaiface.models import get_model
    from xaiface.models.base import crops_to_tensor
    from xaiface.pipeline import FacePipeline

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--weights", required=True)
    ap.add_argument("--model", default="dlib-resnet")
    ap.add_argument("--faces", type=int, default=40)
    ap.add_argument("--data", default=None)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model = get_model(args.model)
    net, meta = load_reconstructor(args.weights, model)
    pipe = FacePipeline(model=model)
    layer = model.layer_name("last")
    faces = []
    for p in heldout_photos(args.data):
        try:
            faces.append(pipe.align(p))
        except Exception as e:  # noqa: BLE001 - a held-out photo without a face is skipped and said
            print(f"skipped {p}: {e}")
        if len(faces) == args.faces:
            break
    crops = np.stack([f.image for f in faces])
    x = crops_to_tensor(crops)
    with torch.no_grad():
        _, got = model.forward_with_layers(x, [layer])
        maps = got[layer]
        rec = net(maps)
        mean_rec = net(net.mean_maps[None])[0]
    s = model.input_size
    # landmarks in crop coordinates: matrix @ [x, y, 1]
    lm = np.stack([(f.matrix[:, :2] @ f.face.landmarks.T).T + f.matrix[:, 2] for f in faces])  # (N, 5, 2)
    centres = {"image-left eye": lm[:, 0].mean(0), "image-right eye": lm[:, 1].mean(0), "nose": lm[:, 2].mean(0),
               "mouth": lm[:, 3:5].mean(axis=(0, 1))}
    yy, xx = np.mgrid[0:s, 0:s] + 0.5
    radius = s / 10
    disks = {k: (xx - c[0]) ** 2 + (yy - c[1]) ** 2 <= radius ** 2 for k, c in centres.items()}

    # channel regions of every face, unit sum, averaged
    t0 = time.perf_counter()
    acc = torch.zeros(net.channels, s, s, dtype=torch.float64)
    for i in range(len(faces)):
        r = channel_regions(net, maps[i]).double()
        acc += r / r.flatten(1).sum(1).clamp_min(1e-30)[:, None, None]
    regions_s = time.perf_counter() - t0
    mean_regions = (acc / len(faces)).numpy()
    enrich = {k: mean_regions[:, d].sum(axis=1) / d.mean() for k, d in disks.items()}
    parts = []
    for c in range(net.channels):
        best = max(PARTS, key=lambda k: enrich[k][c])
        parts.append(best if enrich[best][c] >= 1.5 else "diffuse")
    counts = {k: parts.count(k) for k in (*PARTS, "diffuse")}
    (out / "channel-parts.json").write_text(json.dumps({
        "model": model.spec.name, "weights_sha256": meta["sha256"], "faces": len(faces), "disk_radius_px": radius,
        "part_centres_px": {k: [round(float(v), 1) for v in c] for k, c in centres.items()}, "threshold": 1.5,
        "counts": counts, "channels": [{"channel": c, "part": parts[c], **{k: round(float(enrich[k][c]), 3) for k in PARTS}}
                                       for c in range(net.channels)]}, indent=1))
    print("channel parts:", counts, f"(regions of {len(faces)} faces in {regions_s:.1f} s)")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    mean_face = crops.mean(0) / 255.0
    # reconstructions
    n = min(8, len(faces))
    fig, ax = plt.subplots(3, n, figsize=(1.6 * n, 5.2))
    for i in range(n):
        ax[0, i].imshow(crops[i])
        ax[1, i].imshow(rec[i].permute(1, 2, 0).numpy())
        ax[2, i].imshow(mean_rec.permute(1, 2, 0).numpy())
        for r in range(3):
            ax[r, i].axis("off")
    for r, t in enumerate(("input (held out)", "reconstruction from the 256x2x2 maps", "mean-feature reconstruction")):
        ax[r, 0].set_title(t, fontsize=8, loc="left")
    fig.tight_layout()
    fig.savefig(out / "reconstructions.png", dpi=110)
    plt.close(fig)
    # grid of every channel
    side = int(np.ceil(np.sqrt(net.channels)))
    fig, ax = plt.subplots(side, side, figsize=(side * 0.9, side * 0.95))
    colours = {"image-left eye": "tab:blue", "image-right eye": "tab:cyan", "nose": "tab:orange", "mouth": "tab:red", "diffuse": "grey"}
    for c, a in enumerate(ax.flat):
        a.axis("off")
        if c < net.channels:
            a.imshow(mean_regions[c], cmap="magma")
            a.set_title(f"{c}", fontsize=5, color=colours[parts[c]], pad=1)
    fig.suptitle(f"dfv channel regions, mean over {len(faces)} held-out faces (title colour: part; "
                 + ", ".join(f"{k} {v}" for k, v in counts.items()) + ")", fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "regions-grid.png", dpi=60)
    plt.close(fig)
    # the most concentrated channels of each part
    k = 6
    fig, ax = plt.subplots(len(PARTS), k, figsize=(1.7 * k, 1.9 * len(PARTS)))
    for r, part in enumerate(PARTS):
        order = np.argsort(-enrich[part])[:k]
        for j, c in enumerate(order):
            m = mean_regions[c] / mean_regions[c].max()
            ax[r, j].imshow(mean_face)
            ax[r, j].imshow(m, cmap="magma", alpha=0.65)
            ax[r, j].add_patch(plt.Circle(centres[part], radius, fill=False, color="white", lw=0.6))
            ax[r, j].set_title(f"ch {c}: x{enrich[part][c]:.1f}", fontsize=7)
            ax[r, j].axis("off")
        ax[r, 0].text(-10, s / 2, part, rotation=90, va="center", ha="right", fontsize=9)
    fig.suptitle("the channels whose region is most concentrated on each part (enrichment over the disk's area share)", fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "regions-by-part.png", dpi=110)
    plt.close(fig)

    # cost
    v = Verifier(model)
    dfv = get_explainer("dfv", v, weights=args.weights)
    sim = get_explainer("simcam", v)
    pair = (crops[0], crops[1])
    dfv.explain(pair, images=(0,))
    sim.explain(pair, images=(0,))
    t_dfv = min(_timed(lambda: dfv.explain(pair, images=(0,))) for _ in range(3))
    t_sim = min(_timed(lambda: sim.explain(pair, images=(0,))) for _ in range(3))
    m_dec = macs(net, maps[:1])
    m_model = macs(model, x[:1], run=lambda t: model.forward_with_layers(t, [layer]))
    passes = dfv.explain(pair, images=(0,)).extra["decoder_passes"]
    cost = {"decoder_macs": m_dec, "model_macs": m_model, "decoder_over_model": m_dec / m_model,
            "decoder_passes_one_image": passes, "decoder_forward_equivalents_one_image": passes * m_dec / m_model,
            "fe_one_image": 4 + passes * m_dec / m_model,
            "seconds_dfv_one_image": t_dfv, "seconds_simcam_one_image": t_sim, "torch_threads": torch.get_num_threads()}
    (out / "cost.json").write_text(json.dumps(cost, indent=1))
    print(json.dumps(cost, indent=1))


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


if __name__ == "__main__":
    main()
