"""Train the ``dfv`` face reconstructor (:mod:`xaiface.explain.dfv`) on faces never used for evaluation.

    python -m xaiface.explain.train_dfv --model dlib-resnet --work runs/dfv/dlib --out runs/dfv/dlib-reconstructor.pt \\
        --minutes 45

Steps, each resumable in ``--work``:

1. ``faces``: the training faces are LFW people who appear in no View 2 pair (so in no Patch-LFW
   pair either), all of UTKFace and VIP_attribute; the held-out faces are the first image of the
   pairs of Patch-LFW's 600-pair subset (people never trained on). Every photo goes through the
   one batch face stage (dlib-hog, centre face; LFW photos fall back to the run's median box,
   the already-cropped UTKFace / VIP photos to the whole photo), is aligned in the model's
   geometry, and its ``"last"`` maps are computed by the frozen model. Saved in chunks of 512
   faces (maps float32, crops area-averaged to the decoder's resolution, uint8).
2. ``train``: Adam (lr ``--lr`` with cosine decay to 0 over ``--steps``), batch 32, L1 loss, seed 0;
   a checkpoint every 200 steps (model, optimiser, step, random state), so a stopped run goes on
   where it stopped. ``--minutes`` caps the wall time of this call (the run then stops at a
   checkpoint; call again to go on).
3. ``evaluate``: on the held-out faces: PSNR and SSIM of the reconstruction (at the crop's
   resolution), and the cosine similarity between the embeddings of the input and of its
   reconstruction, beside two baselines: the input against the mean-feature reconstruction, and
   the reconstruction against the other held-out people's inputs.

The final state dict is saved with its JSON record (``<out>.json``).
"""
from __future__ import annotations

import json
import math
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import ConfigError
from ..io.hashing import file_sha256
from .dfv import Reconstructor

CHUNK = 512
BATCH = 32


def training_photos(data: Any = None) -> tuple[list[str], list[str]]:
    """``(lfw_photos, cropped_photos)``: LFW images of people in no View 2 pair; UTKFace and VIP images."""
    from ..datasets import LFW
    from ..datasets.utkface import UTKFace
    from ..datasets.vip import VIPAttribute

    lfw = LFW(data)
    in_pairs = {n for p in lfw.pairs() for n in (p.name_a, p.name_b)}
    lfw_photos = [str(q) for n in lfw.identities() if n not in in_pairs for q in lfw.images_of(n)]
    cropped = [str(it.path) for it in UTKFace(data).items()] + [str(it.path) for it in VIPAttribute(data).items()]
    return lfw_photos, cropped


def heldout_photos(data: Any = None) -> list[str]:
    """The first image of each pair of Patch-LFW's 600-pair subset (30 of each fold and class), deduplicated."""
    from ..datasets import LFW
    from ..datasets.lfw import select_fold_pairs

    pairs = select_fold_pairs(LFW(data).pairs(), None, 60)
    return list(dict.fromkeys(str(p.path_a) for p in pairs))


def _maps(model: Any, crops: np.ndarray, batch: int = 64) -> np.ndarray:
    from ..models.base import crops_to_tensor

    layer = model.layer_name("last")
    out = []
    with torch.no_grad():
        for i in range(0, len(crops), batch):
            _, m = model.forward_with_layers(crops_to_tensor(crops[i:i + batch]), [layer])
            out.append(m[layer].float().numpy())
    return np.concatenate(out)


def _small(crops: np.ndarray, side: int) -> np.ndarray:
    t = torch.from_numpy(crops).permute(0, 3, 1, 2).float()
    return F.interpolate(t, size=(side, side), mode="area").round().clamp(0, 255).byte().numpy()


def prepare(model: Any, photos: Sequence[str], work: Path, name: str, fallback: str, side: int,
            progress: bool = True) -> list[Path]:
    """Chunks ``<name>-NNN.npz`` of maps and small crops (resumable: finished chunks are kept)."""
    from ..pipeline.batch import align_faces, locate_faces

    work.mkdir(parents=True, exist_ok=True)
    files = []
    for k in range(0, len(photos), CHUNK):
        f = work / f"{name}-{k // CHUNK:03d}.npz"
        files.append(f)
        if f.is_file():
            continue
        chunk = list(photos[k:k + CHUNK])
        batch = locate_faces(chunk, fallback=fallback, workers=0, progress=progress)
        crops = align_faces(batch.faces, model.spec.preprocessing.geometry, progress=progress)
        paths = [p for p in chunk if p in crops]
        arr = np.stack([crops[p] for p in paths])
        tmp = f.with_suffix(".tmp.npz")
        np.savez(tmp, maps=_maps(model, arr), small=_small(arr, side), paths=np.array(paths),
                 errors=np.array([f"{p}: {m}" for p, m in batch.errors.items()]))
        tmp.replace(f)
    return files


