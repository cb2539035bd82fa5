"""``xaiface bench patch-lfw``: Table 1, DPR, deletion/insertion and localisation on Patch-LFW.

Steps (each resumable):

1. the Patch-LFW folder for the model's geometry (:func:`patch_lfw_for_run`: at the default
   location only the pairs the run selects are generated, and the folder grows when a larger run
   asks for more);
2. embeddings of every clean and patched image of it, once per model (``embeddings-*.npz``; a
   grown folder embeds only its new pairs);
3. Table 1 (:func:`decision_threshold`): the EER threshold of the clean pairs
   (:func:`xaiface.verify.eer`, the xSSAB reference's rule) when the folder holds all 6,000 pairs
   (or is of the older complete format), else the model's calibrated plain LFW EER threshold; and
   FMR / FNMR of the patched pairs at it, over the pairs present;
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from ..errors import ConfigError, DatasetError, StorageError, XaifaceError
from ..io.files import ensure_dir, load_npz, save_npz_atomic
from ..models.base import FaceModel
from ..models.registry import get_model
from ..models.thresholds import check_threshold
from .patch_lfw import FORMAT_V1, PatchLFW, PatchPair, generate_patch_lfw, select_pairs
from .protocol import DELETION_PERCENTS, DPR_PERCENTS, DPR_RULES, patch_evidence, pixel_auroc, pointing_game
from .scoring import PairScorer
from .store import PairResult, ResultStore

DEFAULT_METHODS = ("xssab", "xssab-noblur", "gradient", "random")
"""``xssab`` = the paper (blurred maps), ``xssab-noblur`` = the reference code (unblurred)."""
REFERENCE_RANDOM_SEED = 3
"""The reference's random-baseline seed (``np.random.seed(3)`` in ``get_random_masks``)."""


def dataset_dir_for(out_dir: str | os.PathLike, geometry: str, reference_rules: bool = False) -> Path:
    """Default Patch-LFW folder of a benchmark folder: ``<out>/patch-lfw-<geometry>``, or
    ``<out>/patch-lfw-<geometry>-reference`` for the reference's generator rules."""
    return Path(out_dir) / f"patch-lfw-{geometry}{'-reference' if reference_rules else ''}"


def patch_lfw_for_run(out_dir: str | os.PathLike, model: FaceModel, *, dataset: str | os.PathLike | None = None,
                      generate: bool = True, seed: int = 0, data: str | os.PathLike | None = None,
                      n_pairs: int | None = None, folds: Iterable[int] | None = None, progress: bool = True,
                      reference_rules: bool = False, executor: Any = None) -> tuple[PatchLFW, list[PatchPair]]:
    """The data set of a run and the run's pairs of it.

    At the default location (:func:`dataset_dir_for`, ``dataset`` not given, ``generate``) the
    folder is generated on demand: only the pairs that ``n_pairs`` / ``folds`` select among
    LFW's 6,000 (:func:`.patch_lfw.select_pairs`) are added when missing, and those are the run's
    pairs. An older-format folder there, or a ``dataset`` folder, is used as it is, and the run's
    pairs are selected among the pairs it holds (as before).

    Args:
        out_dir: the benchmark folder. model: the face model (its geometry names the folder).
        dataset: an explicit Patch-LFW folder (never extended). generate: generate at the
            default location (default True). seed: the generator's seed.
        data, n_pairs, folds, progress: as :func:`run_patch_lfw`.
        reference_rules: the reference's generator rules (:func:`.patch_lfw.reference_plans`), in
            their own default folder.
        executor: where a generation detects photos (default: its own, see :func:`.patch_lfw.generate_patch_lfw`).
    Raises:
        DatasetError: no Patch-LFW at ``dataset`` (or at the default location with ``generate`` off).
        ConfigError: a bad ``n_pairs`` / ``folds`` (before any work), or a folder of another geometry.
    """
    geometry = model.spec.preprocessing.geometry
    ds_dir = Path(dataset) if dataset is not None else dataset_dir_for(out_dir, geometry, reference_rules)
    manifest = ds_dir / "manifest.json"
    if dataset is None and generate and not (manifest.is_file() and PatchLFW(ds_dir).format == FORMAT_V1):
        from ..datasets import LFW

        wanted = {q.index for q in select_pairs(LFW(data).pairs(), n_pairs, folds)}
        ds = generate_patch_lfw(ds_dir, model=model.spec.name, seed=seed, data=data, n_pairs=n_pairs, folds=folds,
                                progress=progress, reference_rules=reference_rules, executor=executor)
        selection: list[PatchPair] | None = [q for q in ds.pairs if q.index in wanted]
    else:
        if not manifest.is_file():
            raise DatasetError(f"{ds_dir}: no Patch-LFW there; run `xaiface bench patch-lfw-generate --out {ds_dir}`")
        ds, selection = PatchLFW(ds_dir), None
    if ds.geometry != geometry:
        raise ConfigError(f"{ds_dir} holds {ds.geometry} crops, but model {model.spec.name} takes {geometry} crops")
    if selection is None:
        selection = select_pairs(ds.pairs, n_pairs, folds)  # a bad --pairs / --folds fails before any work
    return ds, selection


