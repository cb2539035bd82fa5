"""``xaiface bench status DIR``: what a Patch-LFW benchmark folder holds and what is missing.

Reads, never writes: the data sets in the folder (``patch-lfw-*/manifest.json``: pairs present,
content hash, geometry), the embeddings files (``embeddings-*.npz``: readable, pairs) and the
runs of ``results.sqlite`` (opened read-only by :func:`.store.read_runs`, so a run filling the
store meanwhile is not disturbed and a damaged row is reported, not dropped). Per run: method,
model, the settings that name it, pairs finished / failed / damaged, and, for each standard
subset, how many of its pairs are stored.

Standard subsets (:data:`STANDARD_SUBSETS`): all 6,000 pairs of LFW View 2, and the balanced
subsets of 1,200 (120 per fold), 600, 300 and 100 pairs that ``--pairs N`` selects
(:func:`.patch_lfw.select_pairs`: per fold the first ``N/20`` genuine and ``N/20`` impostor pairs).
They are computed on View 2's fixed layout (:func:`view2_layout`), so they do not depend on which
pairs a (partial) data set holds. A subset is complete for a run when each of its pairs is stored,
finished or failed (a failed pair is not recomputed on resume).
"""
from __future__ import annotations

import functools
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

from ..errors import StorageError, XaifaceError
from ..io.files import load_npz
from .patch_lfw import PatchLFW, select_pairs
from .protocol import DELETION_PERCENTS, DPR_PERCENTS
from .runner import embeddings_path
from .store import StoredRun, read_runs

STANDARD_SUBSETS: tuple[int, ...] = (6000, 1200, 600, 300, 100)
"""Pairs of the standard subsets: all of View 2, then 120, 60, 30 and 10 per fold."""
VIEW2_FOLDS, VIEW2_PER_CLASS = 10, 300
"""LFW View 2: 10 folds of 300 genuine then 300 impostor pairs (``pairs.txt`` order)."""


@dataclass(frozen=True)
class View2Pair:
    """One pair's place in LFW View 2: ``index`` in ``pairs.txt`` order, 0-based ``fold``, ``same``."""

    index: int
    fold: int
    same: bool


def view2_layout() -> list[View2Pair]:
    """The 6,000 pairs of View 2 as :class:`xaiface.datasets.LFW` numbers them (each fold: 300
    genuine, then 300 impostor pairs)."""
    per_fold = 2 * VIEW2_PER_CLASS
    return [View2Pair(f * per_fold + k, f, k < VIEW2_PER_CLASS) for f in range(VIEW2_FOLDS) for k in range(per_fold)]


@functools.lru_cache(maxsize=None)
def subset_pairs(n_pairs: int) -> frozenset[int]:
    """The pair indices of the standard subset of ``n_pairs`` (6,000: all)."""
    layout = view2_layout()
    return frozenset(q.index for q in select_pairs(layout, None if n_pairs >= len(layout) else n_pairs))


@dataclass
class SubsetStatus:
    """One standard subset for one run (or for a data set).

    Attributes:
        pairs: the subset's size (6000, 1200, ...). needed: its pairs. finished, failed: of
            them, stored without / with an error (a data set: present / 0).
    """

    pairs: int
    needed: int
    finished: int
    failed: int = 0

    @property
    def done(self) -> int:
        return self.finished + self.failed

    @property
    def complete(self) -> bool:
        return self.done == self.needed

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "done": self.done, "complete": self.complete}

    def text(self) -> str:
        failed = f" ({self.failed} failed)" if self.failed else ""
        return f"{self.pairs}: {self.done}/{self.needed}{failed}{' complete' if self.complete else ''}"


def _subsets(finished: frozenset[int], failed: frozenset[int] = frozenset()) -> list[SubsetStatus]:
    return [SubsetStatus(n, len(need), len(need & finished), len(need & failed))
            for n in STANDARD_SUBSETS for need in (subset_pairs(n),)]