def _load(files: Sequence[Path]) -> tuple[np.ndarray, np.ndarray, list[str]]:
    maps, small, paths = [], [], []
    for f in files:
        with np.load(f, allow_pickle=False) as z:
            maps.append(z["maps"])
            small.append(z["small"])
            paths += [str(p) for p in z["paths"]]
    return np.concatenate(maps), np.concatenate(small), paths


def train(model: Any, work: Path, *, steps: int = 6000, lr: float = 2e-3, seed: int = 0, minutes: float | None = None,
          every: int = 200, progress: bool = True) -> dict[str, Any]:
    """Train (or go on training) the reconstructor from the ``train-*.npz`` chunks; returns the run's state.

    A checkpoint is written every ``every`` steps; with ``minutes``, the call stops at the first
    checkpoint after that long (``state["done"]`` False), and the next call goes on from it.
    """
    from tqdm import tqdm

    files = sorted(f for f in work.glob("train-*.npz") if not f.name.endswith(".tmp.npz"))
    if not files:
        raise ConfigError(f"{work}: no prepared training faces (train-*.npz)")
    maps, small, _ = _load(files)
    x = torch.from_numpy(maps)
    y = torch.from_numpy(small)
    torch.manual_seed(seed)  # the decoder's initial weights come from the seed
    net = Reconstructor(x.shape[1], x.shape[2:], model.input_size)
    net.mean_maps.copy_(x.mean(dim=0))
    net.scale.copy_(x.std(dim=(0, 2, 3)).clamp_min(1e-6)[:, None, None])
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 0.5 * (1 + math.cos(math.pi * min(k, steps) / steps)))
    gen = torch.Generator().manual_seed(seed)
    ckpt = work / "checkpoint.pt"
    state: dict[str, Any] = {"step": 0, "losses": [], "seconds": 0.0}
    if ckpt.is_file():
        c = torch.load(ckpt, map_location="cpu", weights_only=True)
        net.load_state_dict(c["model"])
        opt.load_state_dict(c["opt"])
        sched.load_state_dict(c["sched"])
        gen.set_state(c["gen"])
        state = {"step": int(c["step"]), "losses": list(c["losses"]), "seconds": float(c["seconds"])}

    def save() -> None:
        tmp = ckpt.with_suffix(".tmp")
        torch.save({"model": net.state_dict(), "opt": opt.state_dict(), "sched": sched.state_dict(), "gen": gen.get_state(),
                    "step": state["step"], "losses": state["losses"], "seconds": state["seconds"]}, tmp)
        tmp.replace(ckpt)

    t0 = time.perf_counter()
    seconds0 = state["seconds"]
    net.train()
    bar = tqdm(total=steps, initial=state["step"], desc="train reconstructor", disable=not progress)
    window: list[float] = []
    while state["step"] < steps:
        idx = torch.randint(0, x.shape[0], (BATCH,), generator=gen)
        target = y[idx].float() / 255.0
        loss = (net.decode(x[idx]) - target).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        state["step"] += 1
        window.append(float(loss.detach()))
        bar.update(1)
        if state["step"] % every == 0 or state["step"] == steps:
            state["losses"].append([int(state["step"]), float(sum(window) / len(window))])
            window = []
            state["seconds"] = seconds0 + time.perf_counter() - t0
            bar.set_postfix(l1=f"{state['losses'][-1][1]:.4f}")
            save()
            if minutes is not None and time.perf_counter() - t0 > 60 * minutes:
                break
    bar.close()
    state["done"] = state["step"] >= steps
    state["net"] = net.eval()
    state["faces"] = int(x.shape[0])
    return state


