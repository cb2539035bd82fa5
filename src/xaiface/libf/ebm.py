"""LIBF-feature based EBM verification (XAIface D5.2 section 3.3.1) and its explanations.

:class:`LIBFVerifier` wraps InterpretML's ``ExplainableBoostingClassifier``: it encodes pairs of
LIBF vectors (``"concat"`` or ``"symmetric"``, see :mod:`.features`), learns match (1) vs no
match (0), and answers with a match probability. An EBM's logit is a sum of one learned
function per term (a feature, or a pair of features for the few interactions) plus an
intercept, so every decision decomposes exactly:

    logit(pair) = intercept + sum_t f_t(x)          p(match) = 1 / (1 + exp(-logit))

* **local explanation**: the per-term contributions ``f_t(x)`` of one pair
  (:meth:`LIBFVerifier.local_explanation`; they equal ``explain_local(...).data(i)["scores"]``);
* **global explanation**: InterpretML's term importances (mean ``|f_t|`` over the training
  pairs) (:meth:`LIBFVerifier.global_explanation`);
* **per patch**: every term belongs to the patches of its features; a term spanning two patches
  (an interaction) gives half its contribution to each. Patch contributions plus the intercept
  sum to the logit.

Saved models are a JSON file (settings, names, term structure) plus an ``.npz`` of the fitted
arrays, read back with ``allow_pickle=False``: no pickle is ever loaded.
"""
from __future__ import annotations

import json
import os
import time
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import ConfigError, WeightsError
from .features import PAIR_ENCODINGS, feature_patch, pair_feature_names, pair_features
from .patches import N_PATCHES, PATCH_NAMES

__all__ = ["LIBFVerifier", "EBM_FORMAT"]

EBM_FORMAT = "xaiface-libf-ebm"


