"""Summaries of a Patch-LFW benchmark: numbers (JSON), a markdown report and plots.

Every AUC is in percentage-step units (trapezoid over 0..100 percent of a rate in 0..1, see
:mod:`.protocol`). Comparisons with the random baseline are paired over the pairs both methods
finished: a DPR AUC is the mean over the pairs of one error type of each pair's own area (the
trapezoid is linear), so the difference to random is a mean of per-pair differences, given with
a percentile bootstrap 95% interval over pairs (2,000 resamples, seed 0).

Every table and plot says which setting a method ran with where the name alone does not
(:func:`method_note`): ``xssab`` = the paper (5x5 Gaussian blur, sigma 5), ``xssab-noblur`` = the
authors' reference code (no blur), and the random baseline's pixel order.
"""
from __future__ import annotations

import inspect
import json
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .protocol import accuracy, curve_auc, error_rates
from ..io.files import ensure_dir, savefig_atomic, write_text_atomic
from .store import PairResult

FULL_PAIRS = 6000


def _nanmean(x: Sequence[float]) -> float | None:
    a = np.asarray([np.nan if v is None else v for v in x], dtype=np.float64)
    return None if a.size == 0 or np.isnan(a).all() else float(np.nanmean(a))


#: kept exact in the summary: a rounded threshold would decide a pair on it differently
_EXACT = frozenset({"threshold", "eer_threshold"})


def _clean(x: Any, exact: bool = False) -> Any:
    """JSON-ready copy: numpy scalars and arrays to Python, NaN to None, floats rounded to 6
    digits except the thresholds (``_EXACT``), kept exact."""
    if isinstance(x, dict):
        return {k: _clean(v, k in _EXACT) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, np.ndarray):
        return _clean(x.tolist())
    if isinstance(x, (np.floating, float)):
        return None if np.isnan(x) else (float(x) if exact else round(float(x), 6))
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    return x


def method_note(method: str, params: dict[str, Any] | None = None) -> str | None:
    """What setting a method ran with, for the tables and plots (``None``: nothing to say).

    Args:
        method: a registered explainer. params: the parameters the run gave it (default none:
            the explainer's defaults, read from its signature).
    Returns:
        for xSSAB (``xssab``, ``xssab-noblur``) ``"paper: 5x5 Gaussian blur, sigma 5"`` or
        ``"reference code: no blur"`` (the paper blurs, the authors' code does not); for another
        method with a ``blur`` parameter the blur alone; for ``random`` its pixel order and seed;
        else None.
    """
    from ..errors import ModelNotFoundError
    from ..explain import explainer_info
    from ..explain.xssab import XSSAB

    try:
        cls = explainer_info(method).cls
    except ModelNotFoundError:
        return None
    eff = {k: v.default for k, v in inspect.signature(cls.__init__).parameters.items()
           if v.default is not inspect.Parameter.empty}
    eff.update(params or {})
    if "blur" in eff:
        xssab = issubclass(cls, XSSAB)
        if not eff["blur"]:
            return f"{'reference code: ' if xssab else ''}no blur"
        size = eff["blur_size"]
        return f"{'paper: ' if xssab else ''}{size}x{size} Gaussian blur, sigma {float(eff['blur_sigma']):g}"
    if method == "random":
        if eff.get("reference"):
            return f"reference code: one permutation (seed {eff['seed']}), a prefix for matches and non-matches alike"
        return f"uniform random map (seed {eff['seed']}) through the DPR rule"
    return None


def _per_pair_area(indicator: np.ndarray, percents: Sequence[int]) -> np.ndarray:
    """``(P, T)`` 0/1 outcomes -> ``(P,)`` trapezoid areas over percents."""
    x = np.asarray(percents, dtype=np.float64)
    if indicator.shape[0] == 0:
        return np.zeros(0)
    return np.trapezoid(indicator.astype(np.float64), x, axis=1)


def _bootstrap_ci(d: np.ndarray, n: int = 2000, seed: int = 0) -> tuple[float, float] | None:
    if d.size < 2:
        return None
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, d.size, (n, d.size))].mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def _compare(mine: np.ndarray, base: np.ndarray, lower_is_better: bool) -> dict[str, Any]:
    d = mine - base
    ci = _bootstrap_ci(d)
    better = (d.mean() < 0) if lower_is_better else (d.mean() > 0)
    sig = None if ci is None else (ci[1] < 0 if lower_is_better else ci[0] > 0)
    return {"difference": float(d.mean()) if d.size else None, "ci95": ci, "beats_random": bool(better) if d.size else None,
            "significant": sig, "n_pairs": int(d.size)}


