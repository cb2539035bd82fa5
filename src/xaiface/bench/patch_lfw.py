"""Patch-LFW (Huber et al., WACV 2024, Sec. 4.2): LFW View 2 with planted patches, and its reader.

Faithful to the paper and to its reference code (marcohuber/xSSAB, ``patches/patch.py``):

* the 6,000 View 2 pairs in ``pairs.txt`` order; both photos aligned to the model's crop
  (``S`` px; the reference uses ArcFace 112 px crops) the way ``xaiface eval lfw`` aligns them
  (:mod:`xaiface.pipeline.batch`);
* only the first image of each pair is patched, with ``n_patches = 27`` square patches of
  ``p = round(16 * S / 112)`` px (16 at 112 px, 21 at dlib's 150 px), overlaps allowed;
* a patch's column ``c`` and bottom row ``r`` are uniform integers ``c in [0, S - p)`` and
  ``r in [p, S)`` (the reference's ``np.random.randint(0, 96)`` and ``randint(16, 112)``, with
  numpy's exclusive upper bound, so a patch never touches the last row or column; scaled to
  ``S``); the patch covers rows ``r - p .. r - 1`` and columns ``c .. c + p - 1``;
* its pixels are copied from the same coordinates of the source crop: for an impostor pair the
  pair's second image (more false matches); for a genuine pair a random image of another
  identity (more false non-matches), drawn among the 12,000 pair images of ``pairs.txt`` as the
  reference draws it, but redrawn until the identity differs (the reference's index arithmetic
  can pick the same person);
* deterministic from ``seed``: pair ``k`` uses its own generator ``SeedSequence([seed, k])``,
  so a subset holds exactly the patches of the full set, and (with the fixed fallback box below)
  exactly its arrays.

Differences from the reference: crops are stored losslessly (``.npz``; the reference writes
JPEG), the patch geometry is scaled to the model's crop, the donor is guaranteed to be another
person, each pair has its own random stream, and donors are always clean crops.
``reference_rules=True`` (:func:`reference_plans`) reproduces the reference's one stream per
class (``np.random.seed(3)``) and its in-place patching instead. Expected coverage: 40.7% of the
pixels at the reference sizes (27 patches of 16 px on 112 px), 39.5% with 21 px on 150 px
(``16 * 150 / 112 = 21.4`` rounds down).

**Generated on demand.** A folder holds the pairs that were asked for (:func:`generate_patch_lfw`
with ``n_pairs`` / ``folds``), and a later call that asks for more adds only the missing pairs
(detecting and aligning only their photos). Its identity (:attr:`PatchLFW.identity`, what run
keys use) is the hash of its *recipe* (parameters, the ``pairs.txt`` digest, geometry, detector
settings, rules, fallback box), which does not change as it grows; each chunk's arrays are hashed
for integrity and checked whenever a chunk is read. A photo without a detected face gets a fixed
fallback box (:func:`fallback_box_for`), not the median of the photos aligned with it, so a
pair's arrays do not depend on which run generated it. Folders of the older, complete format
(``xaiface-patch-lfw/1``, one chunk per fold, written all at once) are still read, with their
content hash as identity, and are never extended.

Layout of a generated folder::

    manifest.json        recipe (params), recipe_sha256, per-pair metadata, per-chunk array hashes
    fold-01-0001.npz ... per fold and extension: pair_index (n,), patched, clean_a, clean_b
                         (n, S, S, 3) uint8, mask (n, S, S) bool, rows, cols (n, n_patches) int16
    .lock                held while pairs are being added (one writer at a time)

(the older format has ``fold-01.npz`` ... and ``content_sha256`` as identity).
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from ..datasets import LFW, select_fold_pairs
from ..datasets.lfw import LFWPair
from ..errors import ConfigError, DatasetError
from ..io import array_sha256

FORMAT = "xaiface-patch-lfw/2"
"""The on-demand format (recipe identity, chunks per fold and extension)."""
FORMAT_V1 = "xaiface-patch-lfw/1"
"""The older complete format (content hash identity, one chunk per fold); read, never written."""
REFERENCE_SIZE = 112
"""Crop size of the reference (ArcFace alignment)."""
REFERENCE_PATCH_SIZE = 16
"""Patch side at the reference size."""
REFERENCE_SEED = 3
"""The reference's ``np.random.seed(3)``, once per class (:func:`reference_plans`)."""
N_PATCHES = 27
"""Patches per patched image (paper Sec. 4.2)."""
ARRAYS = ("pair_index", "patched", "clean_a", "clean_b", "mask", "rows", "cols")
PINNED_FALLBACK_BOXES: dict[tuple[str, str], tuple[float, float, float, float]] = {
    ("dlib-hog", "center"): (67.0, 80.0, 176.0, 188.0),
}
"""Fallback boxes ``x1, y1, x2, y2`` per ``(detector, select)``: the median of the faces selected in
all 7,701 photos of ``pairs.txt`` (what a generation of the full set computed, and recorded in its
manifest), so a folder generated in parts has the full generation's arrays."""
FALLBACK_SAMPLE_PAIRS = 100
"""Other detector settings: the fallback box is the median over the photos of fold 1's first 50
genuine and 50 impostor pairs (always the same photos, whatever the run asks for)."""
LOCK_NAME = ".lock"
_POSITION_RULE = "c ~ U{0..S-p-1}, bottom row r ~ U{p..S-1} (numpy randint, as the reference)"
_DONOR_RULE = "impostor: the pair's second photo; genuine: a random pair photo of another identity"
_RULES = {
    False: {"rules": "project", "stream": "pair k: numpy Generator(SeedSequence([seed, k])), columns, rows, donor",
            "donors": "clean crops"},
    True: {"rules": "reference", "stream": "per class (impostor pairs, then genuine pairs, in pairs.txt order): "
                                           "numpy RandomState(3), columns, rows, donor (choice among the other identities' slots)",
           "donors": "in place: a genuine pair's donor is the patched first image of an earlier genuine pair when it is one"},
}


