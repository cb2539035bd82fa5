"""``xaiface study factors``: how an influencing factor changes recognition and its explanations.

For one factor and a list of levels, over LFW View 2 pairs (all 6,000, or a subset):

1. **Clean reference.** Every photo is detected (cached), one face chosen (``center``, as
   ``xaiface eval lfw``; photos without a face get the median-box fallback of that command),
   aligned and embedded (mirror-averaged by default). The *clean threshold* is the EER threshold
   of the clean scores of the same pairs.
2. **Each level.** The transform is applied to the photo (both photos of each pair, or only the
   second with ``apply="probe"``), and the pipeline reruns on the transformed photo: detection
   (that is part of the factor's effect), face choice, alignment, embedding. A transformed photo
   where the detector finds no face is counted as a *detection failure* and scored with the same
   median-box fallback, so every pair keeps a score. With ``reuse_landmarks=True`` the clean
   photo's face and landmarks align the transformed photo instead (no detection rerun); such a
   run is a different run (its own key) and reported as such.
3. **Metrics per level:** EER (at its own threshold), FMR and FNMR at the clean threshold, 10-fold
   LFW accuracy, detection failures, bits per pixel (codecs: the exact bitstream size), PSNR of
   the transformed photo against the clean one.
4. **Explanation drift** on a fixed balanced subset of pairs (``drift_pairs``): the xSSAB
   combined map of each transformed photo against its partner, compared with the clean pair's map
   of the same photo by Spearman rank correlation and by the overlap of the top-10% pixels
   (``|top(clean) ∩ top(degraded)| / k``). Maps are compared in the aligned crop's coordinates:
   both crops are aligned to the same template, so a pixel means the same facial location in
   both (the landmarks themselves may move under the transform; that is part of the drift).

Everything is stored as it is produced (SQLite, one row per photo and level, committed per
batch), so an interrupted study resumes where it stopped; ``max_new_images`` stops a run after
that many newly computed photos (time-boxed runs and the resume test). A run is keyed by its whole
configuration, the digest of user weights included (another ``weights`` file is another run, in
the same folder), and each stored row carries a checksum verified on read (a row that does not
verify is dropped with a warning and computed again).
"""
from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import ConfigError, DatasetError, XaifaceError
from ..io.files import add_column, ensure_dir, open_database, payload_checksum, storage_faults, write_text_atomic
from .transforms import factor_info, get_transform, psnr

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (run_key TEXT PRIMARY KEY, config TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS images (
    run_key TEXT NOT NULL, level TEXT NOT NULL, path TEXT NOT NULL,
    nbytes INTEGER, pixels INTEGER, psnr REAL, detected INTEGER, fallback INTEGER, face_found INTEGER,
    emb BLOB, emb_mirror BLOB, error TEXT, seconds REAL, created REAL NOT NULL, checksum TEXT,
    PRIMARY KEY (run_key, level, path)
);
CREATE TABLE IF NOT EXISTS drift (
    run_key TEXT NOT NULL, level TEXT NOT NULL, pair INTEGER NOT NULL, image INTEGER NOT NULL,
    spearman REAL, top10 REAL, error TEXT, created REAL NOT NULL, checksum TEXT,
    PRIMARY KEY (run_key, level, pair, image)
);
"""


@dataclass
class StudyConfig:
    """What defines a study run (its key is a hash of everything but the levels).

    Attributes:
        factor, params: the registered factor and its fixed parameters.
        model, detector, select, flip: the pipeline (``flip``: mirror-averaged embeddings).
        apply: ``"both"`` photos of a pair, or ``"probe"`` (the second photo only).
        reuse_landmarks: align transformed photos with the clean photo's face (no detection rerun).
        folds: 0-based folds (``None``: all); pairs_per_fold: the first N/2 genuine + N/2
            impostor pairs of each fold (``None``: all 600).
        drift_pairs: pairs (spread evenly over the folds) whose xSSAB maps are compared; 0 = none.
        weights: SHA-256 of the user's weights (``None``: the model's packaged weights; left out of
            the key then, so studies stored before this field keep their keys).
    """

    factor: str
    params: dict[str, Any] = field(default_factory=dict)
    model: str = "dlib-resnet"
    detector: str = "dlib-hog"
    select: str = "center"
    flip: bool = True
    apply: str = "both"
    reuse_landmarks: bool = False
    folds: list[int] | None = None
    pairs_per_fold: int | None = None
    drift_pairs: int = 300
    weights: str | None = None

    def key(self) -> str:
        d = asdict(self)
        if d["weights"] is None:
            del d["weights"]
        return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def level_key(level: float | None) -> str:
    return "clean" if level is None else repr(float(level))


# ---------------------------------------------------------------------------------------------
# per-photo work (runs on the run's executor: this process or Dask workers)


def register_plugins(specs: Sequence[dict[str, Any]] | None) -> None:
    """Register plug-in codecs: ``{"kind": "module", "name": MOD}`` imports a module that calls
    :func:`~xaiface.factors.register_codec`; ``{"kind": "command", "name", "encode", "decode",
    "suffix", "levels"}`` registers a :class:`~xaiface.factors.CommandCodec`. Specs are plain data,
    so worker processes register the same codecs; a command codec may replace a plug-in of its name
    (the same spec registered again), never a built-in factor."""
    import importlib

    from .transforms import CommandCodec, list_factors, register_codec

    for spec in specs or []:
        if spec.get("kind") == "module":
            try:
                importlib.import_module(spec["name"])
            except ImportError as e:
                raise ConfigError(f"plug-in module {spec['name']!r} cannot be imported ({e})") from None
        elif spec.get("kind") == "command":
            register_codec(spec["name"], CommandCodec.factory(spec["encode"], spec["decode"], spec.get("suffix", ".bin")),
                           default_levels=spec.get("levels") or (), description=f"external codec: {spec['encode']}",
                           replace=spec["name"] in list_factors("plugin"))  # registered again (CLI, study, workers)
        else:
            raise ConfigError(f"unknown plug-in spec {spec!r}")


def process_photo(task: dict[str, Any]) -> dict[str, Any]:
    """Transform one photo, rerun detection (or reuse the clean face), choose and align the face.

    ``task``: path, factor, params, level (``None``: clean), face (the clean face's dict, used when
    ``reuse`` or for the clean level), fallback_box, select, geometry, reuse, detector (and
    detector_kwargs; default: the process's :func:`~xaiface.detect.batch.worker_detector`).
    Returns the crop (or an error) with nbytes, pixels, psnr, detected, fallback, face_found.
    """
    from ..align import align_face
    from ..detect.batch import worker_detector
    from ..io import load_image
    from ..pipeline.batch import locate_in_image
    from ..types import DetectedFace

    t0 = time.perf_counter()
    out: dict[str, Any] = {"path": task["path"], "nbytes": None, "pixels": None, "psnr": None, "detected": None,
                           "fallback": None, "face_found": None, "crop": None, "error": None}
    try:
        image = load_image(task["path"])
        out["pixels"] = int(image.shape[0] * image.shape[1])
        if task["level"] is not None:
            t = get_transform(task["factor"], task["level"], **task["params"])
            r = t(image)
            out["nbytes"], out["psnr"] = r.nbytes, psnr(image, r.image)
            if "face_found" in r.info:
                out["face_found"] = bool(r.info["face_found"])
            photo = r.image
        else:
            photo = image
        clean_face = DetectedFace.from_dict(task["face"])
        if task["level"] is None or task["reuse"]:
            face = clean_face
            out["detected"] = None if task["level"] is not None else (not clean_face.fallback)
            out["fallback"] = bool(clean_face.fallback)
        else:
            located = locate_in_image(photo, worker_detector(task.get("detector"), task.get("detector_kwargs")), select=task["select"], fallback_box=task["fallback_box"],
                                      source=task["path"])
            face = located.face
            out["detected"], out["fallback"] = located.detected, not located.detected
        out["crop"] = align_face(photo, face, task["geometry"], source=task["path"]).image
    except XaifaceError as e:
        out["error"] = str(e)
    out["seconds"] = time.perf_counter() - t0
    return out


# ---------------------------------------------------------------------------------------------
# the store


_IMAGE_COLUMNS = ("run_key", "level", "path", "nbytes", "pixels", "psnr", "detected", "fallback", "face_found", "emb",
                  "emb_mirror", "error", "seconds")
_DRIFT_COLUMNS = ("run_key", "level", "pair", "image", "spearman", "top10", "error")


class StudyStore:
    """The SQLite file of a study folder (``study.sqlite``); every row carries a checksum of its values."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.con = open_database(self.path, _SCHEMA, "study")
        self.dropped = 0  # rows whose checksum did not verify (dropped, computed again)
        with storage_faults(self.path, "cannot update the study database"):
            for table, cols in (("images", _IMAGE_COLUMNS), ("drift", _DRIFT_COLUMNS)):
                if add_column(self.con, table, "checksum"):  # a store from before checksums: sign its rows once
                    rows = self.con.execute(f"SELECT rowid, {', '.join(cols)} FROM {table}").fetchall()
                    with self.con:
                        self.con.executemany(f"UPDATE {table} SET checksum = ? WHERE rowid = ?",
                                             [(payload_checksum(r[1:]), r[0]) for r in rows])

    def close(self) -> None:
        self.con.close()

    def register(self, key: str, config: dict[str, Any]) -> None:
        """Record a run's configuration. A run of this key already stored with other weights
        (``config["weights_sha256"]``, the digest of the weights actually loaded) is refused.

        Raises:
            ConfigError: the stored run used other weights (the message says what to do).
        """
        with storage_faults(self.path, "cannot register the study"), self.con:
            self.con.execute("INSERT OR IGNORE INTO runs VALUES (?, ?, ?)", (key, json.dumps(config, sort_keys=True), time.time()))
            stored = json.loads(self.con.execute("SELECT config FROM runs WHERE run_key=?", (key,)).fetchone()[0])
        old, new = stored.get("weights_sha256"), config.get("weights_sha256")
        if old is not None and new is not None and old != new:
            raise ConfigError(f"{self.path}: run {key} was computed with the model's weights sha256 {old[:12]}..., "
                              f"this run's weights are sha256 {new[:12]}...; use another --out or delete {self.path}")

    def _verified(self, table: str, cols: Sequence[str], key: str, level: str) -> list[tuple[Any, ...]]:
        """A level's rows of ``table`` whose checksum verifies. A row that does not verify is deleted
        with the other rows of its photo (images) or pair (drift), which are then computed again;
        one warning says so."""
        group = 2  # the column after run_key and level: the photo's path or the drift pair
        with storage_faults(self.path, "cannot read the study database"):
            rows = self.con.execute(f"SELECT rowid, {', '.join(cols)}, checksum FROM {table} WHERE run_key=? AND level=?",
                                    (key, level)).fetchall()
            bad = {r[1 + group] for r in rows if payload_checksum(r[1:-1]) != r[-1]}
            if bad:
                with self.con:
                    self.con.executemany(f"DELETE FROM {table} WHERE run_key=? AND level=? AND {cols[group]}=?",
                                         [(key, level, g) for g in bad])
                self.dropped += len(bad)
                warnings.warn(f"{self.path}: stored {table} rows of {len(bad)} item(s) at level {level} failed their "
                              "checksum; they were dropped and will be computed again", stacklevel=3)
        return [r[1:-1] for r in rows if r[1 + group] not in bad]

    def _put(self, table: str, cols: Sequence[str], rows: Sequence[tuple[Any, ...]]) -> None:
        with storage_faults(self.path, "cannot store results"), self.con:
            self.con.executemany(f"INSERT OR REPLACE INTO {table} ({', '.join(cols)}, created, checksum) "
                                 f"VALUES ({', '.join('?' * (len(cols) + 2))})",
                                 [(*r, time.time(), payload_checksum(r)) for r in rows])

    def done(self, key: str, level: str) -> set[str]:
        return {r[2] for r in self._verified("images", _IMAGE_COLUMNS, key, level)}

    def put_images(self, key: str, level: str, rows: Sequence[dict[str, Any]]) -> None:
        def blob(a: Any) -> bytes | None:
            return None if a is None else np.asarray(a, dtype=np.float32).tobytes()

        self._put("images", _IMAGE_COLUMNS, [
            (key, level, r["path"], r["nbytes"], r["pixels"], r["psnr"] if r["psnr"] is None or np.isfinite(r["psnr"]) else None,
             _b(r["detected"]), _b(r["fallback"]), _b(r["face_found"]), blob(r.get("emb")), blob(r.get("emb_mirror")),
             r["error"], float(r.get("seconds", 0.0))) for r in rows])

    def images(self, key: str, level: str) -> dict[str, dict[str, Any]]:
        out = {}
        for _, _, path, nb, px, ps, det, fb, ff, e, em, err, _ in self._verified("images", _IMAGE_COLUMNS, key, level):
            out[path] = {"nbytes": nb, "pixels": px, "psnr": ps, "detected": _ub(det), "fallback": _ub(fb),
                         "face_found": _ub(ff), "emb": None if e is None else np.frombuffer(e, np.float32),
                         "emb_mirror": None if em is None else np.frombuffer(em, np.float32), "error": err}
        return out

    def drift_done(self, key: str, level: str) -> set[int]:
        return {int(r[2]) for r in self._verified("drift", _DRIFT_COLUMNS, key, level)}

    def put_drift(self, key: str, level: str, rows: Sequence[tuple[int, int, float | None, float | None, str | None]]) -> None:
        self._put("drift", _DRIFT_COLUMNS, [(key, level, int(p), int(i), s, t, err) for p, i, s, t, err in rows])

    def drift(self, key: str, level: str) -> list[tuple[int, int, float | None, float | None, str | None]]:
        rows = sorted(self._verified("drift", _DRIFT_COLUMNS, key, level), key=lambda r: (r[2], r[3]))
        return [(int(p), int(i), s, t, e) for _, _, p, i, s, t, e in rows]


def _b(v: bool | None) -> int | None:
    return None if v is None else int(bool(v))


def _ub(v: int | None) -> bool | None:
    return None if v is None else bool(v)


# ---------------------------------------------------------------------------------------------
# drift measures


def rank_correlation(a: np.ndarray, b: np.ndarray) -> float:
    """Spearman's rho of two maps (average ranks for ties); NaN when either map is constant."""
    from scipy.stats import rankdata

    ra, rb = rankdata(np.ravel(a)), rankdata(np.ravel(b))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    den = float(np.sqrt((ra * ra).sum() * (rb * rb).sum()))
    return float("nan") if den == 0 else float((ra * rb).sum() / den)


def top_overlap(a: np.ndarray, b: np.ndarray, fraction: float = 0.1) -> float:
    """``|top_k(a) ∩ top_k(b)| / k`` with ``k = round(fraction * pixels)`` (ties broken by index)."""
    a, b = np.ravel(a), np.ravel(b)
    k = max(1, int(round(fraction * a.size)))
    ta = np.argsort(-a, kind="stable")[:k]
    tb = np.argsort(-b, kind="stable")[:k]
    return float(np.intersect1d(ta, tb).size / k)


# ---------------------------------------------------------------------------------------------
# the runner


def run_factor_study(out_dir: str | os.PathLike, factor: str, levels: Sequence[float] | None = None, *,
                     params: dict[str, Any] | None = None, model: str = "dlib-resnet", weights: Any = None,
                     detector: str = "dlib-hog", select: str = "center", flip: bool = True, apply: str = "both",
                     reuse_landmarks: bool = False, folds: Sequence[int] | None = None,
                     pairs_per_fold: int | None = None, drift_pairs: int = 300, data: str | os.PathLike | None = None,
                     cache: str | os.PathLike | bool = True, workers: int | None = None, batch_size: int = 64,
                     max_new_images: int | None = None, plugins: Sequence[dict[str, Any]] | None = None,
                     progress: bool = True, executor: Any = None, scheduler: str | None = None) -> dict[str, Any]:
    """Run (or resume) a study; returns its summary (also ``summary.json``, ``summary.md``, ``curves.png``).

    Args:
        out_dir: the study folder (``study.sqlite`` and the summaries).
        factor, levels, params: the factor (see :func:`~xaiface.factors.list_factors`), its levels
            (default: the factor's registered ones) and fixed parameters.
        apply: ``"both"`` or ``"probe"``. reuse_landmarks: see the module docstring.
        folds: 0-based folds. pairs_per_fold: balanced subset per fold (``None``: all).
        drift_pairs: size of the xSSAB drift subset (``0``: no drift).
        workers: processes for transform + detection (default 2, a local Dask cluster; ``0`` runs
            in this process).
        executor, scheduler: another executor (see :func:`xaiface.executor.get_executor`).
        max_new_images: stop at the first batch boundary after this many newly computed photos
            (the summary is then partial and says so: ``complete`` is false).
        plugins: plug-in codec specs (see :func:`register_plugins`), registered here and in workers.
    Raises:
        ConfigError: unknown factor, bad levels or options. DatasetError: unreadable data.
    """
    from tqdm import tqdm

    from ..datasets import LFW, select_fold_pairs
    from ..detect.batch import photo_executor
    from ..detect.fallback import median_box
    from ..io.hashing import weights_digest
    from ..models.registry import get_model
    from ..pipeline.batch import embed_crops, locate_faces

    register_plugins(plugins)
    info = factor_info(factor)
    levels = [float(v) for v in (levels if levels else info.default_levels)]
    if not levels:
        raise ConfigError(f"factor {factor!r} has no default levels; pass levels")
    if len(set(levels)) != len(levels):
        raise ConfigError(f"levels repeat: {levels}")
    params = dict(params or {})
    for lv in levels:  # validate every level before any work
        get_transform(factor, lv, **params)
    if apply not in ("both", "probe"):
        raise ConfigError(f"apply must be 'both' or 'probe', got {apply!r}")
    if drift_pairs < 0:
        raise ConfigError(f"drift_pairs must be >= 0, got {drift_pairs}")
    out = ensure_dir(out_dir, "study folder")
    fr = get_model(model, weights=weights)
    loaded_sha = weights_digest(fr, weights)
    cfg = StudyConfig(factor, params, model, detector, select, bool(flip), apply, bool(reuse_landmarks),
                      sorted(set(int(f) for f in folds)) if folds else None, pairs_per_fold, int(drift_pairs),
                      None if weights is None else loaded_sha)
    key = cfg.key()
    store = StudyStore(out / "study.sqlite")
    store.register(key, {**asdict(cfg), "weights_sha256": loaded_sha})
    t_start = time.perf_counter()

    lfw = LFW(data)
    pairs = lfw.pairs(folds=cfg.folds, per_fold=pairs_per_fold)
    n_folds = len({p.fold for p in pairs})
    drift_set = select_fold_pairs(pairs, per_fold=2 * max(1, drift_pairs // (2 * n_folds))) if drift_pairs else []
    drift_set = drift_set[:drift_pairs]
    paths = sorted({str(p.path_a) for p in pairs} | {str(p.path_b) for p in pairs})
    transformed = paths if apply == "both" else sorted({str(p.path_b) for p in pairs})
    geometry = fr.spec.preprocessing.geometry
    chosen = locate_faces(paths, detector=detector, select=select, fallback="median", cache=cache, workers=workers,
                          executor=executor, scheduler=scheduler, progress=progress).require_all("photos")
    # every clean photo had a face: the median of the chosen boxes still serves the transformed photos
    box = chosen.fallback_box if chosen.fallback_box is not None else median_box(chosen.faces.values())
    fallback_box = [float(v) for v in box]

    workers = 2 if workers is None else int(workers)
    pool = None
    new_images = 0
    complete = True

    def base_task(path: str, level: float | None) -> dict[str, Any]:
        return {"path": path, "factor": factor, "params": params, "level": level, "face": chosen.faces[path].to_dict(),
                "fallback_box": fallback_box, "select": select, "geometry": geometry, "reuse": bool(reuse_landmarks),
                "detector": detector}

    def embed_rows(rows: list[dict[str, Any]]) -> None:
        ok = [r for r in rows if r["crop"] is not None]
        if ok:
            e, em = embed_crops(fr, np.stack([r["crop"] for r in ok]), batch_size)
            for r, a, b in zip(ok, e, em):
                r["emb"], r["emb_mirror"] = a, b

    try:
        for level in [None, *levels]:
            lk = level_key(level)
            todo_paths = paths if level is None else transformed
            done = store.done(key, lk)
            # fixed batches of the level's photo list, so a resumed run embeds exactly the batches an
            # uninterrupted one would (CPU kernels may round differently for another batch size)
            batches = [todo_paths[i : i + batch_size] for i in range(0, len(todo_paths), batch_size)]
            batches = [b for b in batches if not set(b) <= done]
            if max_new_images is not None:
                room = max_new_images - new_images
                keep = []
                for b in batches:
                    if room <= 0:
                        complete = False
                        break
                    keep.append(b)
                    room -= len(b)
                batches = keep
            if not batches:
                if not complete:
                    break
                continue
            if pool is None:
                pool = photo_executor(workers, executor, scheduler, setup=register_plugins,
                                      setup_args=(list(plugins or []),))
            it = iter(pool.map(process_photo, [base_task(p, level) for b in batches for p in b], chunksize=4))
            bar = tqdm(total=sum(map(len, batches)), desc=f"{factor} {lk}", disable=not progress, unit="img")
            for b in batches:
                buf = [next(it) for _ in b]
                embed_rows(buf)
                store.put_images(key, lk, buf)
                bar.update(len(buf))
                new_images += len(buf)
            bar.close()
            if not complete:
                break
        if complete and drift_set:
            _run_drift(store, key, cfg, levels, drift_set, base_task, fr, progress)
    finally:
        if pool is not None and pool is not executor:
            pool.close()

    summary = summarise(store, key, cfg, levels, pairs, drift_set, transformed, info)
    summary["complete"] = complete and all(len(store.done(key, level_key(lv))) == len(transformed) for lv in levels)
    summary["clean_photos_without_face"] = len(chosen.no_face)
    summary["fallback_box"] = fallback_box
    summary["wall_s_this_call"] = round(time.perf_counter() - t_start, 1)
    summary["run_key"] = key
    store.close()
    _write_summary(out, summary)
    return summary


def _run_drift(store: StudyStore, key: str, cfg: StudyConfig, levels: Sequence[float], drift_set: list[Any],
               base_task: Any, fr: Any, progress: bool) -> None:
    """xSSAB maps of the drift pairs, clean and at each level, compared per transformed photo."""
    from tqdm import tqdm

    from ..explain import get_explainer
    from ..explain.base import Verifier

    todo_levels = [lv for lv in levels if len(store.drift_done(key, level_key(lv))) < len(drift_set)]
    if not todo_levels:
        return
    xp = get_explainer("xssab", Verifier(fr, threshold="eer"))
    clean_crop: dict[str, np.ndarray] = {}
    for p in sorted({str(q.path_a) for q in drift_set} | {str(q.path_b) for q in drift_set}):
        r = process_photo(base_task(p, None))
        clean_crop[p] = r["crop"]
    clean_maps = {}
    for q in tqdm(drift_set, desc="drift: clean maps", disable=not progress, unit="pair"):
        a, b = clean_crop[str(q.path_a)], clean_crop[str(q.path_b)]
        if a is None or b is None:
            continue
        clean_maps[q.index] = xp.explain((a, b)).maps("combined")
    which = (0, 1) if cfg.apply == "both" else (1,)
    for lv in todo_levels:
        lk = level_key(lv)
        done = store.drift_done(key, lk)
        cache: dict[str, dict[str, Any]] = {}
        rows = []
        for q in tqdm([q for q in drift_set if q.index not in done], desc=f"drift {lk}", disable=not progress, unit="pair"):
            crops = []
            for i, path in enumerate((str(q.path_a), str(q.path_b))):
                if i in which:
                    if path not in cache:
                        cache[path] = process_photo(base_task(path, lv))
                    crops.append(cache[path]["crop"])
                else:
                    crops.append(clean_crop[path])
            if q.index not in clean_maps or any(c is None for c in crops):
                rows += [(q.index, i, None, None, "no crop") for i in which]
                continue
            deg = xp.explain((crops[0], crops[1])).maps("combined")
            for i in which:
                rows.append((q.index, i, rank_correlation(clean_maps[q.index][i], deg[i]),
                             top_overlap(clean_maps[q.index][i], deg[i]), None))
            if len(rows) >= 64:
                store.put_drift(key, lk, rows)
                rows = []
        if rows:
            store.put_drift(key, lk, rows)


def summarise(store: StudyStore, key: str, cfg: StudyConfig, levels: Sequence[float], pairs: list[Any],
              drift_set: list[Any], transformed: list[str], info: Any) -> dict[str, Any]:
    """Metrics per level from the stored rows (levels not yet complete are marked partial)."""
    from ..pipeline.batch import mirror_average
    from ..verify.metrics import eer, fmr_fnmr
    from ..verify.protocol import lfw_protocol

    labels = np.array([p.same for p in pairs], dtype=int)
    fold_ids = np.array([p.fold for p in pairs])
    clean = store.images(key, "clean")

    def emb(row: dict[str, Any] | None) -> np.ndarray | None:
        if row is None or row["emb"] is None:
            return None
        return mirror_average(row["emb"], row["emb_mirror"]) if cfg.flip else row["emb"]

    def scores(rows_a: dict[str, Any], rows_b: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        s = np.full(len(pairs), np.nan)
        for i, p in enumerate(pairs):
            ea, eb = emb(rows_a.get(str(p.path_a))), emb(rows_b.get(str(p.path_b)))
            if ea is not None and eb is not None:
                s[i] = float(ea @ eb)
        return s, np.isfinite(s)

    s_clean, ok_clean = scores(clean, clean)
    if not ok_clean.all():
        needed = sorted({str(p.path_a) for p, ok in zip(pairs, ok_clean) if not ok}
                        | {str(p.path_b) for p, ok in zip(pairs, ok_clean) if not ok})
        missing = [p for p in needed if p not in clean]
        usable = lambda p: (e := emb(clean[p])) is not None and bool(np.isfinite(e).all())  # noqa: E731
        unusable = [p for p in needed if p in clean and not usable(p)]
        msg = f"clean reference incomplete: {int((~ok_clean).sum())} of {len(pairs)} pairs unscored"
        if missing:  # not computed yet: resuming computes them
            raise DatasetError(f"{msg}: {len(missing)} photo(s) not computed yet; run the same command again to resume")
        first = unusable[0]
        why = clean[first]["error"] or "no usable embedding (zero or non-finite; check the model's weights)"
        raise DatasetError(f"{msg}: {len(unusable)} photo(s) have no usable clean embedding (first: {first}: {why}); "
                           f"resuming does not compute them again; fix the cause, then use another --out or delete "
                           f"{store.path}")
    clean_eer, thr = eer(s_clean, labels)
    cfmr, cfnmr = fmr_fnmr(s_clean, labels, thr)
    several_folds = len(set(fold_ids.tolist())) >= 2  # the 10-fold accuracy needs held-out folds
    crep = lfw_protocol(s_clean, labels, fold_ids) if several_folds else None
    rows = [{"level": "clean", "eer": clean_eer, "fmr": cfmr, "fnmr": cfnmr,
             "accuracy": crep.mean_accuracy if crep else None, "accuracy_std": crep.std_accuracy if crep else None, "bpp": None, "psnr_db": None,
             "detection_failure_rate": float(np.mean([not r["detected"] for r in clean.values()])),
             "photos": len(clean), "scored_pairs": len(pairs), "drift": None}]
    for lv in levels:
        lk = level_key(lv)
        got = store.images(key, lk)
        deg = {p: got[p] for p in transformed if p in got}
        rows_a = deg if cfg.apply == "both" else clean
        s, ok = scores(rows_a, deg)
        row: dict[str, Any] = {"level": lv, "photos": len(deg), "complete": len(deg) == len(transformed),
                               "scored_pairs": int(ok.sum())}
        if ok.sum() and len(set(labels[ok])) == 2:
            row["eer"], row["eer_threshold"] = eer(s[ok], labels[ok])
            row["fmr"], row["fnmr"] = fmr_fnmr(s[ok], labels[ok], thr)
            if ok.all() and several_folds:
                rep = lfw_protocol(s, labels, fold_ids)
                row["accuracy"], row["accuracy_std"] = rep.mean_accuracy, rep.std_accuracy
            row["mean_similarity_change"] = float(np.mean(s[ok] - s_clean[ok]))
        vals = list(deg.values())
        nb = [r["nbytes"] for r in vals if r["nbytes"] is not None]
        row["bpp"] = float(np.mean([8.0 * r["nbytes"] / r["pixels"] for r in vals if r["nbytes"] is not None])) if nb else None
        ps = [r["psnr"] for r in vals if r["psnr"] is not None]
        row["psnr_db"] = float(np.mean(ps)) if ps else None
        if cfg.reuse_landmarks:
            row["detection_failure_rate"] = None
        else:
            dets = [r["detected"] for r in vals if r["detected"] is not None]
            row["detection_failure_rate"] = float(np.mean([not d for d in dets])) if dets else None
            row["detection_failures"] = int(sum(1 for d in dets if not d))
        ff = [r["face_found"] for r in vals if r["face_found"] is not None]
        if ff:
            row["filter_found_face_rate"] = float(np.mean(ff))
        row["errors"] = sum(1 for r in vals if r["error"])
        d = store.drift(key, lk)
        good = [(s_, t_) for _, _, s_, t_, e in d if e is None and s_ is not None and np.isfinite(s_)]
        if good:
            sp, tp = np.array(good).T
            row["drift"] = {"pairs": len({p for p, *_ in d}), "maps": len(good), "spearman_mean": float(sp.mean()),
                            "spearman_median": float(np.median(sp)), "top10_overlap_mean": float(tp.mean()),
                            "top10_overlap_median": float(np.median(tp))}
        else:
            row["drift"] = None
        rows.append(row)
    return {
        "factor": cfg.factor, "params": cfg.params, "level_meaning": info.level, "degrade": info.degrade,
        "family": info.family, "model": cfg.model, "detector": cfg.detector, "select": cfg.select, "flip": cfg.flip,
        "apply": cfg.apply, "landmarks": "clean photo's (reused, no detection rerun)" if cfg.reuse_landmarks else "detected on each transformed photo",
        "pairs": len(pairs), "folds": sorted({int(p.fold) + 1 for p in pairs}), "transformed_photos": len(transformed),
        "clean_threshold": {"rule": "EER threshold of the clean scores of these pairs", "value": float(thr)},
        "drift_subset": {"pairs": len(drift_set), "method": "xssab (combined map)", "compared_in": "aligned crop coordinates"},
        "levels": rows,
    }


def _fmt(v: Any, pct: bool = False, nd: int = 2) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "-"
    return f"{100 * v:.{nd}f}" if pct else f"{v:.{nd}f}"


def summary_markdown(summary: dict[str, Any]) -> str:
    s = summary
    lines = [f"# Influencing factor: {s['factor']} ({s['family']})", "",
             f"- {s['pairs']} LFW View 2 pairs (folds {','.join(map(str, s['folds']))}), model `{s['model']}`, detector "
             f"`{s['detector']}`, select {s['select']}, mirror-averaged: {s['flip']}; transform applied to "
             f"{'both photos' if s['apply'] == 'both' else 'the second photo of each pair'}; landmarks: {s['landmarks']}.",
             f"- Clean threshold: {s['clean_threshold']['value']:.4f} ({s['clean_threshold']['rule']}).",
             f"- Level: {s['level_meaning']}. Drift: xSSAB maps of {s['drift_subset']['pairs']} pairs.",
             f"- Complete: {s.get('complete')}.", "",
             "| level | bpp | PSNR dB | EER % | FMR % | FNMR % | accuracy % | no face % | drift rho | top-10% overlap |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in s["levels"]:
        d = r.get("drift") or {}
        lv = r["level"] if r["level"] == "clean" else f"{float(r['level']):g}"
        lines.append(f"| {lv} | {_fmt(r.get('bpp'))} | {_fmt(r.get('psnr_db'), nd=1)} | {_fmt(r.get('eer'), True)} | "
                     f"{_fmt(r.get('fmr'), True)} | {_fmt(r.get('fnmr'), True)} | {_fmt(r.get('accuracy'), True)} | "
                     f"{_fmt(r.get('detection_failure_rate'), True)} | {_fmt(d.get('spearman_mean'), nd=3)} | "
                     f"{_fmt(d.get('top10_overlap_mean'), nd=3)} |")
    return "\n".join(lines) + "\n"


def studies_markdown(summaries: Sequence[dict[str, Any]]) -> str:
    """One table over several studies: a row per factor and level (the clean row once per study)."""
    lines = ["| factor | pairs | level | bpp | PSNR dB | EER % | FMR % | FNMR % | no face % | drift rho | top-10% overlap |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for s in summaries:
        name = s["factor"] + (" (clean landmarks)" if "reused" in s["landmarks"] else "") + ("" if s["apply"] == "both" else " (probe only)")
        for r in s["levels"]:
            d = r.get("drift") or {}
            lv = "clean" if r["level"] == "clean" else f"{float(r['level']):g}"
            lines.append(f"| {name} | {s['pairs']} | {lv} | {_fmt(r.get('bpp'))} | {_fmt(r.get('psnr_db'), nd=1)} | "
                         f"{_fmt(r.get('eer'), True)} | {_fmt(r.get('fmr'), True)} | {_fmt(r.get('fnmr'), True)} | "
                         f"{_fmt(r.get('detection_failure_rate'), True)} | {_fmt(d.get('spearman_mean'), nd=3)} | "
                         f"{_fmt(d.get('top10_overlap_mean'), nd=3)} |")
    return "\n".join(lines) + "\n"


def _write_summary(out: Path, summary: dict[str, Any]) -> None:
    from .figures import plot_study

    write_text_atomic(out / "summary.json", json.dumps(summary, indent=2, default=float))
    write_text_atomic(out / "summary.md", summary_markdown(summary))
    try:
        plot_study(summary, out / "curves.png")
    except (KeyError, ValueError, TypeError) as e:  # a partial run may lack a level's metrics
        write_text_atomic(out / "curves.txt", f"no curves: {e}\n")