@dataclass
class DatasetStatus:
    """A Patch-LFW folder inside the benchmark folder.

    Attributes:
        path: its folder. error: why it could not be read (the other fields are then empty).
        pairs, folds (1-based), identity (what names it in run keys:
        :attr:`~.patch_lfw.PatchLFW.identity`), geometry, size, patch_size, n_patches, seed,
        reference_rules: from its manifest.
        missing_files: chunk files the manifest names that are not there.
        subsets: how many of each standard subset's pairs it holds.
    """

    path: str
    error: str | None = None
    pairs: int = 0
    folds: list[int] = field(default_factory=list)
    identity: str | None = None
    geometry: str | None = None
    size: int | None = None
    patch_size: int | None = None
    n_patches: int | None = None
    seed: int | None = None
    reference_rules: bool | None = None
    missing_files: list[str] = field(default_factory=list)
    subsets: list[SubsetStatus] = field(default_factory=list)

    @classmethod
    def read(cls, root: Path) -> "DatasetStatus":
        try:
            ds = PatchLFW(root)
            p = ds.params
            missing = [c.file for c in ds.chunks if not (root / c.file).is_file()]
            indices = frozenset(q.index for q in ds.pairs)
            return cls(str(root), None, ds.n_pairs, [f + 1 for f in ds.folds], ds.identity, ds.geometry, ds.size,
                       ds.patch_size, p.get("n_patches"), p.get("seed"), ds.reference_rules, missing,
                       _subsets(indices))
        except (XaifaceError, KeyError, TypeError, ValueError) as e:
            return cls(str(root), f"{type(e).__name__}: {e}")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "subsets": [s.to_dict() for s in self.subsets]}

    def text(self) -> list[str]:
        name = Path(self.path).name
        if self.error:
            return [f"data set {name}: unreadable ({self.error})"]
        ref = {True: ", reference rules", False: "", None: ""}[self.reference_rules]
        lines = [f"data set {name}: {self.pairs} pairs in folds {_ranges(self.folds)}, {self.geometry} crops "
                 f"({self.size} px, {self.n_patches} patches of {self.patch_size} px, seed {self.seed}{ref}), "
                 f"identity {str(self.identity)[:16]}",
                 "  standard subsets present: " + ", ".join(s.text() for s in self.subsets)]
        if self.missing_files:
            lines.append(f"  missing chunk files: {', '.join(self.missing_files)}")
        return lines


@dataclass
class EmbeddingsStatus:
    """An ``embeddings-<model>-<key>.npz`` file: ``pairs`` it holds, or ``error`` when unreadable."""

    path: str
    pairs: int | None = None
    error: str | None = None

    @classmethod
    def read(cls, path: Path) -> "EmbeddingsStatus":
        try:
            arrays = load_npz(path)
            return cls(str(path), int(len(arrays["pair_index"])))
        except (XaifaceError, KeyError) as e:
            return cls(str(path), None, f"{type(e).__name__}: {e}")

    def text(self) -> str:
        name = Path(self.path).name
        return f"embeddings {name}: " + (f"unreadable ({self.error})" if self.error else f"{self.pairs} pairs")


@dataclass
class RunStatus:
    """One run of the results database.

    Attributes:
        run_key, method, model: its name. settings: the configuration values that tell it from
            other runs of the method (rule, jpeg, threshold, params, non-default steps,
            reference rules). dataset: the folder of its data set here (None: not in this folder);
            embeddings: its embeddings file when present here. finished, failed, damaged: pair
            counts (see :class:`.store.StoredRun`). subsets: per standard subset.
    """

    run_key: str
    method: str
    model: str
    settings: dict[str, Any]
    dataset_sha256: str | None
    dataset: str | None
    embeddings: str | None
    finished: int
    failed: int
    damaged: int
    subsets: list[SubsetStatus]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "subsets": [s.to_dict() for s in self.subsets]}

    def text(self) -> list[str]:
        settings = ", ".join(f"{k} {json.dumps(v, sort_keys=True) if isinstance(v, (dict, list)) else v}"
                             for k, v in self.settings.items())
        where = Path(self.dataset).name if self.dataset else f"not in this folder (sha256 {str(self.dataset_sha256)[:16]})"
        damaged = f", {self.damaged} damaged (recomputed on the next run)" if self.damaged else ""
        return [f"run {self.run_key}  {self.method}  {self.model}  {settings}",
                f"  pairs: {self.finished} finished, {self.failed} failed{damaged}; data set {where}; "
                f"embeddings {Path(self.embeddings).name if self.embeddings else 'missing'}",
                "  subsets: " + ", ".join(s.text() for s in self.subsets)]


def _settings(cfg: dict[str, Any]) -> dict[str, Any]:
    out = {k: cfg[k] for k in ("rule", "jpeg", "threshold", "params") if k in cfg}
    if cfg.get("reference_rules"):
        out["reference_rules"] = True
    for k, default in (("dpr_percents", DPR_PERCENTS), ("deletion_percents", DELETION_PERCENTS)):
        if k in cfg and list(cfg[k]) != list(default):
            out[k] = cfg[k]
    return out


