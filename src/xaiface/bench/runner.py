"""``xaiface bench patch-lfw``: Table 1, DPR, deletion/insertion and localisation on Patch-LFW.

Steps (each resumable):

1. the Patch-LFW folder for the model's geometry (generated on first use, all 6,000 pairs);
2. embeddings of every clean and patched image of it, once per model (``embeddings-*.npz``);
3. Table 1: the EER threshold of the clean pairs (:func:`xaiface.verify.eer`, the xSSAB
   reference's rule) and FMR / FNMR of the patched pairs at it;
4. per method and selected pair: the map of the patched image against its partner (only that
   image is explained), then the replace-and-score stage (:class:`.scoring.PairScorer`) and the
   localisation scores; each pair's result is committed to ``results.sqlite`` as it is produced;
5. the summary over the selected pairs (:mod:`.report`): ``summary.json``, ``summary.md`` and
   plots in a folder named after the subset (``<out>/all``, ``<out>/600pairs``, ...).

Explainers are built with the clean EER threshold of step 3 (xSSAB's ``tau = th / N``), the
random baseline with ``seed``. ``xssab`` is the paper's setting (5x5 Gaussian blur, sigma 5) and
``xssab-noblur`` the authors' reference code's (no blur); both are default methods.

Reference rules (``reference_rules=True``, ``xaiface bench patch-lfw --reference-rules``)
reproduce where the xSSAB reference code (marcohuber/xSSAB) scores differently from the
project's defaults; each run then carries ``"reference_rules": true`` in its configuration, so
its results are stored under other run keys than the default runs':

* the DPR step index is the reference's ``int(N * (1 - X))`` / ``int(N * X)`` with float ``X``
  from ``np.arange(0.05, 1., 0.05)`` (:mod:`.protocol`, ``reference_steps``), not the exact
  integer;
* the random baseline takes a prefix of one permutation (``np.random.seed(3)``, shuffle of
  ``arange(N)``) of ``int(X * N)`` pixels for matched and non-matched pairs alike (DPR rule
  ``"prefix"`` on :func:`xaiface.explain.random.permutation_map`), where the default replaces its
  uniform map's pixels through the bound rule (a non-match from the other end), with seed 3
  (``REFERENCE_RANDOM_SEED``) instead of ``seed``;
* the data set is a reference-rules Patch-LFW (in-place donors, seed 3 per class; see
  :func:`.patch_lfw.generate_patch_lfw`), by default in ``<out>/patch-lfw-<geometry>-reference``.
"""
from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from ..errors import ConfigError, DatasetError, StorageError, XaifaceError
from ..io.files import ensure_dir, load_npz, save_npz_atomic
from ..models.base import FaceModel
from ..models.registry import get_model
from ..models.thresholds import check_threshold
from .patch_lfw import PatchLFW, generate_patch_lfw, select_pairs
from .protocol import DELETION_PERCENTS, DPR_PERCENTS, DPR_RULES, patch_evidence, pixel_auroc, pointing_game
from .scoring import PairScorer
from .store import PairResult, ResultStore

DEFAULT_METHODS = ("xssab", "xssab-noblur", "gradient", "random")
"""``xssab`` = the paper (blurred maps), ``xssab-noblur`` = the reference code (unblurred)."""
REFERENCE_RANDOM_SEED = 3
"""The reference's random-baseline seed (``np.random.seed(3)`` in ``get_random_masks``)."""


def dataset_dir_for(out_dir: str | os.PathLike, geometry: str, reference_rules: bool = False) -> Path:
    """Default Patch-LFW folder of a benchmark folder: ``<out>/patch-lfw-<geometry>``, or
    ``<out>/patch-lfw-<geometry>-reference`` for the reference rules' data set."""
    return Path(out_dir) / (f"patch-lfw-{geometry}" + ("-reference" if reference_rules else ""))


def dpr_rule_for(method: str, rule: str, reference_rules: bool = False) -> str:
    """The DPR rule a method's run uses: ``rule``, except the random baseline under the reference
    rules, which takes the reference's permutation prefix (``"prefix"``) whatever the decision."""
    return "prefix" if reference_rules and method == "random" else rule