def ssim(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Mean SSIM (Wang et al. 2004: 11 x 11 Gaussian window, sigma 1.5, K1 0.01, K2 0.03) of ``(B, 3, S, S)`` in [0, 1]."""
    from .base import gaussian_kernel2d

    k = gaussian_kernel2d(11, 1.5)[None, None].repeat(3, 1, 1, 1).to(a.dtype)
    mu_a, mu_b = F.conv2d(a, k, groups=3), F.conv2d(b, k, groups=3)
    saa = F.conv2d(a * a, k, groups=3) - mu_a ** 2
    sbb = F.conv2d(b * b, k, groups=3) - mu_b ** 2
    sab = F.conv2d(a * b, k, groups=3) - mu_a * mu_b
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    m = ((2 * mu_a * mu_b + c1) * (2 * sab + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (saa + sbb + c2))
    return m.mean(dim=(1, 2, 3))


def evaluate(model: Any, net: Reconstructor, photos: Sequence[str], progress: bool = True) -> dict[str, Any]:
    """Reconstruction quality and identity preservation on held-out faces (see the module docstring)."""
    from ..models.base import crops_to_tensor
    from ..pipeline.batch import align_faces, locate_faces

    batch = locate_faces(photos, workers=0, progress=progress)
    crops_d = align_faces(batch.faces, model.spec.preprocessing.geometry, progress=progress)
    crops = np.stack([crops_d[p] for p in photos if p in crops_d])
    maps = torch.from_numpy(_maps(model, crops))
    with torch.no_grad():
        rec = torch.cat([net(maps[i:i + 64]) for i in range(0, len(maps), 64)])
        mean_rec = net(net.mean_maps[None])
    target = crops_to_tensor(crops) / 255.0
    mse = ((rec - target) ** 2).mean(dim=(1, 2, 3))
    psnr = 10 * torch.log10(1.0 / mse.clamp_min(1e-12))
    mse_mean = ((mean_rec - target) ** 2).mean(dim=(1, 2, 3))
    emb_in = torch.from_numpy(model.embed(crops))
    emb_rec = torch.from_numpy(model.embed((rec * 255).round().permute(0, 2, 3, 1).numpy().astype(np.uint8)))
    emb_mean = torch.from_numpy(model.embed((mean_rec * 255).round().permute(0, 2, 3, 1).numpy().astype(np.uint8)))
    cos = (emb_in * emb_rec).sum(1)
    cos_mean = (emb_in @ emb_mean.T)[:, 0]
    people = [Path(p).parent.name for p in photos if p in crops_d]
    same = torch.tensor([[a == b for b in people] for a in people])
    cross = emb_rec @ emb_in.T
    other = cross[~same]
    thr = model.spec.threshold("eer")
    return {"faces": len(crops), "psnr_db": float(psnr.mean()), "psnr_db_mean_face": float((10 * torch.log10(1 / mse_mean)).mean()),
            "ssim": float(ssim(rec, target).mean()), "ssim_mean_face": float(ssim(mean_rec.expand_as(target), target).mean()),
            "cosine_input_reconstruction": float(cos.mean()), "cosine_input_reconstruction_median": float(cos.median()),
            "cosine_input_mean_face": float(cos_mean.mean()),
            "cosine_reconstruction_other_people": float(other.mean()),
            "reconstructions_matching_their_input_at_eer": float((cos >= thr).float().mean()),
            "reconstructions_matching_another_person_at_eer": float((other >= thr).float().mean()),
            "eer_threshold": float(thr)}


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m xaiface.explain.train_dfv --model dlib-resnet --work DIR --out reconstructor.pt``"""
    import argparse

    from ..models import get_model

    ap = argparse.ArgumentParser(description="Train the dfv face reconstructor on faces never used for evaluation.")
    ap.add_argument("--model", default="dlib-resnet")
    ap.add_argument("--work", required=True, help="folder of the prepared faces and the checkpoint (resumable)")
    ap.add_argument("--out", required=True, help="the reconstructor's .pt file (its .json record beside it)")
    ap.add_argument("--steps", type=int, default=6000)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--minutes", type=float, default=None, help="stop this call after about this long (resume later)")
    ap.add_argument("--limit", type=int, default=None, help="use only the first N training photos (tests)")
    ap.add_argument("--heldout", type=int, default=None, help="evaluate on the first N held-out photos")
    ap.add_argument("--data", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    model = get_model(args.model)
    for p in model.parameters():
        p.requires_grad_(False)
    work = Path(args.work)
    side = Reconstructor(1, (1, 1), model.input_size).work_size
    lfw_photos, cropped = training_photos(args.data)
    if args.limit:
        lfw_photos, cropped = lfw_photos[: args.limit // 2], cropped[: args.limit - args.limit // 2]
    t0 = time.perf_counter()
    prepare(model, lfw_photos, work, "train-lfw", "median", side)
    prepare(model, cropped, work, "train-cropped", "image", side)
    # one glob for both sources: rename-free, the chunks of both are named train-*
    prep_s = time.perf_counter() - t0
    state = train(model, work, steps=args.steps, lr=args.lr, seed=args.seed, minutes=args.minutes)
    if not state["done"]:
        print(json.dumps({"stopped_at_step": state["step"], "of": args.steps, "train_seconds": round(state["seconds"], 1),
                          "resume": "run the same command again"}))
        return
    net = state["net"]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), out)
    held = heldout_photos(args.data)[: args.heldout]
    ev = evaluate(model, net, held)
    meta = {"model": model.spec.name, "model_weights_sha256": model.weights_sha256, "layer": model.layer_name("last"),
            "channels": net.channels, "places": list(net.places), "crop_size": net.crop_size, "decoder_side": net.work_size,
            "training_faces": state["faces"], "sources": {"lfw_people_in_no_view2_pair": len(lfw_photos),
                                                          "utkface_and_vip": len(cropped)},
            "loss": "L1 of RGB in [0, 1] at the decoder's resolution", "steps": args.steps, "batch": BATCH, "lr": args.lr,
            "schedule": "cosine to 0", "seed": args.seed, "train_seconds": round(state["seconds"], 1),
            "prepare_seconds_this_call": round(prep_s, 1), "torch_threads": torch.get_num_threads(),
            "l1_curve": state["losses"], "heldout": ev, "sha256": file_sha256(out)}
    out.with_suffix(".json").write_text(json.dumps(meta, indent=1))
    print(json.dumps({k: v for k, v in meta.items() if k != "l1_curve"}, indent=1))


if __name__ == "__main__":
    main()