def patch_size_for(size: int) -> int:
    """The reference's 16 px patch scaled to a ``size`` px crop: ``round(16 * size / 112)`` (half up)."""
    if size < 8:
        raise ConfigError(f"crop size must be at least 8 px, got {size}")
    return int(np.floor(REFERENCE_PATCH_SIZE * size / REFERENCE_SIZE + 0.5))


def patch_positions(rng: np.random.Generator | np.random.RandomState, size: int, patch_size: int,
                    n_patches: int = N_PATCHES) -> tuple[np.ndarray, np.ndarray]:
    """Bottom rows ``r`` in ``[p, S)`` and left columns ``c`` in ``[0, S - p)`` of ``n_patches`` patches.

    Drawn columns first, then rows, as the reference does: ``integers`` of a ``Generator``, or
    ``randint`` of a legacy ``RandomState`` (the reference's calls, :func:`reference_plans`).
    Returns ``(rows, cols)``, ``(n,)`` int.
    """
    if not 1 <= patch_size < size:
        raise ConfigError(f"patch size must be within 1..{size - 1} for a {size} px crop, got {patch_size}")
    draw = rng.randint if isinstance(rng, np.random.RandomState) else rng.integers
    cols = draw(0, size - patch_size, n_patches)
    rows = draw(patch_size, size, n_patches)
    return rows, cols