def decision_threshold(ds: PatchLFW, model: FaceModel, threshold: float | None = None) -> tuple[float | None, str]:
    """The benchmark's decision threshold for ``ds``: ``(value, source)``; ``None``: the clean EER
    threshold of the pairs (computed by :func:`table1`).

    * ``threshold`` given: it (``"user"``);
    * a folder with all 6,000 pairs, or of the older format (whose stores keep their run keys):
      the clean EER threshold of its pairs (the reference's rule);
    * a partial folder: the model's calibrated plain LFW EER threshold,
      ``model.spec.threshold("eer", flip=False)``, which a few pairs could not estimate. (For
      dlib-resnet it is the same EER operating point as the full set's clean EER threshold, from
      ``xaiface eval lfw``, and 8.1e-8 above it: 0.9042537212 vs 0.9042536398.)

    Raises:
        ConfigError: a partial folder and a model without a calibrated plain EER threshold.
    """
    if threshold is not None:
        return check_threshold(threshold), "user"
    if ds.complete or ds.format == FORMAT_V1:
        return None, "clean EER (xaiface.verify.eer)"
    try:
        return model.spec.threshold("eer", flip=False), "calibrated plain LFW EER threshold of the model"
    except ConfigError as e:
        raise ConfigError(f"{ds.root} holds {ds.n_pairs} of the {ds.manifest.get('lfw_pairs_total', 6000)} pairs, too few "
                          f"for a threshold of its own, and {e}; pass --threshold, or run on the full set "
                          "(without --pairs / --folds)") from None


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

    Cached in ``<out>/embeddings-<model>-<key>.npz`` (key: model, weights and the data set's
    :attr:`~.patch_lfw.PatchLFW.identity`, which fixes every pair's arrays, so the rows of a
    folder that has grown since stay valid): only pairs without a row are embedded (fold by fold,
    each distinct clean photo once) and the file is replaced by the union. Returns arrays
    ``pair_index``, ``same``, ``e_a``, ``e_b``, ``e_patched`` of the folder's pairs in pair order.

    For an on-demand folder every forward holds exactly ``batch_size`` images (the last batch
    padded with black images, whose embeddings are dropped): a CPU forward's last bits depend on
    the batch's size (2.7e-7 seen between batches of 2 and 4), so without it a pair's embeddings,
    and its results, would depend on which pairs were embedded with it, i.e. on how the folder
    grew. Older-format folders embed as before (their stores keep their values).
    """
    from tqdm import tqdm

    path = embeddings_path(out_dir, model.spec.name, model.spec.weights_sha256, ds.identity)
    dim = model.spec.embedding_size
    have: dict[str, np.ndarray] = {k: np.zeros((0, dim) if k.startswith("e_") else 0, dtype=d)
                                   for k, d in (("pair_index", np.int64), ("same", bool), ("e_a", np.float32),
                                                ("e_b", np.float32), ("e_patched", np.float32))}
    if path.is_file():
        try:
            have = _checked_embeddings(load_npz(path), None, dim, path)
        except StorageError as e:  # damaged, truncated or of another shape: computed again (and replaced)
            warnings.warn(f"{e}; computing the embeddings again", stacklevel=2)
    row = {int(i): k for k, i in enumerate(have["pair_index"])}
    padded = ds.format != FORMAT_V1
    wanted = [q.index for q in ds.pairs]
    if list(row) == wanted:
        return have  # the common case, as it was stored
    photo_emb: dict[tuple[str, int], np.ndarray] = {}
    for q in ds.pairs:  # photos embedded before, for the new pairs that show them again
        if q.index in row:
            photo_emb.setdefault((q.name_a, q.num_a), have["e_a"][row[q.index]])
            photo_emb.setdefault((q.name_b, q.num_b), have["e_b"][row[q.index]])
    index, same, e_a, e_b, e_p = [], [], [], [], []
    todo = [q for q in ds.pairs if q.index not in row]
    bar = tqdm(total=len(todo), desc=f"embed Patch-LFW ({model.spec.name})", unit="pair", disable=not progress)
    for f in sorted({q.fold for q in todo}):
        fold = ds.fold(f)
        qs = [q for q in todo if q.fold == f]
        sel = np.asarray([fold.row[q.index] for q in qs])
        need: dict[tuple[str, int], np.ndarray] = {}
        for q, ca, cb in zip(qs, fold.arrays["clean_a"][sel], fold.arrays["clean_b"][sel]):
            for key_, crop in (((q.name_a, q.num_a), ca), ((q.name_b, q.num_b), cb)):
                if key_ not in photo_emb and key_ not in need:
                    need[key_] = crop
        if need:
            keys = list(need)
            embs = _embed(model, np.stack([need[k] for k in keys]), batch_size, padded)
            photo_emb.update(zip(keys, embs))
        e_p.append(_embed(model, fold.arrays["patched"][sel], batch_size, padded))
        for q in qs:
            index.append(q.index)
            same.append(q.same)
            e_a.append(photo_emb[(q.name_a, q.num_a)])
            e_b.append(photo_emb[(q.name_b, q.num_b)])
        ds.release(f)
        bar.update(len(qs))
    bar.close()
    new = {"pair_index": np.asarray(index, dtype=np.int64), "same": np.asarray(same, dtype=bool),
           "e_a": np.stack(e_a), "e_b": np.stack(e_b), "e_patched": np.concatenate(e_p)}
    union = {k: np.concatenate([have[k], new[k]]) for k in new}
    order = np.argsort(union["pair_index"], kind="stable")
    union = {k: v[order] for k, v in union.items()}
    save_npz_atomic(path, **union)
    pos = {int(i): k for k, i in enumerate(union["pair_index"])}
    take = np.asarray([pos[i] for i in wanted])
    return union if len(take) == len(order) else {k: v[take] for k, v in union.items()}


def _embed(model: FaceModel, crops: np.ndarray, batch_size: int, padded: bool) -> np.ndarray:
    """``model.embed`` of ``crops``; ``padded``: in forwards of exactly ``batch_size`` images (see
    :func:`dataset_embeddings`)."""
    if not padded or len(crops) % batch_size == 0:
        return model.embed(crops, batch_size=batch_size)
    fill = np.zeros((batch_size - len(crops) % batch_size, *crops.shape[1:]), dtype=crops.dtype)
    return model.embed(np.concatenate([crops, fill]), batch_size=batch_size)[:len(crops)]


def _checked_embeddings(arrays: dict[str, np.ndarray], n_pairs: int | None, dim: int, path: Path) -> dict[str, np.ndarray]:
    """``arrays`` when they are :func:`dataset_embeddings`' output for ``n_pairs`` pairs (``None``:
    any number, one row per pair) of ``dim``-d finite embeddings.

    Raises:
        StorageError: a missing array, another shape, repeated pairs or non-finite values (the
            message says which).
    """
    if n_pairs is None and "pair_index" in arrays:
        n_pairs = len(arrays["pair_index"])
        if len(np.unique(arrays["pair_index"])) != n_pairs:
            raise StorageError(f"{path}: array 'pair_index' repeats pairs; not an embeddings file of this project")
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


def table1(emb: dict[str, np.ndarray], threshold: float | None = None, source: str | None = None,
           scope: str | None = None) -> dict[str, Any]:
    """Paper Table 1 for one model: clean EER and its threshold, FMR / FNMR on Patch-LFW at it.

    Args:
        emb: :func:`dataset_embeddings`' arrays (the pairs it is computed over).
        threshold: use this one instead of the clean EER threshold (which is still reported).
        source: how to name ``threshold`` (default ``"user"``; :func:`decision_threshold`).
        scope: what the pairs are, for the report (default ``"all pairs of the data set"``).
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
            "threshold_source": "clean EER (xaiface.verify.eer)" if threshold is None else source or "user",
            "scope": scope or "all pairs of the data set",
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


