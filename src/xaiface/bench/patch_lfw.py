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
  so a subset holds exactly the patches of the full set (only the median-box fallback for the
  rare photo without a detected face depends on which photos are aligned, see :mod:`xaiface.pipeline.batch`).

Differences from the reference: crops are stored losslessly (``.npz``; the reference writes
JPEG), the patch geometry is scaled to the model's crop, and the donor is guaranteed to be
another person. Expected coverage: 40.7% of the pixels at the reference sizes (27 patches of
16 px on 112 px), 39.5% with 21 px on 150 px (``16 * 150 / 112 = 21.4`` rounds down).

Layout of a generated folder::

    manifest.json        parameters, per-pair metadata, per-chunk array hashes, content_sha256
    fold-01.npz ...      per fold: pair_index (n,), patched, clean_a, clean_b (n, S, S, 3) uint8,
                         mask (n, S, S) bool, rows, cols (n, n_patches) int16
"""
from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import asdict, dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from ..datasets import LFW, select_fold_pairs
from ..datasets.lfw import LFWPair
from ..errors import ConfigError, DatasetError
from ..io import array_sha256

FORMAT = "xaiface-patch-lfw/1"
REFERENCE_SIZE = 112
"""Crop size of the reference (ArcFace alignment)."""
REFERENCE_PATCH_SIZE = 16
"""Patch side at the reference size."""
N_PATCHES = 27
"""Patches per patched image (paper Sec. 4.2)."""
ARRAYS = ("pair_index", "patched", "clean_a", "clean_b", "mask", "rows", "cols")


def patch_size_for(size: int) -> int:
    """The reference's 16 px patch scaled to a ``size`` px crop: ``round(16 * size / 112)`` (half up)."""
    if size < 8:
        raise ConfigError(f"crop size must be at least 8 px, got {size}")
    return int(np.floor(REFERENCE_PATCH_SIZE * size / REFERENCE_SIZE + 0.5))


def patch_positions(rng: np.random.Generator, size: int, patch_size: int, n_patches: int = N_PATCHES) -> tuple[np.ndarray, np.ndarray]:
    """Bottom rows ``r`` in ``[p, S)`` and left columns ``c`` in ``[0, S - p)`` of ``n_patches`` patches.

    Drawn columns first, then rows, as the reference does. Returns ``(rows, cols)``, ``(n,)`` int.
    """
    if not 1 <= patch_size < size:
        raise ConfigError(f"patch size must be within 1..{size - 1} for a {size} px crop, got {patch_size}")
    cols = rng.integers(0, size - patch_size, n_patches)
    rows = rng.integers(patch_size, size, n_patches)
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
    impostor pair, the pair's second photo).
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

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["rows"], d["cols"] = list(self.rows), list(self.cols)
        return d


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


def _hash_chunk(arrays: dict[str, np.ndarray]) -> dict[str, str]:
    return {k: array_sha256(arrays[k]) for k in ARRAYS}


def _content_sha256(params: dict[str, Any], chunk_hashes: dict[str, dict[str, str]]) -> str:
    h = hashlib.sha256(json.dumps(params, sort_keys=True).encode())
    for fold in sorted(chunk_hashes, key=int):
        for k in ARRAYS:
            h.update(f"{fold}:{k}:{chunk_hashes[fold][k]}".encode())
    return h.hexdigest()