def selection_tag(n_pairs: int | None, folds: Iterable[int] | None, *, jpeg: bool = False, rule: str = "bound",
                  threshold: float | None = None, reference_rules: bool = False) -> str:
    """Name of a report folder: ``all``, ``600pairs``, ``300pairs-folds1-2`` (folds 1-based), with
    ``-jpeg``, ``-rank``, ``-th<value>`` or ``-reference`` appended for non-default protocol settings."""
    tag = "all" if n_pairs is None else f"{int(n_pairs)}pairs"
    if folds is not None:
        tag += "-folds" + "-".join(str(int(f) + 1) for f in sorted(set(folds)))
    if jpeg:
        tag += "-jpeg"
    if rule != "bound":
        tag += f"-{rule}"
    if threshold is not None:
        tag += f"-th{threshold:g}"
    if reference_rules:
        tag += "-reference"
    return tag


def _short_hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def embeddings_path(out_dir: str | os.PathLike, model: str, weights_sha256: str | None, dataset_sha256: str) -> Path:
    """Where :func:`dataset_embeddings` caches a model's embeddings of a data set:
    ``<out>/embeddings-<model>-<key>.npz``, key a hash of the model, its weights and the data set."""
    return Path(out_dir) / f"embeddings-{model}-{_short_hash([model, weights_sha256, dataset_sha256])}.npz"


def dataset_embeddings(ds: PatchLFW, model: FaceModel, out_dir: str | os.PathLike, batch_size: int = 64,
                       progress: bool = True) -> dict[str, np.ndarray]:
    """Normalised embeddings of every pair's clean first, clean second and patched first image.

    Cached in ``<out>/embeddings-<model>-<key>.npz`` (key: model, weights and data set hash);
    each distinct clean photo is embedded once. Returns arrays ``pair_index``, ``same``,
    ``e_a``, ``e_b``, ``e_patched`` in pair order.
    """
    from tqdm import tqdm

    path = embeddings_path(out_dir, model.spec.name, model.spec.weights_sha256, ds.content_sha256)
    if path.is_file():
        try:
            return _checked_embeddings(load_npz(path), ds.n_pairs, model.spec.embedding_size, path)
        except StorageError as e:  # damaged, truncated or of another shape: computed again (and replaced)
            warnings.warn(f"{e}; computing the embeddings again", stacklevel=2)
    photo_emb: dict[tuple[str, int], np.ndarray] = {}
    index, same, e_a, e_b, e_p = [], [], [], [], []
    bar = tqdm(total=ds.n_pairs, desc=f"embed Patch-LFW ({model.spec.name})", unit="pair", disable=not progress)
    by_index = {q.index: q for q in ds.pairs}
    for f in ds.folds:
        fold = ds.fold(f)
        idx = [int(i) for i in fold.arrays["pair_index"]]
        qs = [by_index[i] for i in idx]
        need: dict[tuple[str, int], np.ndarray] = {}
        for q, ca, cb in zip(qs, fold.arrays["clean_a"], fold.arrays["clean_b"]):
            for key_, crop in (((q.name_a, q.num_a), ca), ((q.name_b, q.num_b), cb)):
                if key_ not in photo_emb and key_ not in need:
                    need[key_] = crop
        if need:
            keys = list(need)
            embs = model.embed(np.stack([need[k] for k in keys]), batch_size=batch_size)
            photo_emb.update(zip(keys, embs))
        e_p.append(model.embed(fold.arrays["patched"], batch_size=batch_size))
        for q in qs:
            index.append(q.index)
            same.append(q.same)
            e_a.append(photo_emb[(q.name_a, q.num_a)])
            e_b.append(photo_emb[(q.name_b, q.num_b)])
        ds.release(f)
        bar.update(len(idx))
    bar.close()
    out = {"pair_index": np.asarray(index, dtype=np.int64), "same": np.asarray(same, dtype=bool),
           "e_a": np.stack(e_a), "e_b": np.stack(e_b), "e_patched": np.concatenate(e_p)}
    save_npz_atomic(path, **out)
    return out


def _checked_embeddings(arrays: dict[str, np.ndarray], n_pairs: int, dim: int, path: Path) -> dict[str, np.ndarray]:
    """``arrays`` when they are :func:`dataset_embeddings`' complete output for ``n_pairs`` pairs of
    ``dim``-d finite embeddings.

    Raises:
        StorageError: a missing array, another shape or non-finite values (the message says which).
    """
    want = {"pair_index": (n_pairs,), "same": (n_pairs,), "e_a": (n_pairs, dim), "e_b": (n_pairs, dim),
            "e_patched": (n_pairs, dim)}
    for k, shape in want.items():
        if k not in arrays:
            raise StorageError(f"{path}: no array {k!r}; not a complete embeddings file")
        if arrays[k].shape != shape:
            raise StorageError(f"{path}: array {k!r} of shape {arrays[k].shape}, expected {shape}")
        if arrays[k].dtype.kind == "f" and not np.isfinite(arrays[k]).all():
            raise StorageError(f"{path}: array {k!r} holds NaN or infinite values")
    return arrays