def _method_summary(rows: list[PairResult], threshold: float, dpr_p: Sequence[int], del_p: Sequence[int]) -> dict[str, Any]:
    ok = [r for r in rows if r.error is None]
    out: dict[str, Any] = {"n_pairs": len(ok), "n_failed": len(rows) - len(ok),
                           "failures": {r.pair: r.error for r in rows if r.error is not None}}
    if not ok:
        return out
    same = np.array([r.same for r in ok])
    dpr = np.stack([r.dpr for r in ok])
    fmr, fnmr = error_rates(dpr, same, threshold)
    upto95 = [i for i, p in enumerate(dpr_p) if p <= 95]
    p95 = [dpr_p[i] for i in upto95]
    match0 = np.array([r.match for r in ok])
    out["n_genuine"], out["n_impostor"] = int(same.sum()), int((~same).sum())
    out["dpr"] = {
        "percents": list(dpr_p), "fmr": fmr, "fnmr": fnmr,
        "auc_fmr": curve_auc(dpr_p, fmr) if (~same).any() else None,
        "auc_fnmr": curve_auc(dpr_p, fnmr) if same.any() else None,
        "auc_fmr_0_95": curve_auc(p95, fmr[upto95]) if (~same).any() else None,
        "auc_fnmr_0_95": curve_auc(p95, fnmr[upto95]) if same.any() else None,
        "patched_matches": int(match0.sum()),
        "restored_fraction": np.stack([r.restored for r in ok]).mean(axis=0),
    }
    dele = np.stack([r.deletion for r in ok])
    ins = np.stack([r.insertion for r in ok])
    for name, arr in (("deletion", dele), ("insertion", ins)):
        d: dict[str, Any] = {"percents": list(del_p)}
        for part, sel in (("all", np.ones_like(same)), ("genuine", same), ("impostor", ~same)):
            acc = accuracy(arr[sel], same[sel], threshold)
            d[f"accuracy_{part}"] = acc
            d[f"auc_{part}"] = curve_auc(del_p, acc) if sel.any() else None
        out[name] = d
    out["localisation"] = {
        "auroc_all": _nanmean([r.auroc for r in ok]),
        "auroc_genuine": _nanmean([r.auroc for r in ok if r.same]),
        "auroc_impostor": _nanmean([r.auroc for r in ok if not r.same]),
        "pointing_all": _nanmean([r.pointing for r in ok]),
        "pointing_genuine": _nanmean([r.pointing for r in ok if r.same]),
        "pointing_impostor": _nanmean([r.pointing for r in ok if not r.same]),
        "chance_pointing": _nanmean([r.coverage for r in ok]),
    }
    t_map = np.array([r.t_map for r in ok])
    t_score = np.array([r.t_score for r in ok])
    out["cost"] = {
        "seconds_map_mean": float(t_map.mean()), "seconds_score_mean": float(t_score.mean()),
        "seconds_per_pair_mean": float((t_map + t_score).mean()),
        "seconds_per_pair_median": float(np.median(t_map + t_score)),
        "estimated_hours_6000_pairs": float((t_map + t_score).mean() * FULL_PAIRS / 3600),
        "forwards_per_pair": float(np.mean([r.n_forward for r in ok])),
        "backwards_per_pair": float(np.mean([r.n_backward for r in ok])),
    }
    out["score_check_max_abs_diff"] = float(np.max([abs(r.map_score - r.score_patched) for r in ok]))
    return out


def _vs_random(rows: list[PairResult], base: list[PairResult], threshold: float, dpr_p: Sequence[int],
               del_p: Sequence[int]) -> dict[str, Any]:
    return paired_differences(rows, base, threshold, dpr_p, del_p)


