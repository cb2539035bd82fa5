"""Benchmark results stored as they are produced: one SQLite row per (run, pair), committed at once.

A run is one (model, method, protocol settings, data set) combination, named by ``run_key`` (a
hash of its configuration, kept in the ``runs`` table); an interrupted run finds its finished
pairs here and continues with the others, so nothing computed is lost and nothing is computed
twice. Arrays (per-step scores) are stored as JSON lists of floats, which round-trip exactly.
SQLite's write-ahead log keeps the file consistent if the process is killed between commits.

Each pair row carries the SHA-256 of its values (``checksum``, verified on every read): a row that
does not verify (edited, damaged) is dropped with a warning and its pair computed again, never
used. A store written before checksums existed gets the column (and its rows' checksums) when it
is first opened. :func:`read_runs` reads a store without writing anything (``bench status``).
"""
from __future__ import annotations

import json
import os
import time
import warnings
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from ..errors import StorageError
from ..io.files import add_column, open_database, open_database_readonly, payload_checksum, storage_faults

__all__ = ["PairResult", "ResultStore", "StoredRun", "open_database", "read_runs"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_key TEXT PRIMARY KEY, model TEXT NOT NULL, method TEXT NOT NULL, config TEXT NOT NULL, created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS pairs (
    run_key TEXT NOT NULL, pair INTEGER NOT NULL, fold INTEGER NOT NULL, same INTEGER NOT NULL,
    match INTEGER, score_patched REAL, score_clean REAL, map_score REAL,
    dpr TEXT, restored TEXT, deletion TEXT, insertion TEXT,
    auroc REAL, pointing REAL, coverage REAL, map_stats TEXT,
    n_forward INTEGER, n_backward INTEGER, t_map REAL, t_score REAL,
    error TEXT, created REAL NOT NULL, checksum TEXT,
    PRIMARY KEY (run_key, pair)
);
"""
_ARRAYS = ("dpr", "restored", "deletion", "insertion")
#: the columns a row's checksum covers (everything but the creation time and the checksum)
_COLUMNS = ("run_key", "pair", "fold", "same", "match", "score_patched", "score_clean", "map_score", "dpr", "restored",
            "deletion", "insertion", "auroc", "pointing", "coverage", "map_stats", "n_forward", "n_backward", "t_map",
            "t_score", "error")
_SELECT = ", ".join(_COLUMNS) + ", checksum"


@dataclass
class PairResult:
    """What one method gave on one Patch-LFW pair.

    Attributes:
        pair, fold, same: the pair (index in ``pairs.txt`` order, 0-based fold, genuine).
        match: the patched pair's decision at the threshold (selects the DPR direction).
        score_patched, score_clean: cosine similarity of the patched and of the clean pair.
        map_score: the explainer's own score of the patched pair (a cross-check).
        dpr, restored: per DPR step, the similarity and the fraction of planted pixels put back.
        deletion, insertion: per step, the similarity.
        auroc, pointing, coverage: localisation of the planted pixels; coverage = mask fraction.
        map_stats: summary statistics of the combined map.
        n_forward, n_backward: network passes for the map plus the scoring.
        t_map, t_score: seconds for the map and for the replace-and-score stage.
        error: the project error that stopped this pair (the other fields are then empty).
    """

    pair: int
    fold: int
    same: bool
    match: bool | None = None
    score_patched: float | None = None
    score_clean: float | None = None
    map_score: float | None = None
    dpr: np.ndarray | None = None
    restored: np.ndarray | None = None
    deletion: np.ndarray | None = None
    insertion: np.ndarray | None = None
    auroc: float | None = None
    pointing: float | None = None
    coverage: float | None = None
    map_stats: dict[str, float] = field(default_factory=dict)
    n_forward: int = 0
    n_backward: int = 0
    t_map: float = 0.0
    t_score: float = 0.0
    error: str | None = None

    def outcome(self) -> dict[str, Any]:
        """Everything but the timings (what must be identical between runs)."""
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in ("t_map", "t_score")}
        for k in _ARRAYS:
            d[k] = None if d[k] is None else np.asarray(d[k]).tolist()
        return d


@dataclass(frozen=True)
class StoredRun:
    """What a store holds of one run (read by :func:`read_runs`).

    Attributes:
        run_key, model, method, config, created: the ``runs`` row (config as registered).
        finished: pairs stored without an error; failed: pairs stored with one (not recomputed
            on resume); damaged: rows whose checksum does not verify (a run drops and
            recomputes them when it next opens the store).
    """

    run_key: str
    model: str
    method: str
    config: dict[str, Any]
    created: float
    finished: frozenset[int]
    failed: frozenset[int]
    damaged: frozenset[int]


def read_runs(path: str | os.PathLike) -> list[StoredRun]:
    """Every run of a results database with its stored pairs, opened read-only (nothing written,
    no damaged row dropped, no checksum column added; a store from before checksums counts its
    rows as verified). In order of registration.

    Raises:
        StorageError: a missing, unreadable or damaged file, or one without the store's tables.
    """
    path = Path(path)
    con = open_database_readonly(path, "results", ("runs", "pairs"))
    try:
        with storage_faults(path, "cannot read the results database"):
            signed = "checksum" in {r[1] for r in con.execute("PRAGMA table_info(pairs)")}
            runs = con.execute("SELECT run_key, model, method, config, created FROM runs ORDER BY created").fetchall()
            out = []
            for key, model, method, config, created in runs:
                cols = _SELECT if signed else ", ".join(_COLUMNS)
                finished, failed, damaged = set(), set(), set()
                for row in con.execute(f"SELECT {cols} FROM pairs WHERE run_key = ?", (key,)):
                    if signed and payload_checksum(row[:-1]) != row[-1]:
                        damaged.add(int(row[1]))
                    else:
                        (finished if row[_COLUMNS.index("error")] is None else failed).add(int(row[1]))
                out.append(StoredRun(key, model, method, json.loads(config), float(created), frozenset(finished),
                                     frozenset(failed), frozenset(damaged)))
    except json.JSONDecodeError as e:
        raise StorageError(f"{path}: a run's configuration is not JSON ({e}); the results database is damaged") from None
    finally:
        con.close()
    return out


def _dumps(a: Any) -> str | None:
    return None if a is None else json.dumps([float(v) for v in np.asarray(a, dtype=np.float64).ravel()])


def _nan_none(v: float | None) -> float | None:
    return None if v is None or (isinstance(v, float) and np.isnan(v)) else float(v)


class ResultStore:
    """The SQLite file of a benchmark folder (created on first use).

    Args:
        path: the database file (e.g. ``<out>/results.sqlite``).
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.con = open_database(self.path, _SCHEMA, "results")
        self.dropped = 0  # rows whose checksum did not verify (recomputed)
        with storage_faults(self.path, "cannot update the results database"):
            if add_column(self.con, "pairs", "checksum"):  # a store from before checksums: sign its rows once
                rows = self.con.execute(f"SELECT {', '.join(_COLUMNS)} FROM pairs").fetchall()
                with self.con:
                    self.con.executemany("UPDATE pairs SET checksum = ? WHERE run_key = ? AND pair = ?",
                                         [(payload_checksum(r), r[0], r[1]) for r in rows])

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> "ResultStore":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def register(self, run_key: str, model: str, method: str, config: dict[str, Any]) -> None:
        """Record a run's configuration (once; a later call with the same key keeps the first)."""
        with storage_faults(self.path, "cannot register the run"), self.con:
            self.con.execute("INSERT OR IGNORE INTO runs VALUES (?, ?, ?, ?, ?)",
                             (run_key, model, method, json.dumps(config, sort_keys=True), time.time()))

    def runs(self) -> list[dict[str, Any]]:
        cur = self.con.execute("SELECT run_key, model, method, config, created FROM runs ORDER BY created")
        return [{"run_key": k, "model": m, "method": me, "config": json.loads(c), "created": t} for k, m, me, c, t in cur]

    def _verified(self, run_key: str) -> list[tuple[Any, ...]]:
        """The run's rows in pair order whose checksum verifies; the others are deleted (their pairs
        are then missing and get computed again) with one warning."""
        with storage_faults(self.path, "cannot read the results database"):
            rows = self.con.execute(f"SELECT {_SELECT} FROM pairs WHERE run_key = ? ORDER BY pair", (run_key,)).fetchall()
            good, bad = [], []
            for row in rows:
                (good if payload_checksum(row[:-1]) == row[-1] else bad).append(row)
            if bad:
                with self.con:
                    self.con.executemany("DELETE FROM pairs WHERE run_key = ? AND pair = ?", [(r[0], r[1]) for r in bad])
                self.dropped += len(bad)
                warnings.warn(f"{self.path}: {len(bad)} stored result(s) of run {run_key} failed their checksum "
                              f"(pairs {[int(r[1]) for r in bad][:10]}); they were dropped and will be computed again",
                              stacklevel=3)
        return good

    def done(self, run_key: str) -> set[int]:
        """Pairs of a run already stored (finished or failed) whose rows verify."""
        return {int(r[1]) for r in self._verified(run_key)}

    def put(self, run_key: str, r: PairResult) -> None:
        """Store one pair's result (with its checksum) and commit."""
        values = (run_key, int(r.pair), int(r.fold), int(bool(r.same)),
                  None if r.match is None else int(bool(r.match)), _nan_none(r.score_patched), _nan_none(r.score_clean),
                  _nan_none(r.map_score), _dumps(r.dpr), _dumps(r.restored), _dumps(r.deletion), _dumps(r.insertion),
                  _nan_none(r.auroc), _nan_none(r.pointing), _nan_none(r.coverage), json.dumps(r.map_stats, sort_keys=True),
                  int(r.n_forward), int(r.n_backward), float(r.t_map), float(r.t_score), r.error)
        with storage_faults(self.path, "cannot store a result"), self.con:
            self.con.execute(f"INSERT OR REPLACE INTO pairs ({', '.join(_COLUMNS)}, created, checksum) "
                             f"VALUES ({', '.join('?' * (len(_COLUMNS) + 2))})",
                             (*values, time.time(), payload_checksum(values)))

    def results(self, run_key: str, pairs: Iterable[int] | None = None) -> list[PairResult]:
        """Stored results of a run in pair order (only ``pairs`` when given); rows that fail their
        checksum are left out (and dropped, see :meth:`done`)."""
        wanted = None if pairs is None else set(int(p) for p in pairs)
        out = []
        for full in self._verified(run_key):
            row = full[1:-1]
            if wanted is not None and int(row[0]) not in wanted:
                continue
            (pair, fold, same, match, sp, sc, ms, dpr, rest, dele, ins, auroc, pointing, cov, stats, nf, nb, tm, ts, err) = row
            arr = lambda s: None if s is None else np.asarray(json.loads(s), dtype=np.float64)  # noqa: E731
            out.append(PairResult(int(pair), int(fold), bool(same), None if match is None else bool(match), sp, sc, ms,
                                  arr(dpr), arr(rest), arr(dele), arr(ins),
                                  float("nan") if auroc is None else auroc, float("nan") if pointing is None else pointing,
                                  cov, json.loads(stats) if stats else {}, int(nf), int(nb), float(tm), float(ts), err))
        return out