@dataclass
class BenchStatus:
    """Everything :func:`bench_status` found in a benchmark folder."""

    folder: str
    datasets: list[DatasetStatus]
    embeddings: list[EmbeddingsStatus]
    results: str
    runs: list[RunStatus]

    def to_dict(self) -> dict[str, Any]:
        return {"folder": self.folder, "datasets": [d.to_dict() for d in self.datasets],
                "embeddings": [asdict(e) for e in self.embeddings], "results": self.results,
                "runs": [r.to_dict() for r in self.runs], "missing": self.missing()}

    def missing(self) -> list[str]:
        """What the folder lacks, one line each (empty: nothing)."""
        out = []
        if not self.datasets:
            out.append("no Patch-LFW data set in this folder (patch-lfw-*/manifest.json)")
        for d in self.datasets:
            if d.error:
                out.append(f"data set {Path(d.path).name} is unreadable")
            elif d.missing_files:
                out.append(f"data set {Path(d.path).name} lacks {', '.join(d.missing_files)}")
            elif not d.subsets[0].complete:
                out.append(f"data set {Path(d.path).name} holds {d.subsets[0].finished} of the 6000 pairs")
        for r in self.runs:
            if r.dataset is None:
                out.append(f"run {r.run_key} ({r.method}): its data set is not in this folder")
            if r.embeddings is None:
                out.append(f"run {r.run_key} ({r.method}): its embeddings file is not in this folder")
            if not r.subsets[0].complete:
                first = next((s for s in reversed(r.subsets) if not s.complete), r.subsets[0])
                out.append(f"run {r.run_key} ({r.method}): {r.subsets[0].needed - r.subsets[0].done} of the 6000 pairs; "
                           f"the smallest incomplete subset is {first.pairs} ({first.needed - first.done} to go)")
        return out

    def text(self) -> str:
        lines = [f"benchmark folder {self.folder}"]
        for d in self.datasets:
            lines += d.text()
        lines += [e.text() for e in self.embeddings] or ["embeddings: none"]
        lines.append(f"{Path(self.results).name}: {len(self.runs)} run(s)")
        for r in self.runs:
            lines += r.text()
        missing = self.missing()
        lines += ["missing:"] + [f"  {m}" for m in missing] if missing else ["missing: nothing"]
        return "\n".join(lines) + "\n"


def _ranges(xs: Sequence[int]) -> str:
    """``[1, 2, 3, 5]`` -> ``"1-3,5"``."""
    parts: list[str] = []
    for x in sorted(xs):
        if parts and x == int(parts[-1].split("-")[-1]) + 1:
            parts[-1] = f"{parts[-1].split('-')[0]}-{x}"
        else:
            parts.append(str(x))
    return ",".join(parts) or "-"


def bench_status(folder: str | os.PathLike) -> BenchStatus:
    """What a benchmark folder holds (see the module docstring); reads only.

    Args:
        folder: the ``--out`` folder of ``xaiface bench patch-lfw``.
    Returns:
        :class:`BenchStatus` (``.text()`` for people, ``.to_dict()`` for JSON).
    Raises:
        StorageError: the folder does not exist, or its ``results.sqlite`` is missing, unreadable
            or damaged.
    """
    root = Path(folder)
    if not root.is_dir():
        raise StorageError(f"{root}: no such benchmark folder")
    datasets = [DatasetStatus.read(m.parent) for m in sorted(root.glob("patch-lfw-*/manifest.json"))]
    embeddings = [EmbeddingsStatus.read(p) for p in sorted(root.glob("embeddings-*.npz"))]
    results = root / "results.sqlite"
    stored: list[StoredRun] = read_runs(results)
    by_sha = {d.identity: d.path for d in datasets if d.identity}
    emb_names = {Path(e.path).name: e.path for e in embeddings if e.error is None}
    runs = []
    for r in stored:
        sha = r.config.get("dataset_sha256")
        emb = embeddings_path(root, r.model, r.config.get("weights_sha256"), str(sha)).name
        runs.append(RunStatus(r.run_key, r.method, r.model, _settings(r.config), sha, by_sha.get(sha), emb_names.get(emb),
                              len(r.finished), len(r.failed), len(r.damaged),
                              _subsets(r.finished, r.failed)))
    return BenchStatus(str(root), datasets, embeddings, str(results), runs)