def paired_differences(rows: list[PairResult], base: list[PairResult], threshold: float, dpr_p: Sequence[int],
                       del_p: Sequence[int]) -> dict[str, Any]:
    """Method ``rows`` against ``base`` over the pairs both finished: per-pair DPR FMR / FNMR areas,
    deletion and insertion accuracy areas and pixel AUROC, each as the mean difference with its
    bootstrap 95% interval (the summary's "vs random" columns; any two methods, e.g. xssab
    against xssab-noblur)."""
    mine = {r.pair: r for r in rows if r.error is None}
    rand = {r.pair: r for r in base if r.error is None}
    common = sorted(set(mine) & set(rand))
    if not common:
        return {}
    a, b = [mine[i] for i in common], [rand[i] for i in common]
    same = np.array([r.same for r in a])
    out: dict[str, Any] = {}
    # DPR: per-pair areas of the error indicator (impostor: match; genuine: non-match)
    for err, sel, flip in (("fmr", ~same, False), ("fnmr", same, True)):
        ia = np.stack([r.dpr for r in a])[sel] >= threshold
        ib = np.stack([r.dpr for r in b])[sel] >= threshold
        if flip:
            ia, ib = ~ia, ~ib
        out[f"dpr_{err}"] = _compare(_per_pair_area(ia, dpr_p), _per_pair_area(ib, dpr_p), lower_is_better=True)
    for name, lower in (("deletion", True), ("insertion", False)):
        ca = (np.stack([getattr(r, name) for r in a]) >= threshold) == same[:, None]
        cb = (np.stack([getattr(r, name) for r in b]) >= threshold) == same[:, None]
        out[name] = _compare(_per_pair_area(ca, del_p), _per_pair_area(cb, del_p), lower_is_better=lower)
    ra = np.array([r.auroc for r in a], dtype=np.float64)
    rb = np.array([r.auroc for r in b], dtype=np.float64)
    keep = ~(np.isnan(ra) | np.isnan(rb))
    out["auroc"] = _compare(ra[keep], rb[keep], lower_is_better=False)
    return out


def summarize(results: dict[str, list[PairResult]], t1: dict[str, Any], selection: Sequence[Any], *, dataset: Any,
              model: str, rule: str, jpeg: bool, dpr_percents: Sequence[int], deletion_percents: Sequence[int],
              run_keys: dict[str, str], params: dict[str, dict[str, Any]], reference_rules: bool = False) -> dict[str, Any]:
    """The benchmark's numbers as a JSON-ready dict (``reference_rules``: the runs used the
    reference code's scoring rules, default False; ``method_notes``: :func:`method_note` per method)."""
    th = t1["threshold"]
    methods = {m: _method_summary(rows, th, dpr_percents, deletion_percents) for m, rows in results.items()}
    if "random" in results:
        for m, rows in results.items():
            if m != "random":
                methods[m]["vs_random"] = _vs_random(rows, results["random"], th, dpr_percents, deletion_percents)
    folds = sorted({q.fold + 1 for q in selection})
    return _clean({
        "model": model,
        "dataset": {"path": str(dataset.root), "content_sha256": dataset.content_sha256, "identity": dataset.identity,
                    "complete": dataset.complete, "geometry": dataset.geometry,
                    "size": dataset.size, "patch_size": dataset.patch_size, "n_patches": dataset.params["n_patches"],
                    "seed": dataset.params["seed"], "pairs": dataset.n_pairs,
                    "mean_coverage": dataset.manifest.get("mean_coverage")},
        "table1": {k: v for k, v in t1.items() if not k.startswith("scores_")},
        "selection": {"n_pairs": len(selection), "folds": folds,
                      "n_genuine": sum(1 for q in selection if q.same), "n_impostor": sum(1 for q in selection if not q.same)},
        "protocol": {"rule": rule, "jpeg": jpeg, "reference_rules": bool(reference_rules), "dpr_percents": list(dpr_percents),
                     "deletion_percents": list(deletion_percents),
                     "auc_units": "trapezoid over percent (0..100) of a rate or accuracy in 0..1; range 0..100"},
        "run_keys": run_keys, "params": params, "methods": methods,
        "method_notes": {m: n for m in results if (n := method_note(m, params.get(m))) is not None},
    })


def _fmt(v: Any, nd: int = 2) -> str:
    return "-" if v is None else f"{v:.{nd}f}"


def _ci(c: dict[str, Any] | None) -> str:
    if not c or c.get("difference") is None:
        return "-"
    lo, hi = c["ci95"] if c.get("ci95") else (None, None)
    mark = "yes" if c["beats_random"] else "no"
    if c.get("significant"):
        mark += "*"
    return f"{c['difference']:+.2f} [{_fmt(lo)}, {_fmt(hi)}] {mark}"