def plant_patches(target: np.ndarray, source: np.ndarray, rows: Sequence[int], cols: Sequence[int],
                  patch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Copy square patches of ``source`` into a copy of ``target`` at the same coordinates.

    Args:
        target, source: ``(S, S, C)`` crops of one geometry.
        rows: bottom rows (exclusive end: the patch covers ``r - p .. r - 1``). cols: left columns.
        patch_size: ``p``.
    Returns:
        ``(patched, mask)``: the patched copy and the ``(S, S)`` bool mask of planted pixels.
    """
    if target.shape != source.shape:
        raise ConfigError(f"target and source crops differ in shape: {target.shape} vs {source.shape}")
    out = target.copy()
    mask = np.zeros(target.shape[:2], dtype=bool)
    for r, c in zip(rows, cols):
        r, c = int(r), int(c)
        if r - patch_size < 0 or c < 0 or r > target.shape[0] or c + patch_size > target.shape[1]:
            raise ConfigError(f"patch (bottom row {r}, column {c}, size {patch_size}) leaves the {target.shape[:2]} crop")
        out[r - patch_size:r, c:c + patch_size] = source[r - patch_size:r, c:c + patch_size]
        mask[r - patch_size:r, c:c + patch_size] = True
    return out, mask


@dataclass(frozen=True)
class PatchPair:
    """One Patch-LFW pair: the LFW pair, its donor and its patches.

    ``donor`` is the photo the patches come from, relative to the LFW images folder (for an
    impostor pair, the pair's second photo). ``donor_pair``: with the reference's rules, the
    earlier genuine pair whose *patched* first image the donor was when it was drawn (``None``:
    the donor is the clean crop).
    """

    index: int
    fold: int
    same: bool
    name_a: str
    num_a: int
    name_b: str
    num_b: int
    donor: str
    donor_name: str
    rows: tuple[int, ...]
    cols: tuple[int, ...]
    coverage: float
    donor_pair: int | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["rows"], d["cols"] = list(self.rows), list(self.cols)
        if d["donor_pair"] is None:
            del d["donor_pair"]
        return d


@dataclass(frozen=True)
class PatchPlan:
    """Where one pair's patches go and where they come from (no pixels).

    Attributes:
        pair: the LFW pair. rows, cols: ``(n_patches,)`` bottom rows and left columns.
        donor_name, donor_path: the photo the patches come from.
        donor_pair: the earlier genuine pair whose patched first image is the donor (reference
            rules; ``None``: the donor's clean crop).
    """

    pair: LFWPair
    rows: np.ndarray
    cols: np.ndarray
    donor_name: str
    donor_path: Path
    donor_pair: int | None = None


def _pair_rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(index)]))


def _donor(pair: LFWPair, rng: np.random.Generator, slots: Sequence[tuple[str, Path]]) -> tuple[str, Path]:
    if not pair.same:
        return pair.name_b, pair.path_b
    while True:  # a random pair image of another identity (most slots are: this ends at once)
        name, path = slots[int(rng.integers(0, len(slots)))]
        if name != pair.name_a:
            return name, path


def pair_slots(pairs: Sequence[LFWPair]) -> list[tuple[str, Path]]:
    """The 12,000 (identity, photo) slots of the pairs in ``pairs.txt`` order (pair k: slots 2k, 2k + 1)."""
    return [s for q in pairs for s in ((q.name_a, q.path_a), (q.name_b, q.path_b))]


def patch_plan(pair: LFWPair, seed: int, size: int, patch_size: int, n_patches: int,
               slots: Sequence[tuple[str, Path]]) -> tuple[np.ndarray, np.ndarray, str, Path]:
    """Where pair ``pair``'s patches go and where they come from: ``(rows, cols, donor_name, donor_path)``.

    Uses the pair's own generator ``SeedSequence([seed, pair.index])``: positions first, then
    (genuine pairs) the donor among ``slots`` (:func:`pair_slots`), redrawn until it is another person.
    """
    rng = _pair_rng(seed, pair.index)
    rows, cols = patch_positions(rng, size, patch_size, n_patches)
    donor_name, donor_path = _donor(pair, rng, slots)
    return rows, cols, donor_name, donor_path


def reference_plans(pairs: Sequence[LFWPair], size: int, patch_size: int, n_patches: int = N_PATCHES) -> dict[int, PatchPlan]:
    """Every pair's plan under the reference's rules (``patches/patch.py``), pair index -> plan.

    The reference seeds NumPy once per class, ``np.random.seed(3)`` before the impostor pairs and
    again before the genuine pairs, and draws in ``pairs.txt`` order from that one stream: per
    pair ``randint(0, S - p, n)`` columns, ``randint(p, S, n)`` rows, and for a genuine pair the
    donor ``np.random.choice(candidates, 1)``, ``candidates`` being the 12,000 pair slots minus the
    slots of the pair's identity. This replays those calls on a legacy ``RandomState(3)`` with the
    same order and ranges (the patch geometry scaled to ``S`` as everywhere), without touching a
    pixel, so any subset gets the plans of the full run.

    The reference patches its images in place: after genuine pair ``j``, slot ``2j`` holds the
    patched image, so a later genuine pair whose donor is slot ``2j`` copies patched pixels (its
    ``donor_pair`` is ``j``); impostor pairs read their own second image, which nothing writes,
    and the genuine loop reloads the clean images first, so only genuine-to-genuine donors carry
    patches.

    Deviation (the project's donor-identity rule, kept): the reference removes the identity's
    slot numbers with ``np.delete`` as *positions* of its image list, which is in file-name order
    (``"10.jpg"`` before ``"2.jpg"``), so it can remove other people and keep the identity; here
    ``candidates`` lists the other identities' slots in slot order, so the donor is always another
    person, with the same one draw over the same number of candidates (``12,000 - #slots of the
    identity``), hence the same stream.

    Args:
        pairs: all of ``pairs.txt`` (:meth:`~xaiface.datasets.LFW.pairs`), in file order.
        size, patch_size, n_patches: ``S``, ``p`` and the patches per image.
    """
    slots = pair_slots(pairs)
    slot_ids = np.arange(len(slots))
    slots_of: dict[str, list[int]] = {}
    for i, (name, _) in enumerate(slots):
        slots_of.setdefault(name, []).append(i)
    plans: dict[int, PatchPlan] = {}
    for same in (False, True):  # the reference's two loops: impostor pairs first, each from seed 3
        rs = np.random.RandomState(REFERENCE_SEED)
        written: dict[int, int] = {}  # slot -> the genuine pair whose patched first image it now holds
        for q in (q for q in pairs if q.same == same):
            rows, cols = patch_positions(rs, size, patch_size, n_patches)
            if not same:
                plans[q.index] = PatchPlan(q, rows, cols, q.name_b, q.path_b)
                continue
            slot = int(rs.choice(np.delete(slot_ids, slots_of[q.name_a]), 1)[0])
            plans[q.index] = PatchPlan(q, rows, cols, slots[slot][0], slots[slot][1], written.get(slot))
            written[2 * q.index] = q.index
    return plans


def select_pairs(pairs: Sequence[Any], n_pairs: int | None = None, folds: Iterable[int] | None = None) -> list[Any]:
    """A balanced subset: per selected fold the first ``k/2`` genuine and ``k/2`` impostor pairs.

    Args:
        pairs: objects with ``fold`` (0-based), ``same`` and ``index``, in file order.
        n_pairs: total pairs wanted (``k = n_pairs / number of folds`` per fold); ``None``: all.
        folds: 0-based folds to keep; ``None``: all folds present.
    Raises:
        ConfigError: ``n_pairs`` too small for the folds, or a fold that is not present.
    """
    present = sorted({p.fold for p in pairs})
    fold_list = present if folds is None else sorted(set(int(f) for f in folds))
    missing = [f + 1 for f in fold_list if f not in present]
    if missing:
        raise ConfigError(f"folds {missing} are not in the data (present: {[f + 1 for f in present]})")
    per_class = None if n_pairs is None else int(n_pairs) // (2 * len(fold_list))
    if per_class is not None and per_class < 1:
        raise ConfigError(f"--pairs {n_pairs} is too few for {len(fold_list)} fold(s): at least {2 * len(fold_list)} "
                          "(one genuine and one impostor pair per fold)")
    return select_fold_pairs(pairs, fold_list, None if per_class is None else 2 * per_class)


def fallback_box_rule(detector: str, select: str) -> dict[str, Any]:
    """The fallback box of a recipe: the pinned full-set median (:data:`PINNED_FALLBACK_BOXES`) when
    there is one for ``(detector, select)``, else the median over a fixed sample (:data:`FALLBACK_SAMPLE_PAIRS`)."""
    pinned = PINNED_FALLBACK_BOXES.get((detector, select))
    if pinned is not None:
        return {"rule": "median of the selected faces of all pairs.txt photos (pinned)", "box": list(pinned)}
    return {"rule": f"median of the selected faces of the photos of fold 1's first {FALLBACK_SAMPLE_PAIRS // 2} "
                    "genuine and impostor pairs", "box": None}


def fallback_box_for(lfw_pairs: Sequence[LFWPair], detector: str, select: str, *, cache: Any = True,
                     workers: int | None = None, progress: bool = False, executor: Any = None,
                     scheduler: str | None = None) -> np.ndarray:
    """``(4,)`` the fallback box ``x1, y1, x2, y2`` for photos without a detected face (see
    :func:`fallback_box_rule`); the sample is detected only for settings without a pinned box."""
    from ..detect.fallback import median_box
    from ..pipeline.batch import locate_faces

    pinned = PINNED_FALLBACK_BOXES.get((detector, select))
    if pinned is not None:
        return np.asarray(pinned, dtype=np.float64)
    sample = select_pairs(lfw_pairs, FALLBACK_SAMPLE_PAIRS, folds=[0])
    photos = sorted({str(p) for q in sample for p in (q.path_a, q.path_b)})
    found = locate_faces(photos, detector=detector, select=select, fallback="image", cache=cache, workers=workers,
                         executor=executor, scheduler=scheduler, progress=progress)
    return median_box([f for p, f in found.faces.items() if p not in found.fallback])


def _hash_chunk(arrays: dict[str, np.ndarray]) -> dict[str, str]:
    return {k: array_sha256(arrays[k]) for k in ARRAYS}


def _content_sha256(params: dict[str, Any], chunk_hashes: Sequence[tuple[str, dict[str, str]]]) -> str:
    """Hash of the parameters and every chunk's array hashes, in the order given (labels: folds for
    the older format, file names for the on-demand one)."""
    h = hashlib.sha256(json.dumps(params, sort_keys=True).encode())
    for label, hashes in chunk_hashes:
        for k in ARRAYS:
            h.update(f"{label}:{k}:{hashes[k]}".encode())
    return h.hexdigest()


def recipe_sha256(params: dict[str, Any]) -> str:
    """A folder's identity in the on-demand format: SHA-256 of its recipe (``manifest["params"]``)."""
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()


def _wanted_pairs(all_pairs: Sequence[LFWPair], n_pairs: int | None, folds: Iterable[int] | None,
                  pair_indices: Iterable[int] | None) -> list[LFWPair]:
    if pair_indices is None:
        return select_pairs(all_pairs, n_pairs, folds)
    wanted = sorted(set(int(i) for i in pair_indices))
    bad = [i for i in wanted if not 0 <= i < len(all_pairs)]
    if bad:
        raise ConfigError(f"pair indices {bad[:5]} outside 0..{len(all_pairs) - 1}")
    return [all_pairs[i] for i in wanted]


def _plans(all_pairs: Sequence[LFWPair], wanted: Sequence[LFWPair], *, reference_rules: bool, seed: int, size: int,
           patch_size: int, n_patches: int) -> dict[int, PatchPlan]:
    """Plans of ``wanted`` and, with reference rules, of every earlier pair whose patched image a
    wanted pair's donor chain reads (its pixels are needed, not stored)."""
    if not reference_rules:
        slots = pair_slots(all_pairs)
        return {q.index: PatchPlan(q, *patch_plan(q, seed, size, patch_size, n_patches, slots)) for q in wanted}
    every = reference_plans(all_pairs, size, patch_size, n_patches)
    out: dict[int, PatchPlan] = {}
    todo = [q.index for q in wanted]
    while todo:
        i = todo.pop()
        if i not in out:
            out[i] = every[i]
            if every[i].donor_pair is not None:
                todo.append(every[i].donor_pair)
    return out


def _patched_images(plans: dict[int, PatchPlan], crops: dict[str, np.ndarray],
                    patch_size: int) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """``index -> (patched, mask)`` of every plan; a donor pair (always earlier) is patched first."""
    out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for i in sorted(plans):
        plan = plans[i]
        source = crops[str(plan.donor_path)] if plan.donor_pair is None else out[plan.donor_pair][0]
        out[i] = plant_patches(crops[str(plan.pair.path_a)], source, plan.rows, plan.cols, patch_size)
    return out


def _recipe(spec: Any, size: int, patch_size: int, n_patches: int, seed: int, detector: str, select: str,
            reference_rules: bool, pairs_sha256: str) -> dict[str, Any]:
    return {"format": FORMAT, "geometry": spec.preprocessing.geometry, "size": size, "patch_size": patch_size,
            "n_patches": n_patches, "seed": REFERENCE_SEED if reference_rules else int(seed), "detector": detector,
            "select": select, "position_rule": _POSITION_RULE, "donor_rule": _DONOR_RULE, **_RULES[reference_rules],
            "fallback_box": fallback_box_rule(detector, select), "lfw_pairs_sha256": pairs_sha256}


def generate_patch_lfw(out_dir: str | os.PathLike, *, model: str = "dlib-resnet", seed: int = 0,
                       n_patches: int = N_PATCHES, patch_size: int | None = None, data: str | os.PathLike | None = None,
                       n_pairs: int | None = None, folds: Iterable[int] | None = None, pair_indices: Iterable[int] | None = None,
                       detector: str = "dlib-hog", select: str = "center", cache: str | os.PathLike | bool | None = True,
                       workers: int | None = None, progress: bool = True, reference_rules: bool = False,
                       executor: Any = None, scheduler: str | None = None,
                       lock_timeout: float | None = None) -> "PatchLFW":
    """Generate the asked-for Patch-LFW pairs into ``out_dir``, or add those it lacks.

    Only the missing pairs are generated: their photos (and donors) are detected and aligned,
    their arrays written as new chunks, then the manifest replaced (atomically, last), so an
    interrupted call leaves the folder as it was; a lock (``.lock``) lets one process add pairs at
    a time (another waits, then adds what is still missing). A pair's arrays are the same
    whichever call generated it, and the folder's identity (its recipe) does not change.

    Args:
        out_dir: the folder (created; a folder of the same recipe is extended).
        model: registered model whose alignment geometry and crop size are used (weights are
            not loaded; models of one geometry share a folder). seed: the generator's seed
            (default 0; with ``reference_rules`` the reference's 3, whatever is passed).
        n_patches: patches per image (27). patch_size: side in px (default ``round(16 * S / 112)``).
        data: the data folder holding ``lfw/``.
        n_pairs, folds: a balanced subset (see :func:`select_pairs`; folds 0-based); default all
            6,000 pairs. pair_indices: explicit pair indices instead (tests).
        detector, select, cache, workers, executor, scheduler: face detection and selection, and where
            detection runs (see :func:`xaiface.pipeline.batch.locate_faces`).
        reference_rules: the reference's random stream and in-place donors (:func:`reference_plans`)
            instead of the project's per-pair streams and clean donors (default False).
        lock_timeout: seconds to wait for another process adding pairs (default ``None``: as long as it takes).
    Returns:
        the :class:`PatchLFW` reader of the folder.
    Raises:
        ConfigError: bad sizes or pair selection, or ``out_dir`` holds a Patch-LFW of another
            recipe, or an older-format one that lacks asked-for pairs (it cannot be extended).
        StorageError: the folder cannot be written, or the lock was not had within ``lock_timeout``.
    """
    from ..io.files import ensure_dir, folder_lock
    from ..models.registry import model_spec

    t0 = time.perf_counter()
    spec = model_spec(model)
    size = int(spec.preprocessing.input_size)
    p = patch_size_for(size) if patch_size is None else int(patch_size)
    if n_patches < 1:
        raise ConfigError(f"n_patches must be >= 1, got {n_patches}")
    patch_positions(np.random.default_rng(0), size, p, 1)  # a bad patch size fails here, before any work
    lfw = LFW(data)
    all_pairs = lfw.pairs()
    wanted = _wanted_pairs(all_pairs, n_pairs, folds, pair_indices)
    params = _recipe(spec, size, p, n_patches, seed, detector, select, reference_rules, _pairs_sha(lfw))
    out = ensure_dir(out_dir, "Patch-LFW folder")
    have = _existing(out, params, wanted)
    if have is not None and not _missing(have, wanted):
        return have
    with folder_lock(out, "Patch-LFW folder", name=LOCK_NAME, timeout=lock_timeout, announce=progress):
        have = _existing(out, params, wanted)  # another process may have added pairs meanwhile
        missing = wanted if have is None else _missing(have, wanted)
        if not missing:
            return have
        manifest = _new_manifest(params, lfw, spec.name, len(all_pairs)) if have is None else have.manifest
        _remove_orphans(out, manifest)
        _extend(out, manifest, lfw, all_pairs, missing, reference_rules=reference_rules, seed=seed, size=size, p=p,
                n_patches=n_patches, detector=detector, select=select, cache=cache, workers=workers, progress=progress,
                t0=t0, executor=executor, scheduler=scheduler)
    return PatchLFW(out)


def _existing(out: Path, params: dict[str, Any], wanted: Sequence[LFWPair]) -> "PatchLFW | None":
    """The folder's reader when it holds this recipe (``None``: nothing there yet).

    Raises:
        ConfigError: another recipe, or an older-format folder that lacks some of ``wanted``.
    """
    if not (out / "manifest.json").is_file():
        return None
    ds = PatchLFW(out)
    if ds.format == FORMAT_V1:
        old = {k: ds.params.get(k) for k in ("geometry", "size", "patch_size", "n_patches", "seed", "detector", "select")}
        new = {k: params[k] for k in old}
        if old != new or params["rules"] != "project":
            raise ConfigError(f"{out}: holds an older-format Patch-LFW of other settings ({old}; asked: {new}, "
                              f"{params['rules']} rules); use another folder or remove it")
        if _missing(ds, wanted):
            raise ConfigError(f"{out}: an older-format ({FORMAT_V1}) Patch-LFW of {ds.n_pairs} pairs, which cannot be "
                              f"extended (its identity is its content hash) and lacks {len(_missing(ds, wanted))} of the "
                              f"{len(wanted)} pairs asked for; use another folder")
        return ds
    if ds.params != params:
        diff = sorted(k for k in set(ds.params) | set(params) if ds.params.get(k) != params.get(k))
        raise ConfigError(f"{out}: holds a Patch-LFW of another recipe (differs in {', '.join(diff)}); "
                          "use another folder for these settings, or remove it")
    return ds


def _missing(ds: "PatchLFW", wanted: Sequence[LFWPair]) -> list[LFWPair]:
    have = ds.pair_indices
    return [q for q in wanted if q.index not in have]


def _new_manifest(params: dict[str, Any], lfw: LFW, model_name: str, total: int) -> dict[str, Any]:
    return {"params": params, "recipe_sha256": recipe_sha256(params), "content_sha256": _content_sha256(params, []),
            "n_pairs": 0, "lfw_pairs_total": total, "generated_for": model_name, "chunks": [],
            "lfw": {"root": str(lfw.root), "pairs_sha256": params["lfw_pairs_sha256"]},
            "faces": {"no_face": [], "fallback_box": params["fallback_box"]["box"]},
            "extensions": [], "mean_coverage": None, "seconds": 0.0, "pairs": []}


def _chunk_name(fold: int, extension: int) -> str:
    return f"fold-{fold + 1:02d}-{extension:04d}.npz"


def _remove_orphans(out: Path, manifest: dict[str, Any]) -> None:
    """Chunks of an interrupted extension (never in the manifest) and temporary files: removed (under the lock)."""
    keep = {c["file"] for c in manifest["chunks"]}
    for f in [*out.glob("fold-*.npz"), *out.glob(".fold-*.tmp"), *out.glob(".manifest.json.*.tmp")]:
        if f.name not in keep:
            f.unlink(missing_ok=True)


def _extend(out: Path, manifest: dict[str, Any], lfw: LFW, all_pairs: Sequence[LFWPair], missing: Sequence[LFWPair], *,
            reference_rules: bool, seed: int, size: int, p: int, n_patches: int, detector: str, select: str, cache: Any,
            workers: int | None, progress: bool, t0: float, executor: Any = None, scheduler: str | None = None) -> None:
    """Generate ``missing`` into new chunks of ``out`` and write the grown manifest (see :func:`generate_patch_lfw`)."""
    from ..io.files import save_npz_atomic
    from ..pipeline.batch import align_faces, locate_faces

    params = manifest["params"]
    plans = _plans(all_pairs, missing, reference_rules=reference_rules, seed=seed, size=size, patch_size=p,
                   n_patches=n_patches)
    photos = sorted({str(x) for pl in plans.values() for x in (pl.pair.path_a, pl.pair.path_b, pl.donor_path)})
    box: list[float] | None = manifest["faces"]["fallback_box"]

    def fixed_box() -> np.ndarray:
        return np.asarray(box, dtype=np.float64) if box is not None else fallback_box_for(
            all_pairs, detector, select, cache=cache, workers=workers, executor=executor, scheduler=scheduler,
            progress=progress)

    faces = locate_faces(photos, detector=detector, select=select, fallback="median", fallback_box=fixed_box,
                         cache=cache, workers=workers, executor=executor, scheduler=scheduler,
                         progress=progress).require_all("photos")
    crops = align_faces(faces.faces, params["geometry"], progress=progress)
    patched = _patched_images(plans, crops, p)

    extension = len(manifest["extensions"]) + 1
    by_fold: dict[int, list[LFWPair]] = {}
    for q in missing:
        by_fold.setdefault(q.fold, []).append(q)
    meta = [PatchPair(**d) for d in _pair_dicts(manifest)]
    chunks = list(manifest["chunks"])
    for fold, qs in sorted(by_fold.items()):
        qs = sorted(qs, key=lambda q: q.index)
        arrays = {"pair_index": np.asarray([q.index for q in qs], dtype=np.int64),
                  "patched": np.stack([patched[q.index][0] for q in qs]),
                  "clean_a": np.stack([crops[str(q.path_a)] for q in qs]),
                  "clean_b": np.stack([crops[str(q.path_b)] for q in qs]),
                  "mask": np.stack([patched[q.index][1] for q in qs]),
                  "rows": np.stack([plans[q.index].rows for q in qs]).astype(np.int16),
                  "cols": np.stack([plans[q.index].cols for q in qs]).astype(np.int16)}
        name = _chunk_name(fold, extension)
        save_npz_atomic(out / name, compressed=True, **arrays)
        chunks.append({"file": name, "fold": fold, "n_pairs": len(qs), "sha256": _hash_chunk(arrays)})
        for q in qs:
            pl = plans[q.index]
            meta.append(PatchPair(q.index, q.fold, q.same, q.name_a, q.num_a, q.name_b, q.num_b,
                                  os.path.relpath(pl.donor_path, lfw.images_dir), pl.donor_name,
                                  tuple(int(r) for r in pl.rows), tuple(int(c) for c in pl.cols),
                                  float(patched[q.index][1].mean()), pl.donor_pair))
    meta.sort(key=lambda m: m.index)
    no_face = set(manifest["faces"]["no_face"]) | {os.path.relpath(x, lfw.images_dir) for x in faces.no_face}
    seconds = round(time.perf_counter() - t0, 1)
    manifest = {
        **manifest, "chunks": chunks, "n_pairs": len(meta),
        "content_sha256": _content_sha256(params, [(c["file"], c["sha256"]) for c in chunks]),
        "faces": {"no_face": sorted(no_face),
                  "fallback_box": box if faces.fallback_box is None else [float(v) for v in faces.fallback_box]},
        "extensions": [*manifest["extensions"], {"pairs_added": len(missing), "photos": len(crops),
                                                 "detections_computed": faces.detections_computed,
                                                 "detections_cached": faces.detections_cached, "seconds": seconds}],
        "mean_coverage": float(np.mean([m.coverage for m in meta])),
        "seconds": round(float(manifest["seconds"]) + seconds, 1),
        "pairs": [m.to_dict() for m in meta],
    }
    _write_manifest(out, manifest)


def _write_manifest(out: Path, manifest: dict[str, Any]) -> None:
    from ..io.files import write_text_atomic

    write_text_atomic(out / "manifest.json", json.dumps(manifest, indent=1))


def _pair_dicts(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for d in manifest["pairs"]:
        d = dict(d)
        d["rows"], d["cols"] = tuple(d["rows"]), tuple(d["cols"])
        out.append(d)
    return out


def _pairs_sha(lfw: LFW) -> str:
    from ..io import file_sha256

    return file_sha256(lfw.lfw_dir / "pairs.txt")


@dataclass
class PatchFold:
    """The arrays of one fold (see the module docstring), with a pair index -> row lookup."""

    fold: int
    arrays: dict[str, np.ndarray]
    row: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.row = {int(k): i for i, k in enumerate(self.arrays["pair_index"])}

    def get(self, name: str, index: int) -> np.ndarray:
        """Array ``name`` (``patched``, ``clean_a``, ``clean_b``, ``mask``...) of pair ``index``."""
        return self.arrays[name][self.row[index]]


@dataclass(frozen=True)
class PatchChunk:
    """One chunk file of a folder: its fold, its name and the SHA-256 of each of its arrays."""

    fold: int
    file: str
    sha256: dict[str, str]


class PatchLFW:
    """Reader of a generated Patch-LFW folder (either format, see the module docstring).

    Every chunk's arrays are checked against the manifest's hashes when the chunk is read.

    Args:
        root: the folder written by :func:`generate_patch_lfw`.
    Raises:
        DatasetError: no (finished) generation there, or an unreadable manifest.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        path = self.root / "manifest.json"
        if not path.is_file():
            raise DatasetError(f"{path}: no Patch-LFW manifest; generate it with `xaiface bench patch-lfw-generate --out {self.root}`")
        try:
            self.manifest = json.loads(path.read_text())
            fmt = self.manifest["params"]["format"]
            if fmt not in (FORMAT, FORMAT_V1):
                raise DatasetError(f"{path}: format {fmt!r}, expected {FORMAT!r} (or the older {FORMAT_V1!r})")
            chunks = self.manifest["chunks"]
            self.chunks = ([PatchChunk(int(f), c["file"], c["sha256"]) for f, c in sorted(chunks.items(), key=lambda x: int(x[0]))]
                           if fmt == FORMAT_V1 else [PatchChunk(int(c["fold"]), c["file"], c["sha256"]) for c in chunks])
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as e:
            raise DatasetError(f"{path}: unreadable Patch-LFW manifest ({e})") from None
        except OSError as e:
            raise DatasetError(f"{path}: cannot read the Patch-LFW manifest ({e.strerror or e})") from None
        self._folds: dict[int, PatchFold] = {}

    def __repr__(self) -> str:
        return f"PatchLFW({str(self.root)!r}, {self.n_pairs} pairs, {self.geometry}, identity {self.identity[:12]})"

    @property
    def format(self) -> str:
        """``xaiface-patch-lfw/2`` (on demand) or ``xaiface-patch-lfw/1`` (older, complete)."""
        return self.manifest["params"]["format"]

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.manifest["params"])

    @property
    def geometry(self) -> str:
        return self.manifest["params"]["geometry"]

    @property
    def size(self) -> int:
        return int(self.manifest["params"]["size"])

    @property
    def patch_size(self) -> int:
        return int(self.manifest["params"]["patch_size"])

    @property
    def reference_rules(self) -> bool:
        """Whether the pairs follow the reference's rules (:func:`reference_plans`)."""
        return self.manifest["params"].get("rules") == "reference"

    @property
    def content_sha256(self) -> str:
        """Hash of the parameters and of every chunk's arrays (of the on-demand format: of the pairs
        present now, so it changes as the folder grows)."""
        return self.manifest["content_sha256"]

    @property
    def identity(self) -> str:
        """What names this data set in run keys: the recipe's hash (on-demand format, stable as the
        folder grows), or the content hash (older format, as before)."""
        return self.manifest["recipe_sha256"] if self.format == FORMAT else self.content_sha256

    @property
    def n_pairs(self) -> int:
        return int(self.manifest["n_pairs"])

    @property
    def complete(self) -> bool:
        """Whether every pair of ``pairs.txt`` is here (older-format folders: 6,000 pairs)."""
        return self.n_pairs == int(self.manifest.get("lfw_pairs_total", 6000))

    @cached_property
    def pairs(self) -> list[PatchPair]:
        """The pairs in ``pairs.txt`` order."""
        return sorted((PatchPair(**d) for d in _pair_dicts(self.manifest)), key=lambda q: q.index)

    @cached_property
    def pair_indices(self) -> frozenset[int]:
        return frozenset(q.index for q in self.pairs)

    @property
    def folds(self) -> list[int]:
        return sorted({c.fold for c in self.chunks})

    def fold(self, fold: int) -> PatchFold:
        """The arrays of one (0-based) fold (its pairs in index order), loaded once, checked and kept.

        Raises:
            DatasetError: no such fold, or a chunk that cannot be read or whose arrays differ
                from the manifest's hashes (the message names the file).
        """
        if fold not in self._folds:
            parts = [self._read_chunk(c) for c in self.chunks if c.fold == fold]
            if not parts:
                raise DatasetError(f"{self.root}: no fold {fold + 1} in this Patch-LFW (folds {[f + 1 for f in self.folds]})")
            arrays = parts[0] if len(parts) == 1 else {k: np.concatenate([a[k] for a in parts]) for k in ARRAYS}
            order = np.argsort(arrays["pair_index"], kind="stable")
            if not np.array_equal(order, np.arange(len(order))):
                arrays = {k: v[order] for k, v in arrays.items()}
            self._folds[fold] = PatchFold(fold, arrays)
        return self._folds[fold]

    def _read_chunk(self, chunk: PatchChunk) -> dict[str, np.ndarray]:
        from ..errors import StorageError
        from ..io.files import load_npz

        path = self.root / chunk.file
        try:
            z = load_npz(path)
            arrays = {k: z[k] for k in ARRAYS}
        except (StorageError, KeyError) as e:
            raise DatasetError(f"{path}: unreadable Patch-LFW chunk ({e})") from None
        got = _hash_chunk(arrays)
        bad = [k for k in ARRAYS if got[k] != chunk.sha256.get(k)]
        if bad:
            raise DatasetError(f"{path}: arrays {bad} differ from the manifest's hashes (a damaged or replaced chunk); "
                               "remove the folder and generate it again")
        return arrays

    def release(self, fold: int) -> None:
        """Forget a loaded fold (memory)."""
        self._folds.pop(fold, None)

    def verify(self) -> str:
        """Read and check every chunk (array hashes), recompute the content hash and return it.

        Raises:
            DatasetError: a chunk differs from what the manifest recorded, or the content hash does.
        """
        for c in self.chunks:
            self._read_chunk(c)  # raises unless its arrays have the manifest's hashes
        labels = [str(c.fold) if self.format == FORMAT_V1 else c.file for c in self.chunks]
        h = _content_sha256(self.manifest["params"], [(lab, c.sha256) for lab, c in zip(labels, self.chunks)])
        if h != self.content_sha256:
            raise DatasetError(f"{self.root}: content hash {h} differs from the manifest's {self.content_sha256}")
        return h