@dataclass(frozen=True)
class PairJob:
    """What a process needs to evaluate the pairs of one run (picklable; sent with every task).

    Attributes:
        method, params: the explainer. model, weights: the face model by registered name and
            weight path (or, for the local executor only, the model object itself).
        threshold, rule, jpeg, dpr_percents, deletion_percents: the protocol (see :func:`run_config`;
            ``rule`` is the method's own, :func:`dpr_rule_for`). reference_steps: the reference's
            float DPR step index (``--reference-rules``).
    """

    method: str
    params: dict[str, Any]
    model: Any
    weights: str | None
    threshold: float
    rule: str
    jpeg: bool
    dpr_percents: tuple[int, ...]
    deletion_percents: tuple[int, ...]
    reference_steps: bool = False

    def key(self) -> str:
        """The key of this job's explainer and scorer in :func:`xaiface.executor.worker_state`."""
        from ..executor import state_key

        model = self.model if isinstance(self.model, str) else f"object-{id(self.model)}"
        return state_key("patch-lfw", self.method, self.params, model, self.weights, self.threshold, self.rule,
                         self.jpeg, self.dpr_percents, self.deletion_percents, self.reference_steps)

    def chunksize(self) -> int:
        """Pairs per task: 1 for the perturbation (black-box) methods, seconds a pair; 8 for the others."""
        from ..explain import explainer_info

        return 1 if explainer_info(self.method).family == "perturbation" else 8

    def build(self) -> tuple[Any, PairScorer]:
        """The explainer and the replace-and-score stage of this job (built once per process)."""
        from ..explain import Verifier, get_explainer

        fr = self.model if isinstance(self.model, FaceModel) else get_model(self.model, weights=self.weights)
        fr.eval()
        scorer = PairScorer(fr, dpr_percents=self.dpr_percents, deletion_percents=self.deletion_percents,
                            rule=self.rule, jpeg=self.jpeg, reference_steps=self.reference_steps)
        return get_explainer(self.method, Verifier(fr, threshold=self.threshold), **self.params), scorer