def markdown(summary: dict[str, Any], command: str | None = None) -> str:
    """The summary as a markdown report."""
    t = summary["table1"]
    s = summary["selection"]
    ds = summary["dataset"]
    lines = [f"# Patch-LFW benchmark: {summary['model']}", ""]
    if command:
        lines += ["```", command, "```", ""]
    lines += [f"Data set: {ds['pairs']} pairs, {ds['geometry']} crops, {ds['n_patches']} patches of {ds['patch_size']} px "
              f"(seed {ds['seed']}, mean coverage {_fmt(ds['mean_coverage'], 3)}), sha256 `{ds['content_sha256'][:16]}`.", "",
              f"## Table 1 ({t.get('scope', 'all pairs of the data set')}; threshold: {t.get('threshold_source', 'clean EER')})", "",
              "| pairs | clean EER | EER threshold | Patch-LFW FMR | Patch-LFW FNMR |", "|---:|---:|---:|---:|---:|",
              f"| {t['n_pairs']} | {_fmt(t['clean_eer'], 4)} | {_fmt(t['threshold'], 4)} | {_fmt(t['patched_fmr'], 3)} | "
              f"{_fmt(t['patched_fnmr'], 3)} |", ""]
    meths = summary["methods"]
    if not meths:
        return "\n".join(lines)
    p = summary["protocol"]
    at = 40  # about the planted coverage: a perfect map restores everything by then, a random one ~40%
    lines += [f"## Evaluated subset: {s['n_pairs']} pairs ({s['n_genuine']} genuine, {s['n_impostor']} impostor), "
              f"folds {','.join(map(str, s['folds']))}", "",
              f"DPR rule `{p['rule']}`, JPEG re-encoding {'on' if p['jpeg'] else 'off'}"
              + (", the xSSAB reference code's rules (float step index, random prefix, seed 3)"
                 if p.get("reference_rules") else "") + f". AUC units: {p['auc_units']}.",
              *([f"Methods: {'; '.join(f'`{m}` = {n}' for m, n in summary['method_notes'].items())}."]
                if summary.get("method_notes") else []),
              "Differences to `random` are paired over the same pairs, with a bootstrap 95% interval; "
              "`*` marks an interval that excludes 0.", "",
              "### DPR (lower is better)", "",
              "| method | pairs | AUC FMR | AUC FNMR | AUC FMR (0-95) | AUC FNMR (0-95) | FMR vs random | FNMR vs random "
              f"| planted pixels restored at {at}% |",
              "|---|---:|---:|---:|---:|---:|---|---|---:|"]
    for m, r in meths.items():
        if "dpr" not in r:
            lines.append(f"| {m} | 0 | - | - | - | - | - | - | - |")
            continue
        d, vr = r["dpr"], r.get("vs_random", {})
        restored = d["restored_fraction"][p["dpr_percents"].index(at)] if at in p["dpr_percents"] else None
        lines.append(f"| {m} | {r['n_pairs']} | {_fmt(d['auc_fmr'])} | {_fmt(d['auc_fnmr'])} | {_fmt(d['auc_fmr_0_95'])} | "
                     f"{_fmt(d['auc_fnmr_0_95'])} | {_ci(vr.get('dpr_fmr'))} | {_ci(vr.get('dpr_fnmr'))} | {_fmt(restored, 3)} |")
    lines += ["", "### Deletion (lower is better) and insertion (higher is better): verification accuracy AUC", "",
              "| method | deletion all | genuine | impostor | insertion all | genuine | impostor | deletion vs random | insertion vs random |",
              "|---|---:|---:|---:|---:|---:|---:|---|---|"]
    for m, r in meths.items():
        if "deletion" not in r:
            continue
        de, ins, vr = r["deletion"], r["insertion"], r.get("vs_random", {})
        lines.append(f"| {m} | {_fmt(de['auc_all'])} | {_fmt(de['auc_genuine'])} | {_fmt(de['auc_impostor'])} | "
                     f"{_fmt(ins['auc_all'])} | {_fmt(ins['auc_genuine'])} | {_fmt(ins['auc_impostor'])} | "
                     f"{_ci(vr.get('deletion'))} | {_ci(vr.get('insertion'))} |")
    lines += ["", "### Localisation of the planted patches (higher is better; AUROC chance 0.5)", "",
              "| method | AUROC all | genuine | impostor | pointing all | genuine | impostor | pointing chance | AUROC vs random |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for m, r in meths.items():
        if "localisation" not in r:
            continue
        lo = r["localisation"]
        vr = r.get("vs_random", {}).get("auroc")
        ci = "-" if not vr or vr.get("difference") is None else f"{vr['difference']:+.3f} [{_fmt((vr['ci95'] or [None])[0], 3)}, {_fmt((vr['ci95'] or [None, None])[1], 3)}]"
        lines.append(f"| {m} | {_fmt(lo['auroc_all'], 3)} | {_fmt(lo['auroc_genuine'], 3)} | {_fmt(lo['auroc_impostor'], 3)} | "
                     f"{_fmt(lo['pointing_all'], 3)} | {_fmt(lo['pointing_genuine'], 3)} | {_fmt(lo['pointing_impostor'], 3)} | "
                     f"{_fmt(lo['chance_pointing'], 3)} | {ci} |")
    lines += ["", "### Cost on this machine", "",
              "| method | s/pair map | s/pair score | s/pair total | forwards/pair | backwards/pair | est. 6,000 pairs (h) | failed |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for m, r in meths.items():
        if "cost" not in r:
            continue
        c = r["cost"]
        lines.append(f"| {m} | {_fmt(c['seconds_map_mean'], 3)} | {_fmt(c['seconds_score_mean'], 3)} | "
                     f"{_fmt(c['seconds_per_pair_mean'], 3)} | {_fmt(c['forwards_per_pair'], 1)} | {_fmt(c['backwards_per_pair'], 1)} | "
                     f"{_fmt(c['estimated_hours_6000_pairs'], 2)} | {r['n_failed']} |")
    lines += ["", "### DPR curves", "", "| step % | " + " | ".join(f"{m} FMR | {m} FNMR" for m in meths if "dpr" in meths[m]) + " |",
              "|---:|" + "---:|---:|" * sum(1 for m in meths if "dpr" in meths[m])]
    for i, pct in enumerate(p["dpr_percents"]):
        cells = []
        for m, r in meths.items():
            if "dpr" in r:
                cells += [_fmt(r["dpr"]["fmr"][i], 3), _fmt(r["dpr"]["fnmr"][i], 3)]
        lines.append(f"| {pct} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def plot_curves(summary: dict[str, Any], out_dir: str | os.PathLike) -> list[Path]:
    """``dpr.png`` (all methods), ``dpr-<method>.png`` (method against random) and ``deletion-insertion.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out = Path(out_dir)
    meths = {m: r for m, r in summary["methods"].items() if "dpr" in r}
    files: list[Path] = []
    if not meths:
        return files

    def style(m: str) -> dict[str, Any]:
        return {"linestyle": "--", "color": "0.4"} if m == "random" else {}

    notes = summary.get("method_notes", {})

    def label(m: str, auc: Any) -> str:
        return f"{m}{f' [{notes[m]}]' if m in notes and m != 'random' else ''} (AUC {_fmt(auc)})"

    def dpr_axes(ms: dict[str, Any], path: Path, title: str) -> None:
        fig, axes = plt.subplots(1, 2, figsize=(10, 4))
        for ax, err in zip(axes, ("fmr", "fnmr")):
            for m, r in ms.items():
                d = r["dpr"]
                ax.plot(d["percents"], d[err], label=label(m, d["auc_" + err]), **style(m))
            ax.set_xlabel("pixels replaced (%)")
            ax.set_ylabel(err.upper())
            ax.set_xlim(0, 100)
            ax.set_ylim(0, 1)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        fig.suptitle(title)
        fig.tight_layout()
        savefig_atomic(fig, path, dpi=110)
        plt.close(fig)
        files.append(path)

    model = summary["model"]
    dpr_axes(meths, out / "dpr.png", f"DPR on Patch-LFW ({model}, {summary['selection']['n_pairs']} pairs)")
    for m, r in meths.items():
        if m == "random":
            continue
        sub = {m: r, **({"random": meths["random"]} if "random" in meths else {})}
        dpr_axes(sub, out / f"dpr-{m}.png", f"DPR: {m} vs random ({model})")
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, name in zip(axes, ("deletion", "insertion")):
        for m, r in meths.items():
            d = r[name]
            ax.plot(d["percents"], d["accuracy_all"], label=label(m, d["auc_all"]), **style(m))
        ax.set_xlabel(f"pixels {'zeroed' if name == 'deletion' else 'kept'} (%)")
        ax.set_ylabel("verification accuracy")
        ax.set_title(name)
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    savefig_atomic(fig, out / "deletion-insertion.png", dpi=110)
    plt.close(fig)
    files.append(out / "deletion-insertion.png")
    return files


def write_summary(summary: dict[str, Any], out_dir: str | os.PathLike, command: str | None = None) -> dict[str, Path]:
    """Write ``summary.json``, ``summary.md`` and the plots into ``out_dir``."""
    out = ensure_dir(out_dir, "report folder")
    write_text_atomic(out / "summary.json", json.dumps(summary, indent=2))
    write_text_atomic(out / "summary.md", markdown(summary, command or summary.get("command")))
    plots = plot_curves(summary, out)
    return {"json": out / "summary.json", "markdown": out / "summary.md", **{p.stem: p for p in plots}}
