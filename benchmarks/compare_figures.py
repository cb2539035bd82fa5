"""Compare the figures of two runs of benchmarks/figures_before_after.sh: `python compare_figures.py BEFORE AFTER` prints identical or the differences."""
import json, sys
import numpy as np
B, A = sys.argv[1], sys.argv[2]
IGN = {"seconds", "timing_s", "out", "report_dir", "path", "created", "wall_s", "elapsed_s", "time", "duration_s", "t_map", "t_score", "cost"}
def walk(x, y, path, diffs):
    if isinstance(x, dict) and isinstance(y, dict):
        for k in set(x) | set(y):
            if k in IGN or "time" in k or "second" in k or k.endswith("_s"): continue
            if k not in x or k not in y: diffs.append(f"{path}.{k}: only in {'after' if k in y else 'before'}"); continue
            walk(x[k], y[k], f"{path}.{k}", diffs)
    elif isinstance(x, list) and isinstance(y, list):
        if len(x) != len(y): diffs.append(f"{path}: length {len(x)} vs {len(y)}"); return
        for i, (a, b) in enumerate(zip(x, y)): walk(a, b, f"{path}[{i}]", diffs)
    elif isinstance(x, str) and isinstance(y, str) and ("/work/" in x or "/tmp/" in x):
        return
    elif x != y:
        diffs.append(f"{path}: {x!r} -> {y!r}")
def cmp_json(rel):
    d = []; walk(json.load(open(f"{B}/{rel}")), json.load(open(f"{A}/{rel}")), rel, d); return d
def cmp_npz(rel):
    b, a = np.load(f"{B}/{rel}"), np.load(f"{A}/{rel}"); d = []
    for k in set(b.files) | set(a.files):
        if k not in b.files or k not in a.files: d.append(f"{rel}:{k} only in one"); continue
        if not np.array_equal(b[k], a[k]): d.append(f"{rel}:{k} max|diff| {np.abs(b[k].astype(float) - a[k].astype(float)).max():.3g}")
    return d
out = {}
for rel in ("lfw/report.json", "bench/100pairs/summary.json", "jpeg50/summary.json", "soft/report.json"):
    out[rel] = cmp_json(rel)
for rel in ("lfw/scores.npz", "bench/table1-scores.npz"):
    out[rel] = cmp_npz(rel)
for k, v in out.items():
    print(f"{k}: {'identical' if not v else str(len(v)) + ' differences'}")
    for line in v[:15]: print("   ", line)