@dataclass(frozen=True)
class PairTask:
    """One Patch-LFW pair with everything its evaluation reads (so a worker needs no data set).

    ``get(name, index)`` and ``fold`` make it a one-pair stand-in for the data set's fold arrays.
    """

    index: int
    fold: int
    same: bool
    arrays: dict[str, np.ndarray]
    e_patched: np.ndarray
    e_a: np.ndarray
    e_b: np.ndarray

    @classmethod
    def of(cls, fold_arrays: Any, index: int, same: bool, e_patched: np.ndarray, e_a: np.ndarray,
           e_b: np.ndarray) -> "PairTask":
        arrays = {k: np.ascontiguousarray(fold_arrays.get(k, index)) for k in ("patched", "clean_a", "clean_b", "mask")}
        return cls(int(index), int(fold_arrays.fold), bool(same), arrays, e_patched, e_a, e_b)

    def get(self, name: str, index: int) -> np.ndarray:
        if index != self.index:
            raise DatasetError(f"pair task {self.index} asked for pair {index}")
        return self.arrays[name]


def evaluate_task(item: tuple[PairJob, PairTask]) -> PairResult:
    """:func:`evaluate_pair` of one task, with this process's explainer and scorer of the job (an
    executor task: a project error is recorded as the pair's result and the run goes on)."""
    from ..executor import worker_state

    job, task = item
    explainer, scorer = worker_state(job.key(), job.build)
    try:
        return evaluate_pair(explainer, scorer, task, task.index, task.same, job.threshold, task.e_patched,
                             task.e_a, task.e_b)
    except XaifaceError as e:  # recorded, and the run goes on
        return PairResult(task.index, task.fold, task.same, error=f"{type(e).__name__}: {e}")


