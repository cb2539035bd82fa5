"""Forward and forward+backward throughput of every registered model with weights, batch 1 and 32.

For each model (``dlib-resnet``, ``faceres``, ``mobileface``; the TF.js ones also unfused, to show
what the reader's pattern fusion buys), on random 0..255 crops at the model's input size:

* forward: ``model(x)`` without autograd (the frozen TorchScript path where the model has one,
  as ``embed`` runs it);
* forward+backward: ``model(x).sum().backward()`` with respect to the pixels (what a gradient
  explainer pays per pass).

Rounds are interleaved across models (model A, B, C, A, B, C...) so that load from other jobs on
a shared machine hits every model alike; the median over ``--repeat`` rounds is reported, in
images per second and milliseconds per image. The dlib ResNet is the same-run baseline.

    python benchmarks/model_throughput.py [--repeat 5] [--threads 1] [--json out.json]
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from xaiface.models import get_model, list_models, model_spec


def _time(fn, n: int) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) / n


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batches", default="1,32")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    batches = [int(b) for b in args.batches.split(",")]
    models: dict[str, torch.nn.Module] = {}
    for name in list_models():
        if not model_spec(name).weights_required:
            models[name] = get_model(name)
    from xaiface.models.tfjs_model import TfjsFaceModel, build_tfjs_model
    from xaiface.models.tfjs_reader import TfjsGraphModule, read_tfjs
    from xaiface.models.tfjs_model import packaged_files
    from xaiface.models.catalog import TFJS_MODELS

    for name in [n for n in models if isinstance(models[n], TfjsFaceModel)]:
        model, weights = read_tfjs(packaged_files(name)[0])
        graph = TfjsGraphModule(model, weights, [TFJS_MODELS[name][1]], fuse=False).eval()
        unfused = TfjsFaceModel(build_tfjs_model(name).spec, graph).eval()
        models[f"{name} (unfused)"] = unfused
    rates: dict[str, dict[str, list[float]]] = {n: {} for n in models}
    inputs = {n: {b: torch.rand(b, 3, m.input_size, m.input_size) * 255 for b in batches} for n, m in models.items()}
    for n, m in models.items():  # warm-up: traces, allocations
        with torch.no_grad():
            m(inputs[n][1])
        x = inputs[n][1].clone().requires_grad_(True)
        m(x).sum().backward()
    for r in range(args.repeat):
        for n, m in models.items():
            for b in batches:
                x = inputs[n][b]
                with torch.no_grad():
                    rates[n].setdefault(f"forward b{b}", []).append(_time(lambda: m(x), b))
                xg = x.clone().requires_grad_(True)
                rates[n].setdefault(f"forward+backward b{b}", []).append(_time(lambda: m(xg).sum().backward(), b))
        print(f"round {r + 1}/{args.repeat} done", flush=True)
    report = {"threads": args.threads, "repeat": args.repeat, "unit": "ms per image (median over rounds)", "models": {}}
    keys = [f"{k} b{b}" for k in ("forward", "forward+backward") for b in batches]
    print(f"\n{'model':<22}" + "".join(f"{k:>22}" for k in keys))
    base = {k: statistics.median(rates["dlib-resnet"][k]) for k in keys}
    for n in models:
        med = {k: statistics.median(rates[n][k]) for k in keys}
        report["models"][n] = {k: {"ms_per_image": round(v * 1000, 2), "images_per_s": round(1 / v, 1),
                                   "vs_dlib_resnet": round(v / base[k], 2)} for k, v in med.items()}
        print(f"{n:<22}" + "".join(f"{med[k] * 1000:>14.1f} ms ({med[k] / base[k]:.2f}x)" for k in keys))
    print("\n(x): time per image relative to dlib-resnet in the same run")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