def generate_patch_lfw(out_dir: str | os.PathLike, *, model: str = "dlib-resnet", seed: int = 0,
                       n_patches: int = N_PATCHES, patch_size: int | None = None, data: str | os.PathLike | None = None,
                       n_pairs: int | None = None, folds: Iterable[int] | None = None, pair_indices: Iterable[int] | None = None,
                       detector: str = "dlib-hog", select: str = "center", cache: str | os.PathLike | bool | None = True,
                       workers: int | None = None, progress: bool = True, executor: Any = None,
                       scheduler: str | None = None) -> "PatchLFW":
    """Generate Patch-LFW for one model's crop geometry and write it to ``out_dir``.

    Args:
        out_dir: folder to write (created; an existing generation there is replaced).
        model: registered model whose alignment geometry and crop size are used (weights are
            not loaded). seed: the generator's seed (default 0).
        n_patches: patches per image (27). patch_size: side in px (default ``round(16 * S / 112)``).
        data: the data folder holding ``lfw/``.
        n_pairs, folds: a balanced subset (see :func:`select_pairs`; folds 0-based); default all
            6,000 pairs. pair_indices: explicit pair indices instead (tests).
        detector, select, cache, workers: face detection and selection (see :func:`xaiface.pipeline.batch.locate_faces`).
    Returns:
        the :class:`PatchLFW` reader of the written folder.
    """
    from ..models.registry import model_spec
    from ..pipeline.batch import align_faces, locate_faces

    t0 = time.perf_counter()
    spec = model_spec(model)
    geometry, size = spec.preprocessing.geometry, int(spec.preprocessing.input_size)
    p = patch_size_for(size) if patch_size is None else int(patch_size)
    if n_patches < 1:
        raise ConfigError(f"n_patches must be >= 1, got {n_patches}")
    lfw = LFW(data)
    all_pairs = lfw.pairs()
    if pair_indices is not None:
        wanted = sorted(set(int(i) for i in pair_indices))
        bad = [i for i in wanted if not 0 <= i < len(all_pairs)]
        if bad:
            raise ConfigError(f"pair indices {bad[:5]} outside 0..{len(all_pairs) - 1}")
        chosen = [all_pairs[i] for i in wanted]
    else:
        chosen = select_pairs(all_pairs, n_pairs, folds)
    slots = pair_slots(all_pairs)
    plans = [(q, *patch_plan(q, seed, size, p, n_patches, slots)) for q in chosen]
    photos = {str(q.path_a) for q in chosen} | {str(q.path_b) for q in chosen} | {str(d) for *_, d in plans}
    faces = locate_faces(sorted(photos), detector=detector, select=select, fallback="median", cache=cache,
                         workers=workers, executor=executor, scheduler=scheduler, progress=progress).require_all("photos")
    crops = align_faces(faces.faces, geometry, progress=progress)

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    manifest_path = out / "manifest.json"
    if manifest_path.exists():
        manifest_path.unlink()  # a half-written folder never passes for a finished one
    for old in out.glob("fold-*.npz"):
        old.unlink()
    params = {"format": FORMAT, "geometry": geometry, "size": size, "patch_size": p, "n_patches": n_patches,
              "seed": int(seed), "detector": detector, "select": select, "model_for_geometry": spec.name,
              "position_rule": "c ~ U{0..S-p-1}, bottom row r ~ U{p..S-1} (numpy randint, as the reference)",
              "donor_rule": "impostor: the pair's second photo; genuine: a random pair photo of another identity"}
    meta: list[PatchPair] = []
    chunk_hashes: dict[str, dict[str, str]] = {}
    by_fold: dict[int, list] = {}
    for plan in plans:
        by_fold.setdefault(plan[0].fold, []).append(plan)
    for fold, fold_plans in sorted(by_fold.items()):
        arrays: dict[str, list] = {k: [] for k in ARRAYS}
        for q, rows, cols, donor_name, donor_path in fold_plans:
            clean_a, clean_b = crops[str(q.path_a)], crops[str(q.path_b)]
            patched, mask = plant_patches(clean_a, crops[str(donor_path)], rows, cols, p)
            for k, v in (("pair_index", q.index), ("patched", patched), ("clean_a", clean_a), ("clean_b", clean_b),
                         ("mask", mask), ("rows", rows.astype(np.int16)), ("cols", cols.astype(np.int16))):
                arrays[k].append(v)
            meta.append(PatchPair(q.index, q.fold, q.same, q.name_a, q.num_a, q.name_b, q.num_b,
                                  os.path.relpath(donor_path, lfw.images_dir), donor_name,
                                  tuple(int(r) for r in rows), tuple(int(c) for c in cols), float(mask.mean())))
        stacked = {k: np.asarray(v, dtype=np.int64) if k == "pair_index" else np.stack(v) for k, v in arrays.items()}
        name = f"fold-{fold + 1:02d}.npz"
        tmp = out / (name + ".tmp.npz")
        np.savez_compressed(tmp, **stacked)
        os.replace(tmp, out / name)
        chunk_hashes[str(fold)] = _hash_chunk(stacked)
    no_face = sorted(os.path.relpath(x, lfw.images_dir) for x in faces.no_face)
    manifest = {
        "params": params,
        "content_sha256": _content_sha256(params, chunk_hashes),
        "n_pairs": len(meta),
        "chunks": {fold: {"file": f"fold-{int(fold) + 1:02d}.npz", "sha256": h} for fold, h in chunk_hashes.items()},
        "lfw": {"root": str(lfw.root), "pairs_sha256": _pairs_sha(lfw)},
        "faces": {"photos": len(crops), "no_face": no_face,
                  "fallback_box": None if faces.fallback_box is None else [float(v) for v in faces.fallback_box],
                  "detections_computed": faces.detections_computed, "detections_cached": faces.detections_cached},
        "mean_coverage": float(np.mean([m.coverage for m in meta])),
        "seconds": round(time.perf_counter() - t0, 1),
        "pairs": [m.to_dict() for m in meta],
    }
    tmp = out / "manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=1))
    os.replace(tmp, manifest_path)
    return PatchLFW(out)


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


