"""Wall time of one Patch-LFW run in one process against the same run on a local Dask cluster.

    python benchmarks/distributed_speedup.py --dataset runs/bench/patch-lfw-dlib-150 \
        --method corrrise --pairs 200 --workers 2 --out runs/dist-speedup

Back to back, on the same pairs: (1) one process, one torch thread (``--executor local``), (2)
``--workers N`` single-thread Dask worker processes on 127.0.0.1 (cluster start included in its
wall time, and also printed apart). Both runs start from the same cached embeddings (computed
once before either is timed), so the figures are the per-pair stage only. Then:

* the speed-up (1) / (2) and the rows' identity (every stored outcome, bit for bit);
* the pure forward time of the model in this process (``model.embed`` of the data set's crops,
  one thread, the explainer's batch size) and, against it, the per-pair time each configuration
  spent per forward: the overhead of a worker over the bare forward.

Run it on an otherwise idle machine: the two configurations compete for the same cores.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import time
from pathlib import Path

import numpy as np


def pure_forward_s(model, crops: np.ndarray, batch: int, repeat: int = 3) -> float:
    """Median seconds per image of ``model.embed`` (no gradient) over ``crops`` in batches of ``batch``."""
    model.embed(crops[:batch], batch_size=batch)  # warm-up (frozen trace)
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        model.embed(crops, batch_size=batch)
        times.append((time.perf_counter() - t) / len(crops))
    return statistics.median(times)


def outcomes(out: Path, key: str) -> list[dict]:
    from xaiface.bench import ResultStore

    with ResultStore(out / "results.sqlite") as s:
        return [r.outcome() for r in s.results(key)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--dataset", required=True, help="a Patch-LFW folder")
    ap.add_argument("--method", default="corrrise")
    ap.add_argument("--pairs", type=int, default=200)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", required=True, help="scratch folder (emptied first)")
    ap.add_argument("--embeddings", default=None, help="an embeddings-*.npz of this data set to reuse (else computed)")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(1)
    from xaiface.bench import PatchLFW, run_patch_lfw
    from xaiface.explain import explainer_info
    from xaiface.models import get_model

    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    a, b = out / "one-process", out / f"dask-{args.workers}-workers"
    a.mkdir(parents=True)
    b.mkdir(parents=True)
    if args.embeddings:
        for d in (a, b):
            shutil.copy(args.embeddings, d / Path(args.embeddings).name)
    else:
        run_patch_lfw(a, methods=[], dataset=args.dataset, progress=False, write=False)
        for f in a.glob("embeddings-*.npz"):
            shutil.copy(f, b / f.name)

    t = time.perf_counter()
    s1 = run_patch_lfw(a, methods=[args.method], dataset=args.dataset, n_pairs=args.pairs, progress=True, write=False,
                       executor="local", threads=1)
    wall1 = time.perf_counter() - t

    from xaiface.executor import get_executor

    t = time.perf_counter()
    ex = get_executor("dask", workers=args.workers, threads=1)
    start = time.perf_counter() - t
    try:
        s2 = run_patch_lfw(b, methods=[args.method], dataset=args.dataset, n_pairs=args.pairs, progress=True,
                           write=False, executor=ex, threads=1)
    finally:
        ex.close()
    wall2 = time.perf_counter() - t

    key = s1["run_keys"][args.method]
    assert key == s2["run_keys"][args.method]
    o1, o2 = outcomes(a, key), outcomes(b, key)
    identical = o1 == o2

    ds = PatchLFW(args.dataset)
    crops = ds.fold(ds.folds[0]).arrays["patched"][:256]
    model = get_model("dlib-resnet").eval()
    batch = int(getattr(explainer_info(args.method).cls, "batch_size", 64) or 64)
    fwd = pure_forward_s(model, crops, batch=min(batch, 64))
    n_fwd = float(np.mean([r["n_forward"] for r in o1]))
    pure_pair = n_fwd * fwd
    per_pair_1 = float(np.mean([r.t_map + r.t_score for r in _results(a, key)]))
    per_pair_2 = float(np.mean([r.t_map + r.t_score for r in _results(b, key)]))
    report = {
        "method": args.method, "pairs": args.pairs, "workers": args.workers, "dataset": str(args.dataset),
        "wall_one_process_s": round(wall1, 1), "wall_dask_s": round(wall2, 1), "dask_cluster_start_s": round(start, 1),
        "speedup": round(wall1 / wall2, 3), "rows_identical": identical,
        "pure_forward_ms_per_image": round(1000 * fwd, 3), "forwards_per_pair": n_fwd,
        "pure_forward_s_per_pair": round(pure_pair, 3),
        "one_process_s_per_pair": round(per_pair_1, 3), "dask_worker_s_per_pair": round(per_pair_2, 3),
        "one_process_over_pure": round(per_pair_1 / pure_pair, 3), "dask_worker_over_pure": round(per_pair_2 / pure_pair, 3),
        "wall_one_process_over_pure": round(wall1 / (args.pairs * pure_pair), 3),
        "wall_dask_x_workers_over_pure": round(wall2 * args.workers / (args.pairs * pure_pair), 3),
    }
    print(json.dumps(report, indent=2))
    (out / "report.json").write_text(json.dumps(report, indent=2))


def _results(out: Path, key: str):
    from xaiface.bench import ResultStore

    with ResultStore(out / "results.sqlite") as s:
        return s.results(key)


if __name__ == "__main__":
    main()