def table1(emb: dict[str, np.ndarray], threshold: float | None = None) -> dict[str, Any]:
    """Paper Table 1 for one model: clean EER and its threshold, FMR / FNMR on Patch-LFW at it.

    Args:
        emb: :func:`dataset_embeddings`' arrays. threshold: use this one instead of the clean
            EER threshold (it is still reported).
    """
    from ..verify import eer, fmr_fnmr, pair_similarity

    same = emb["same"]
    if same.all() or not same.any():
        raise DatasetError("Table 1 needs genuine and impostor pairs")
    # the scoring path of every decision of the benchmark (evaluate_pair and PairScorer too)
    clean = pair_similarity(emb["e_a"], emb["e_b"])
    patched = pair_similarity(emb["e_patched"], emb["e_b"])
    clean_eer, th_eer = eer(clean, same.astype(int))
    th = float(th_eer if threshold is None else check_threshold(threshold))
    fmr_c, fnmr_c = fmr_fnmr(clean, same.astype(int), th)
    fmr_p, fnmr_p = fmr_fnmr(patched, same.astype(int), th)
    return {"n_pairs": int(len(same)), "n_genuine": int(same.sum()), "n_impostor": int((~same).sum()),
            "clean_eer": float(clean_eer), "eer_threshold": float(th_eer), "threshold": th,
            "threshold_source": "clean EER (xaiface.verify.eer)" if threshold is None else "user",
            "clean_fmr": fmr_c, "clean_fnmr": fnmr_c, "patched_fmr": fmr_p, "patched_fnmr": fnmr_p,
            "scores_clean": clean, "scores_patched": patched}


def _map_stats(m: np.ndarray, mask: np.ndarray) -> dict[str, float]:
    inside, outside = m[mask], m[~mask]
    return {"min": float(m.min()), "max": float(m.max()), "mean": float(m.mean()), "std": float(m.std()),
            "positive_fraction": float((m > 0).mean()), "mean_inside": float(inside.mean()) if inside.size else float("nan"),
            "mean_outside": float(outside.mean()) if outside.size else float("nan")}


def evaluate_pair(explainer: Any, scorer: PairScorer, fold_arrays: Any, index: int, same: bool, threshold: float,
                  e_patched: np.ndarray, e_a: np.ndarray, e_b: np.ndarray) -> PairResult:
    """Map, replace-and-score and localisation of one Patch-LFW pair."""
    patched, original = fold_arrays.get("patched", index), fold_arrays.get("clean_a", index)
    partner, mask = fold_arrays.get("clean_b", index), fold_arrays.get("mask", index)
    from ..verify import pair_similarity

    # scored as in table1, so that a pair lying exactly on the EER threshold is decided alike
    score_patched, score_clean = pair_similarity(e_patched, e_b), pair_similarity(e_a, e_b)
    match = score_patched >= threshold
    t0 = time.perf_counter()
    expl = explainer.explain((patched, partner), images=(0,))
    cmap = np.asarray(expl.combined_maps[0], dtype=np.float32)
    t1 = time.perf_counter()
    sp = scorer.score(patched, original, partner, cmap, same, match, mask=mask,
                      e_patched=e_patched, e_original=e_a, e_partner=e_b)
    evidence = patch_evidence(cmap, same)
    auroc, pointing = pixel_auroc(evidence, mask), pointing_game(evidence, mask)
    t2 = time.perf_counter()
    return PairResult(index, fold_arrays.fold, same, match, score_patched, score_clean, float(expl.score),
                      sp.dpr, sp.restored, sp.deletion, sp.insertion, auroc, pointing, float(mask.mean()),
                      _map_stats(cmap, mask), expl.n_forward + sp.n_forward, expl.n_backward, t1 - t0, t2 - t1)