class PatchLFW:
    """Reader of a generated Patch-LFW folder.

    Args:
        root: the folder written by :func:`generate_patch_lfw`.
    Raises:
        DatasetError: no (finished) generation there.
    """

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        path = self.root / "manifest.json"
        if not path.is_file():
            raise DatasetError(f"{path}: no Patch-LFW manifest; generate it with `xaiface bench patch-lfw-generate --out {self.root}`")
        try:
            self.manifest = json.loads(path.read_text())
            if self.manifest["params"]["format"] != FORMAT:
                raise DatasetError(f"{path}: format {self.manifest['params']['format']!r}, expected {FORMAT!r}")
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise DatasetError(f"{path}: unreadable Patch-LFW manifest ({e})") from None
        self._folds: dict[int, PatchFold] = {}

    def __repr__(self) -> str:
        return f"PatchLFW({str(self.root)!r}, {self.n_pairs} pairs, {self.geometry}, sha256 {self.content_sha256[:12]})"

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
    def content_sha256(self) -> str:
        return self.manifest["content_sha256"]

    @property
    def n_pairs(self) -> int:
        return int(self.manifest["n_pairs"])

    @cached_property
    def pairs(self) -> list[PatchPair]:
        """The pairs in ``pairs.txt`` order."""
        out = []
        for d in self.manifest["pairs"]:
            d = dict(d)
            d["rows"], d["cols"] = tuple(d["rows"]), tuple(d["cols"])
            out.append(PatchPair(**d))
        return sorted(out, key=lambda q: q.index)

    @property
    def folds(self) -> list[int]:
        return sorted(int(f) for f in self.manifest["chunks"])

    def fold(self, fold: int) -> PatchFold:
        """The arrays of one (0-based) fold, loaded once and kept."""
        if fold not in self._folds:
            info = self.manifest["chunks"].get(str(fold))
            if info is None:
                raise DatasetError(f"{self.root}: no fold {fold + 1} in this Patch-LFW (folds {[f + 1 for f in self.folds]})")
            path = self.root / info["file"]
            try:
                with np.load(path, allow_pickle=False) as z:
                    arrays = {k: z[k] for k in ARRAYS}
            except (OSError, KeyError, ValueError) as e:
                raise DatasetError(f"{path}: unreadable Patch-LFW chunk ({e})") from None
            self._folds[fold] = PatchFold(fold, arrays)
        return self._folds[fold]

    def release(self, fold: int) -> None:
        """Forget a loaded fold (memory)."""
        self._folds.pop(fold, None)

    def verify(self) -> str:
        """Recompute every array hash and the content hash; return it.

        Raises:
            DatasetError: a chunk differs from what the manifest recorded.
        """
        got: dict[str, dict[str, str]] = {}
        for f in self.folds:
            got[str(f)] = _hash_chunk(self.fold(f).arrays)
            want = self.manifest["chunks"][str(f)]["sha256"]
            bad = [k for k in ARRAYS if got[str(f)][k] != want[k]]
            if bad:
                raise DatasetError(f"{self.root / self.manifest['chunks'][str(f)]['file']}: arrays {bad} differ from the manifest's hashes")
        h = _content_sha256(self.manifest["params"], got)
        if h != self.content_sha256:
            raise DatasetError(f"{self.root}: content hash {h} differs from the manifest's {self.content_sha256}")
        return h