def nested_order(pairs: Sequence[Any]) -> list[Any]:
    """Pairs in the order that keeps what is done a balanced subset: round ``r`` takes the ``r``-th
    genuine and the ``r``-th impostor pair of every fold (in file order within each).

    A run stopped after ``20 k`` pairs of a 10-fold selection therefore holds exactly the
    ``--pairs 20k`` subset (:func:`.patch_lfw.select_pairs`), give or take the pairs in flight.
    """
    rank: dict[tuple[int, bool], int] = {}
    keyed = []
    for n, p in enumerate(pairs):
        c = rank.get((p.fold, p.same), 0)
        rank[(p.fold, p.same)] = c + 1
        keyed.append(((c, p.fold, not p.same, n), p))
    return [p for _, p in sorted(keyed, key=lambda kp: kp[0])]


def _open_executor(executor: Any, workers: int | None, scheduler: str | None, threads: int | None) -> Any:
    from ..executor import get_executor

    if executor is None and scheduler is None and not workers:
        return get_executor("local", threads=threads)
    return get_executor(executor, workers=workers, scheduler=scheduler, threads=1 if threads is None else threads)


def run_config(method: str, params: dict[str, Any], model: FaceModel, ds: PatchLFW, threshold: float, rule: str,
               jpeg: bool, dpr_percents: Sequence[int], deletion_percents: Sequence[int],
               reference_rules: bool = False) -> dict[str, Any]:
    """The configuration that names a run (its ``run_key`` is a hash of it); the data set enters by
    its :attr:`~.patch_lfw.PatchLFW.identity` (the content hash of an older-format folder, as before).

    ``reference_rules`` (default False) adds ``"reference_rules": True``; the default
    configuration has no such key, so the keys of runs stored before the option stay valid.
    """
    cfg = {"method": method, "params": params, "model": model.spec.name, "weights_sha256": model.spec.weights_sha256,
           "dataset_sha256": ds.identity, "threshold": float(threshold), "rule": rule, "jpeg": bool(jpeg),
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
                  executor: Any = None, workers: int | None = None, scheduler: str | None = None,
                  threads: int | None = None, chunk_pairs: int | None = None,
                  reference_rules: bool = False) -> dict[str, Any]:
    """Run the Patch-LFW benchmark (resuming whatever ``out_dir/results.sqlite`` already holds).

    Args:
        out_dir: the benchmark folder (results, embeddings, summary, plots; by default also the
            generated data set).
        methods: registered explainers (``xaiface explainers``); empty: Table 1 only.
        model, weights: the face model.
        dataset: a Patch-LFW folder (default ``<out>/patch-lfw-<geometry>``, or
            ``<out>/patch-lfw-<geometry>-reference`` under ``reference_rules``, where the pairs the
            run selects are generated when missing and ``generate``, see :func:`patch_lfw_for_run`).
        n_pairs, folds: the evaluated subset (:func:`.patch_lfw.select_pairs`; folds 0-based).
            Table 1 uses every pair of the data set; the threshold is :func:`decision_threshold`'s.
        seed: the random baseline's seed (and the generator's, when it generates); under
            ``reference_rules`` the random baseline takes the reference's 3 instead, unless
            ``method_params["random"]["seed"]`` is given.
        jpeg: the reference's JPEG re-encoding of each DPR step. rule: DPR pixel rule.
        threshold: override the decision threshold (finite, in [-1, 1]; else ConfigError); needed
            for a partial data set when the model has no calibrated threshold.
        method_params: extra parameters per method (``{"corrrise": {"n_masks": 300}}``).
        on_pair: called as ``on_pair(method, pair_index)`` after each stored pair (progress hooks, tests).
        executor, workers, scheduler, threads: where the pairs are computed
            (:func:`xaiface.executor.get_executor`: ``local`` in this process by default, a local
            Dask cluster of ``workers`` processes, or the cluster of ``scheduler``); ``threads``:
            torch threads of each process that computes pairs (``None``: this process's setting;
            1 for Dask workers). Results are the same whichever executor computes them (they are
            stored by the driver as they arrive; pairs are sent in :func:`nested_order`).
        chunk_pairs: pairs per executor task (default :meth:`PairJob.chunksize`).
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
    from ..executor import forget_worker_state, worker_state
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
    model_ref = fr if isinstance(model, FaceModel) else str(model)
    ex = _open_executor(executor, workers, scheduler, threads)
    try:
        if ex.kind != "local" and not isinstance(model_ref, str):
            raise ConfigError("a distributed run needs the model by name (and weights by path), not a model object")
        ds, selection = patch_lfw_for_run(out, fr, dataset=dataset, generate=generate, seed=seed, data=data,
                                          n_pairs=n_pairs, folds=folds, progress=progress,
                                          reference_rules=reference_rules, executor=None if ex.kind == "local" else ex)
        fixed, source = decision_threshold(ds, fr, threshold)  # a missing calibration fails before the embeddings

        t0 = time.perf_counter()
        emb = dataset_embeddings(ds, fr, out, progress=progress)
        t_emb = time.perf_counter() - t0
        scope = (f"all {ds.n_pairs} pairs of the data set" if ds.complete or ds.format == FORMAT_V1 else
                 f"{ds.n_pairs} of the {ds.manifest.get('lfw_pairs_total', 6000)} pairs: a partial data set")
        t1 = table1(emb, fixed, source, scope)
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
                todo = nested_order([q for q in selection if q.index not in done])
                if not todo:
                    continue
                job = PairJob(method, params, model_ref, None if weights is None else str(weights), th,
                              method_scorer.rule, bool(jpeg), tuple(scorer.dpr_percents),
                              tuple(scorer.deletion_percents), bool(reference_rules))
                if ex.kind == "local":  # this process's objects, not a second copy of the model
                    worker_state(job.key(), lambda: (get_explainer(method, Verifier(fr, threshold=th), **params),
                                                     method_scorer))
                bar = tqdm(total=len(selection), initial=len(selection) - len(todo), desc=f"{method} [{ex.describe()}]",
                           unit="pair", disable=not progress, smoothing=0.05)
                tasks = (PairTask.of(ds.fold(q.fold), q.index, q.same, emb["e_patched"][row_of[q.index]],
                                     emb["e_a"][row_of[q.index]], emb["e_b"][row_of[q.index]]) for q in todo)
                try:
                    for _, res in ex.as_completed(evaluate_task, ((job, t) for t in tasks),
                                                  chunksize=chunk_pairs or job.chunksize()):
                        store.put(key, res)
                        bar.update(1)
                        if on_pair is not None:
                            on_pair(method, res.pair)
                finally:
                    bar.close()
                    forget_worker_state(job.key())
            for f in ds.folds:
                ds.release(f)
            results = {m: store.results(run_keys[m], sel_idx) for m in methods}
    finally:
        if ex is not executor:
            ex.close()
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