def run_config(method: str, params: dict[str, Any], model: FaceModel, ds: PatchLFW, threshold: float, rule: str,
               jpeg: bool, dpr_percents: Sequence[int], deletion_percents: Sequence[int],
               reference_rules: bool = False) -> dict[str, Any]:
    """The configuration that names a run (its ``run_key`` is a hash of it).

    ``reference_rules`` (default False) adds ``"reference_rules": True``; the default
    configuration has no such key, so the keys of runs stored before the option stay valid.
    """
    cfg = {"method": method, "params": params, "model": model.spec.name, "weights_sha256": model.spec.weights_sha256,
           "dataset_sha256": ds.content_sha256, "threshold": float(threshold), "rule": rule, "jpeg": bool(jpeg),
           "dpr_percents": list(dpr_percents), "deletion_percents": list(deletion_percents)}
    if reference_rules:
        cfg["reference_rules"] = True
    return cfg


def run_patch_lfw(out_dir: str | os.PathLike, *, methods: Sequence[str] = DEFAULT_METHODS, model: str | FaceModel = "dlib-resnet",
                  weights: Any = None, dataset: str | os.PathLike | None = None, n_pairs: int | None = None,
                  folds: Iterable[int] | None = None, seed: int = 0, jpeg: bool = False, rule: str = "bound",
                  threshold: float | None = None, method_params: dict[str, dict[str, Any]] | None = None,
                  dpr_percents: Sequence[int] = DPR_PERCENTS, deletion_percents: Sequence[int] = DELETION_PERCENTS,
                  data: str | os.PathLike | None = None, generate: bool = True, progress: bool = True,
                  on_pair: Callable[[str, int], None] | None = None, write: bool = True,
                  reference_rules: bool = False) -> dict[str, Any]:
    """Run the Patch-LFW benchmark (resuming whatever ``out_dir/results.sqlite`` already holds).

    Args:
        out_dir: the benchmark folder (results, embeddings, summary, plots; by default also the
            generated data set).
        methods: registered explainers (``xaiface explainers``); empty: Table 1 only.
        model, weights: the face model.
        dataset: a Patch-LFW folder (default ``<out>/patch-lfw-<geometry>``, or
            ``<out>/patch-lfw-<geometry>-reference`` under ``reference_rules``; generated with all
            6,000 pairs when missing and ``generate``).
        n_pairs, folds: the evaluated subset (:func:`.patch_lfw.select_pairs`; folds 0-based).
            Table 1 and the threshold always use every pair of the data set.
        seed: the random baseline's seed (and the generator's, when it generates); under
            ``reference_rules`` the random baseline takes the reference's 3 instead, unless
            ``method_params["random"]["seed"]`` is given.
        jpeg: the reference's JPEG re-encoding of each DPR step. rule: DPR pixel rule.
        threshold: override the clean EER threshold (finite, in [-1, 1]; else ConfigError).
        method_params: extra parameters per method (``{"corrrise": {"n_masks": 300}}``).
        on_pair: called as ``on_pair(method, pair_index)`` after each stored pair (progress hooks, tests).
        write: write ``summary.json``, ``summary.md`` and plots into ``<out>/<tag>`` (see
            :func:`selection_tag`; the results database and embeddings stay in ``<out>``).
        reference_rules: score as the xSSAB reference code (see the module docstring; default
            False). Needs ``rule="bound"`` (the reference has no other).
    Returns:
        the summary dict (see :func:`.report.summarize`).
    Raises:
        ModelNotFoundError: an unknown method (before any work). ConfigError, DatasetError.
    """
    from tqdm import tqdm

    from ..explain import Verifier, explainer_info, get_explainer
    from .report import summarize, write_summary

    methods = list(dict.fromkeys(methods))
    folds = None if folds is None else [int(f) for f in folds]
    for m in methods:
        explainer_info(m)  # an unknown name fails here, before any work
    if rule not in DPR_RULES:
        raise ConfigError(f"DPR rule must be one of {DPR_RULES}, got {rule!r}")
    if reference_rules and rule != "bound":
        raise ConfigError(f"the reference rules use the reference's 'bound' DPR rule, got rule {rule!r}")
    if threshold is not None:
        threshold = check_threshold(threshold)
    out = ensure_dir(out_dir, "benchmark folder")
    fr = model if isinstance(model, FaceModel) else get_model(model, weights=weights)
    fr.eval()
    geometry = fr.spec.preprocessing.geometry
    ds_dir = Path(dataset) if dataset is not None else dataset_dir_for(out, geometry, reference_rules)
    if not (ds_dir / "manifest.json").is_file():
        if dataset is not None or not generate:  # only the default location is generated on demand
            raise DatasetError(f"{ds_dir}: no Patch-LFW there; run `xaiface bench patch-lfw-generate --out {ds_dir}`")
        # the keyword only when set: the default call stays what it was
        reference_kw = {"reference_rules": True} if reference_rules else {}
        generate_patch_lfw(ds_dir, model=fr.spec.name, seed=seed, data=data, progress=progress, **reference_kw)
    ds = PatchLFW(ds_dir)
    if ds.geometry != geometry:
        raise ConfigError(f"{ds_dir} holds {ds.geometry} crops, but model {fr.spec.name} takes {geometry} crops")

    t0 = time.perf_counter()
    selection = select_pairs(ds.pairs, n_pairs, folds)  # a bad --pairs / --folds fails before any work
    emb = dataset_embeddings(ds, fr, out, progress=progress)
    t_emb = time.perf_counter() - t0
    t1 = table1(emb, threshold)
    th = t1["threshold"]
    row_of = {int(i): k for k, i in enumerate(emb["pair_index"])}
    sel_idx = [q.index for q in selection]

    params_all = {m: dict((method_params or {}).get(m, {})) for m in methods}
    if "random" in params_all:
        params_all["random"].setdefault("seed", REFERENCE_RANDOM_SEED if reference_rules else int(seed))
        if reference_rules:  # the reference's pixel order (a default run's params stay {"seed": seed})
            params_all["random"].setdefault("reference", True)
    scorer = PairScorer(fr, dpr_percents=dpr_percents, deletion_percents=deletion_percents, rule=rule, jpeg=jpeg,
                        reference_steps=reference_rules)
    verifier = Verifier(fr, threshold=th)
    run_keys: dict[str, str] = {}
    with ResultStore(out / "results.sqlite") as store:
        for method in methods:
            params = params_all[method]
            cfg = run_config(method, params, fr, ds, th, rule, jpeg, scorer.dpr_percents, scorer.deletion_percents,
                             reference_rules)
            method_scorer = scorer.with_rule(dpr_rule_for(method, rule, reference_rules))
            key = _short_hash(cfg)
            run_keys[method] = key
            store.register(key, fr.spec.name, method, cfg)
            done = store.done(key)
            todo = [q for q in selection if q.index not in done]
            if not todo:
                continue
            explainer = get_explainer(method, verifier, **params)
            bar = tqdm(total=len(selection), initial=len(selection) - len(todo), desc=f"{method}", unit="pair",
                       disable=not progress)
            loaded: int | None = None
            for q in todo:
                if loaded is not None and loaded != q.fold:
                    ds.release(loaded)
                fold = ds.fold(q.fold)
                loaded = q.fold
                k = row_of[q.index]
                try:
                    res = evaluate_pair(explainer, method_scorer, fold, q.index, q.same, th,
                                        emb["e_patched"][k], emb["e_a"][k], emb["e_b"][k])
                except XaifaceError as e:  # recorded, and the run goes on
                    res = PairResult(q.index, q.fold, q.same, error=f"{type(e).__name__}: {e}")
                store.put(key, res)
                bar.update(1)
                if on_pair is not None:
                    on_pair(method, q.index)
            bar.close()
            if loaded is not None:
                ds.release(loaded)
        results = {m: store.results(run_keys[m], sel_idx) for m in methods}
    summary = summarize(results, t1, selection, dataset=ds, model=fr.spec.name, rule=rule, jpeg=jpeg,
                        dpr_percents=scorer.dpr_percents, deletion_percents=scorer.deletion_percents,
                        run_keys=run_keys, params=params_all, reference_rules=reference_rules)
    summary["timing_s"] = {"embeddings": round(t_emb, 1)}
    summary["out"] = str(out)
    summary["report_dir"] = str(out / selection_tag(n_pairs, folds, jpeg=jpeg, rule=rule, threshold=threshold,
                                                     reference_rules=reference_rules))
    save_npz_atomic(out / "table1-scores.npz", pair_index=emb["pair_index"], same=emb["same"],
             clean=t1["scores_clean"], patched=t1["scores_patched"])
    if write:
        write_summary(summary, summary["report_dir"])
    return summary