class LIBFVerifier:
    """EBM verifier on LIBF pairs (scikit-learn style: settings in ``__init__``, fitted state in ``*_``).

    Args:
        encoding: ``"symmetric"`` (default) or ``"concat"`` (D5.2's 374-d concatenation).
        interactions: number of pairwise interaction terms (small: the default ``'3x'`` of
            interpret takes over 12 minutes on 2 cores).
        outer_bags: EBM bagging rounds. max_bins: bins per feature. n_jobs: ``-1`` = every core
            (interpret's default ``-2`` leaves one of two cores idle).
        random_state: seed. embedding_dim: per-patch embedding size of the LIBF vectors.
        **ebm_params: any other ``ExplainableBoostingClassifier`` setting.
    """

    def __init__(self, encoding: str = "symmetric", interactions: int = 5, outer_bags: int = 2, max_bins: int = 256,
                 n_jobs: int = -1, random_state: int = 0, embedding_dim: int = 16, **ebm_params: Any):
        if encoding not in PAIR_ENCODINGS:
            raise ConfigError(f"pair encoding must be one of {PAIR_ENCODINGS}, got {encoding!r}")
        if not isinstance(interactions, int) or isinstance(interactions, bool) or interactions < 0:
            raise ConfigError(f"interactions must be a non-negative integer (a small count), got {interactions!r}")
        self.encoding = encoding
        self.interactions = interactions
        self.outer_bags = int(outer_bags)
        self.max_bins = int(max_bins)
        self.n_jobs = int(n_jobs)
        self.random_state = int(random_state)
        self.embedding_dim = int(embedding_dim)
        self.ebm_params = dict(ebm_params)

    # ---- settings ------------------------------------------------------------------------------
    def get_params(self) -> dict[str, Any]:
        return {"encoding": self.encoding, "interactions": self.interactions, "outer_bags": self.outer_bags,
                "max_bins": self.max_bins, "n_jobs": self.n_jobs, "random_state": self.random_state,
                "embedding_dim": self.embedding_dim, **self.ebm_params}

    @property
    def feature_names(self) -> list[str]:
        return pair_feature_names(self.encoding, self.embedding_dim)

    def _make_ebm(self):
        from interpret.glassbox import ExplainableBoostingClassifier

        names = self.feature_names
        return ExplainableBoostingClassifier(
            feature_names=names, feature_types=["continuous"] * len(names), interactions=self.interactions,
            outer_bags=self.outer_bags, max_bins=self.max_bins, n_jobs=self.n_jobs, random_state=self.random_state,
            **self.ebm_params)

    def encode(self, la: np.ndarray, lb: np.ndarray) -> np.ndarray:
        """The pair features (``(N, 374)``, or ``(N, 11)`` for patch-cosine) of LIBF vectors ``(N, 187)`` (or single vectors)."""
        width = N_PATCHES * (self.embedding_dim + 1)
        for v in (la, lb):
            if np.shape(np.atleast_2d(v))[-1] != width:
                raise ConfigError(f"LIBF vectors of {np.shape(np.atleast_2d(v))[-1]} values; this {self.encoding} verifier "
                                  f"expects {width} (embedding_dim={self.embedding_dim})")
        return pair_features(la, lb, self.encoding)

    # ---- fit / predict -------------------------------------------------------------------------
    def fit(self, la: np.ndarray, lb: np.ndarray, labels: np.ndarray) -> "LIBFVerifier":
        """Learn from LIBF pairs ``(N, 187)`` x 2 and labels ``(N,)`` (1 match, 0 no match)."""
        x = self.encode(la, lb)
        y = np.asarray(labels).astype(int).ravel()
        if len(y) != len(x) or not set(np.unique(y)) <= {0, 1} or len(np.unique(y)) < 2:
            raise ConfigError(f"labels must be {len(x)} values of 0 (no match) and 1 (match), both present")
        t0 = time.perf_counter()
        ebm = self._make_ebm()
        with warnings.catch_warnings():
            # patch-cosine marks patches hidden in either face as missing (NaN): the EBM's missing-value bin
            # is part of the model (and of the per-patch contributions); interpret warns only about its plots
            warnings.filterwarnings("ignore", message="Missing values detected")
            ebm.fit(x, y)
        self.fit_seconds_ = time.perf_counter() - t0
        self.ebm_ = ebm
        self.n_train_ = int(len(y))
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "ebm_"):
            raise ConfigError("this LIBFVerifier is not fitted yet; call fit() or load()")

    def decision_function(self, la: np.ndarray, lb: np.ndarray) -> np.ndarray:
        """Logits ``(N,)`` (log-odds of a match)."""
        self._check_fitted()
        return np.asarray(self.ebm_.decision_function(self.encode(la, lb)), dtype=np.float64).ravel()

    def predict_proba(self, la: np.ndarray, lb: np.ndarray) -> np.ndarray:
        """Match probabilities ``(N,)``."""
        return 1.0 / (1.0 + np.exp(-self.decision_function(la, lb)))

    def predict(self, la: np.ndarray, lb: np.ndarray) -> np.ndarray:
        """1 where the match probability is at least 0.5, else 0."""
        return (self.decision_function(la, lb) >= 0).astype(int)

    # ---- explanations --------------------------------------------------------------------------
    @property
    def term_names(self) -> list[str]:
        self._check_fitted()
        return list(self.ebm_.term_names_)

    @property
    def intercept(self) -> float:
        self._check_fitted()
        return float(np.ravel(self.ebm_.intercept_)[0])

    def term_contributions(self, la: np.ndarray, lb: np.ndarray) -> np.ndarray:
        """``(N, T)`` per-term contributions; each row plus :attr:`intercept` is the logit."""
        self._check_fitted()
        return np.asarray(self.ebm_.eval_terms(self.encode(la, lb)), dtype=np.float64)

    def term_patches(self) -> np.ndarray:
        """``(T, 11)`` share of each term given to each patch (rows sum to 1)."""
        self._check_fitted()
        w = np.zeros((len(self.ebm_.term_features_), N_PATCHES))
        for t, feats in enumerate(self.ebm_.term_features_):
            for f in feats:
                w[t, feature_patch(int(f), self.embedding_dim, self.encoding)[1]] += 1.0 / len(feats)
        return w

    def patch_contributions(self, la: np.ndarray, lb: np.ndarray) -> np.ndarray:
        """``(N, 11)`` per-patch contributions to the logit (plus :attr:`intercept`, they sum to it)."""
        return self.term_contributions(la, lb) @ self.term_patches()

    def local_explanation(self, la: np.ndarray, lb: np.ndarray) -> dict[str, Any]:
        """One pair's decision as data: logit, probability, intercept, per-term and per-patch contributions.

        ``intercept + sum(terms.values())`` equals ``logit`` (to float rounding), as does
        ``intercept + sum(patches.values())``.
        """
        a, b = np.atleast_2d(la), np.atleast_2d(lb)
        if len(a) != 1 or len(b) != 1:
            raise ConfigError(f"local_explanation explains one pair; got {len(a)} and {len(b)} LIBF vectors")
        c = self.term_contributions(a, b)[0]
        logit = float(self.decision_function(a, b)[0])
        per_patch = c @ self.term_patches()
        order = np.argsort(-np.abs(c))
        return {
            "encoding": self.encoding, "logit": logit, "probability": float(1 / (1 + np.exp(-logit))),
            "intercept": self.intercept,
            "terms": {self.term_names[t]: float(c[t]) for t in order},
            "patches": {PATCH_NAMES[j]: float(per_patch[j]) for j in range(N_PATCHES)},
        }

    def global_explanation(self) -> dict[str, Any]:
        """Term importances (mean ``|f_t|`` on the training pairs) and their per-patch sums, as data."""
        self._check_fitted()
        imp = np.asarray(self.ebm_.term_importances(), dtype=np.float64)
        order = np.argsort(-imp)
        per_patch = imp @ self.term_patches()
        return {
            "encoding": self.encoding, "intercept": self.intercept,
            "terms": {self.term_names[t]: float(imp[t]) for t in order},
            "patches": {PATCH_NAMES[j]: float(per_patch[j]) for j in range(N_PATCHES)},
            "interactions": [self.term_names[t] for t, f in enumerate(self.ebm_.term_features_) if len(f) > 1],
        }

    # ---- files ---------------------------------------------------------------------------------
    def save(self, folder: str | os.PathLike) -> Path:
        """Write ``model.json`` and ``arrays.npz`` into ``folder`` (no pickle)."""
        self._check_fitted()
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {}
        fitted = {k: _encode(v, k, arrays) for k, v in vars(self.ebm_).items() if k.endswith("_") and not k.startswith("_")}
        doc = {"format": EBM_FORMAT, "version": 1, "params": self.get_params(),
               "ebm_params": _encode(self.ebm_.get_params(), "params", arrays), "fitted": fitted,
               "n_train": getattr(self, "n_train_", None), "fit_seconds": getattr(self, "fit_seconds_", None)}
        np.savez_compressed(out / "arrays.tmp.npz", **arrays)
        os.replace(out / "arrays.tmp.npz", out / "arrays.npz")
        (out / "model.tmp.json").write_text(json.dumps(doc))
        os.replace(out / "model.tmp.json", out / "model.json")
        return out

    @classmethod
    def load(cls, folder: str | os.PathLike) -> "LIBFVerifier":
        """Read a model written by :meth:`save`.

        Raises:
            WeightsError: missing or unreadable files, another format, or arrays that do not match.
        """
        from interpret.glassbox import ExplainableBoostingClassifier

        d = Path(folder)
        try:
            doc = json.loads((d / "model.json").read_text())
            with np.load(d / "arrays.npz", allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except FileNotFoundError as e:
            raise WeightsError(f"{d}: trained EBM not found ({Path(e.filename).name} missing); "
                               "expected model.json and arrays.npz written by `xaiface train libf`") from None
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
            raise WeightsError(f"{d}: unreadable EBM files ({type(e).__name__}: {e}); retrain with `xaiface train libf`") from None
        if not isinstance(doc, dict) or doc.get("format") != EBM_FORMAT or doc.get("version") != 1:
            raise WeightsError(f"{d}/model.json: format {doc.get('format') if isinstance(doc, dict) else None!r}; expected {EBM_FORMAT!r} version 1")
        try:
            self = cls(**doc["params"])
            ebm = ExplainableBoostingClassifier(**_decode(doc["ebm_params"], arrays))
            for k, v in doc["fitted"].items():
                setattr(ebm, k, _decode(v, arrays))
        except (KeyError, TypeError, ConfigError) as e:
            raise WeightsError(f"{d}: EBM files do not fit together ({type(e).__name__}: {e})") from None
        if len(ebm.feature_names_in_) != len(self.feature_names):
            raise WeightsError(f"{d}: EBM of {len(ebm.feature_names_in_)} features; the {self.encoding} encoding has {len(self.feature_names)}")
        self.ebm_ = ebm
        self.n_train_ = doc.get("n_train")
        self.fit_seconds_ = doc.get("fit_seconds")
        return self


# ---- a pickle-free encoding of the fitted EBM's attributes ------------------------------------------

def _encode(v: Any, key: str, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(v, np.ndarray):
        if v.dtype == object:
            raise ConfigError(f"EBM attribute {key} holds Python objects; cannot be saved without pickle")
        name = f"a{len(arrays)}"
        arrays[name] = v
        return {"__array__": name}
    if isinstance(v, (np.integer, np.floating, np.bool_)):
        return v.item()
    if isinstance(v, tuple):
        return {"__tuple__": [_encode(x, key, arrays) for x in v]}
    if isinstance(v, list):
        return [_encode(x, key, arrays) for x in v]
    if isinstance(v, dict):
        if not all(isinstance(k, str) for k in v):
            raise ConfigError(f"EBM attribute {key} has non-string keys; cannot be saved as JSON")
        return {"__dict__": {k: _encode(x, key, arrays) for k, x in v.items()}}
    if v is None or isinstance(v, (bool, int, float, str)):
        return v
    raise ConfigError(f"EBM attribute {key} of type {type(v).__name__} cannot be saved without pickle")


def _decode(v: Any, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(v, dict):
        if "__array__" in v:
            return arrays[v["__array__"]]
        if "__tuple__" in v:
            return tuple(_decode(x, arrays) for x in v["__tuple__"])
        if "__dict__" in v:
            return {k: _decode(x, arrays) for k, x in v["__dict__"].items()}
        raise KeyError(f"unknown encoded value {sorted(v)}")
    if isinstance(v, list):
        return [_decode(x, arrays) for x in v]
    return v
