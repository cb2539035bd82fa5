"""The README's Patch-LFW tables from a benchmark folder's summaries, and paired comparisons.

    python benchmarks/patch_lfw_tables.py runs/bench/all/summary.json runs/bench/1200pairs/summary.json
    python benchmarks/patch_lfw_tables.py --compare xssab xssab-noblur --out runs/bench --pairs 6000

The first form prints one markdown table per summary (the rows of README's tables); the second
the paired difference of two methods over the pairs both finished (bootstrap 95% intervals), the
effect of one setting, e.g. xSSAB's 5x5 Gaussian blur.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path


def _ci(c: dict | None) -> str:
    if not c:
        return "-"
    if c.get("difference") is None or c.get("ci95") is None:
        return "-"
    lo, hi = c["ci95"]
    text = f"{c['difference']:+.2f} [{lo:.2f}, {hi:.2f}]"
    return f"**{text}**" if c.get("significant") else text


def table(summary: dict) -> str:
    lines = ["| method | pairs | DPR AUC FMR | vs random | DPR AUC FNMR | vs random | deletion | insertion | pixel AUROC | "
             "pointing game | s/pair |", "|---|---:|---:|---|---:|---|---:|---:|---:|---:|---:|"]
    for m, r in summary["methods"].items():
        if "dpr" not in r:
            lines.append(f"| {m} | 0 | | | | | | | | | |")
            continue
        vr = r.get("vs_random", {})
        lines.append(f"| {m} | {r['n_pairs']} | {r['dpr']['auc_fmr']:.2f} | {_ci(vr.get('dpr_fmr'))} | "
                     f"{r['dpr']['auc_fnmr']:.2f} | {_ci(vr.get('dpr_fnmr'))} | {r['deletion']['auc_all']:.2f} | "
                     f"{r['insertion']['auc_all']:.2f} | {r['localisation']['auroc_all']:.3f} | "
                     f"{r['localisation']['pointing_all']:.3f} | {r['cost']['seconds_per_pair_mean']:.2f} |")
    return "\n".join(lines)


def compare(out: Path, a: str, b: str, n_pairs: int) -> dict:
    from xaiface.bench import ResultStore
    from xaiface.bench.protocol import DELETION_PERCENTS, DPR_PERCENTS
    from xaiface.bench.report import paired_differences
    from xaiface.bench.status import subset_pairs

    wanted = subset_pairs(n_pairs)
    with ResultStore(out / "results.sqlite") as s:
        runs = {r["method"]: r for r in s.runs() if not r["config"].get("reference_rules")}
        ra, rb = (s.results(runs[m]["run_key"], wanted) for m in (a, b))
        th = runs[a]["config"]["threshold"]
        assert th == runs[b]["config"]["threshold"]
    d = paired_differences(ra, rb, th, DPR_PERCENTS, DELETION_PERCENTS)
    return {"a": a, "b": b, "pairs": len({r.pair for r in ra} & {r.pair for r in rb}), "a_minus_b": d}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("summaries", nargs="*", help="summary.json files")
    ap.add_argument("--compare", nargs=2, metavar=("A", "B"))
    ap.add_argument("--out", type=Path, help="benchmark folder (with --compare)")
    ap.add_argument("--pairs", type=int, default=6000, help="standard subset of the comparison (default 6000)")
    args = ap.parse_args()
    for f in args.summaries:
        s = json.loads(Path(f).read_text())
        print(f"{f} ({s['selection']['n_pairs']} pairs)\n\n{table(s)}\n")
    if args.compare:
        print(json.dumps(compare(args.out, *args.compare, args.pairs), indent=2))


if __name__ == "__main__":
    main()
