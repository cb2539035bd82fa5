"""Body-mass index and weight from face embeddings, trained on VIP_attribute.

:class:`BodyMassRegressor` is a Gaussian-process regression (scikit-learn, kernel
``C * RBF + White``, targets normalised) from the recogniser's L2-normalised, mirror-averaged
embedding to the *logarithm* of BMI (kg/m^2) and of weight (kg): both are right-skewed, and on
VIP_attribute the log target lowers the cross-validated MAE (BMI 2.16 -> 2.09). The kernel's
three hyper-parameters are fitted by marginal likelihood on at most ``optimize_on`` (400)
training faces, then the process is fitted on all of them with that kernel (the optimiser's
cost grows steeply with N). A Gaussian process gives each face its own predictive
distribution (observation noise included), log-normal here: the estimate is its median
``exp(mu)``, ``std`` the delta-method ``exp(mu) * sigma``, and a trait's confidence is
``P(|true - estimate| <= tolerance)`` under it, with one meaning across faces. :func:`cross_validate_body_mass` measures it by k-fold
cross-validation (folds stratified by gender), with the constant-mean and per-gender-mean
baselines and a calibration check of those confidences.

:class:`BodyMassEstimator` is the :class:`~xaiface.soft.traits.TraitEstimator` (traits ``bmi``
and ``weight``). The trained regressor is not shipped (VIP_attribute is research data kept
outside the repository): :func:`default_body_mass_regressor` trains it from the data folder on
first use (~1,026 faces: detection, embedding, fit) and keeps it under
``<cache>/soft/body-mass-<digest>.npz``, keyed by the annotation file and the model's weights.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..config import cache_dir
from ..errors import ConfigError, WeightsError
from ..types import DetectedFace
from .traits import FaceTraits, Trait, TraitEstimator, check_tolerances, register_estimator

TARGETS = ("bmi", "weight")
_UNITS = {"bmi": "kg/m^2", "weight": "kg", "height": "m"}
_FORMAT = 2  # 2: log targets


def _gp(kernel_theta: np.ndarray | None = None, seed: int = 0):
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

    kernel = ConstantKernel(1.0, (1e-3, 1e3)) * RBF(1.0, (1e-2, 1e2)) + WhiteKernel(0.5, (1e-4, 10.0))
    if kernel_theta is not None:
        kernel = kernel.clone_with_theta(np.asarray(kernel_theta, dtype=np.float64))
    return GaussianProcessRegressor(kernel, normalize_y=True, optimizer="fmin_l_bfgs_b" if kernel_theta is None else None,
                                    random_state=seed)


class BodyMassRegressor:
    """Gaussian-process regression of body-mass targets from face embeddings.

    Args:
        targets: names of the targets (default ``("bmi", "weight")``; ``"height"`` also works).
        optimize_on: at most this many training faces fit the kernel's hyper-parameters.
        seed: random state of that subsample and of the optimiser.

    Attributes (after :meth:`fit`):
        gps_: target -> fitted ``GaussianProcessRegressor``.
        n_train_: number of training faces. embedding_size_: ``D``.

    Shape:
        ``X``: ``(N, D)`` embeddings; each target ``(N,)`` in its unit.

    Example:
        >>> reg = BodyMassRegressor().fit(X, {"bmi": bmi, "weight": weight})      # doctest: +SKIP
        >>> mean, std = reg.predict(X[:2])["bmi"]                                  # doctest: +SKIP
    """

    def __init__(self, targets: Sequence[str] = TARGETS, optimize_on: int = 400, seed: int = 0):
        self.targets = tuple(targets)
        self.optimize_on = int(optimize_on)
        self.seed = seed

    def fit(self, X: np.ndarray, y: Mapping[str, np.ndarray]) -> BodyMassRegressor:
        import warnings

        from sklearn.exceptions import ConvergenceWarning

        X = _check_X(X)
        rng = np.random.default_rng(self.seed)
        sub = np.sort(rng.choice(X.shape[0], size=min(X.shape[0], self.optimize_on), replace=False))
        self.gps_: dict[str, Any] = {}
        for t in self.targets:
            if t not in y:
                raise ConfigError(f"BodyMassRegressor.fit: no values for target {t!r} (have {sorted(y)})")
            v = np.asarray(y[t], dtype=np.float64)
            if v.shape != (X.shape[0],) or not np.all(np.isfinite(v)) or np.any(v <= 0):
                raise ConfigError(f"target {t!r}: expected {X.shape[0]} finite positive values, got shape {v.shape}")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                kernel = _gp(seed=self.seed).fit(X[sub], np.log(v[sub])).kernel_
                self.gps_[t] = _gp(kernel.theta).fit(X, np.log(v))
        self.n_train_ = int(X.shape[0])
        self.embedding_size_ = int(X.shape[1])
        return self

    def predict(self, X: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """target -> ``(estimate (N,), std (N,))``: the predictive median and its delta-method std."""
        return {t: (np.exp(m), np.exp(m) * s) for t, (m, s) in self.predict_log(X).items()}

    def predict_log(self, X: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """target -> ``(mu (N,), sigma (N,))`` of the Gaussian predictive distribution of log(target)."""
        if not hasattr(self, "gps_"):
            raise ConfigError("BodyMassRegressor: call fit() or load() first")
        X = _check_X(X, self.embedding_size_)
        out = {}
        for t, gp in self.gps_.items():
            m, s = gp.predict(X, return_std=True)
            out[t] = (np.asarray(m, np.float64), np.maximum(np.asarray(s, np.float64), 1e-9))
        return out

    def confidence(self, X: np.ndarray, tolerances: Mapping[str, float] | None = None) -> dict[str, np.ndarray]:
        """target -> ``(N,)`` P(|true - estimate| <= tolerance) under the log-normal predictive distribution."""
        tol = check_tolerances(tolerances)
        return {t: lognormal_within(m, s, tol.get(t, 1.0)) for t, (m, s) in self.predict_log(X).items()}

    # ---- persistence: the training set and the fitted kernel hyper-parameters -------------
    def save(self, path: str | os.PathLike, meta: Mapping[str, Any] | None = None) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {}
        for t, gp in self.gps_.items():
            arrays[f"X_{t}"] = np.asarray(gp.X_train_, np.float32)
            arrays[f"y_{t}"] = np.asarray(gp.y_train_ * gp._y_train_std + gp._y_train_mean, np.float64)  # log target
            arrays[f"theta_{t}"] = np.asarray(gp.kernel_.theta, np.float64)
        info = {"format": _FORMAT, "targets": list(self.gps_), "seed": self.seed, "meta": dict(meta or {})}
        tmp = p.with_name(p.name + ".tmp.npz")
        np.savez_compressed(tmp, info=np.array(json.dumps(info)), **arrays)
        os.replace(tmp, p)
        return p

    @classmethod
    def load(cls, path: str | os.PathLike) -> BodyMassRegressor:
        p = Path(path)
        try:
            with np.load(p, allow_pickle=False) as z:
                info = json.loads(str(z["info"]))
                if info.get("format") != _FORMAT:
                    raise ValueError(f"format {info.get('format')}")
                reg = cls(tuple(info["targets"]), seed=int(info.get("seed", 0)))
                reg.gps_ = {t: _gp(z[f"theta_{t}"]).fit(z[f"X_{t}"].astype(np.float64), z[f"y_{t}"]) for t in reg.targets}
                reg.n_train_ = int(z[f"X_{reg.targets[0]}"].shape[0])
                reg.embedding_size_ = int(z[f"X_{reg.targets[0]}"].shape[1])
                reg.meta_ = info.get("meta", {})
        except FileNotFoundError:
            raise WeightsError(f"{p}: body-mass model not found; train one with `xaiface eval soft-biometrics --sets vip` "
                               "or let default_body_mass_regressor() train it") from None
        except (OSError, ValueError, KeyError) as e:
            raise WeightsError(f"{p}: not a body-mass model saved by BodyMassRegressor.save ({e})") from None
        return reg

    def digest(self) -> str:
        h = hashlib.sha256()
        for t, gp in sorted(self.gps_.items()):
            h.update(t.encode())
            h.update(np.asarray(gp.X_train_, np.float32).tobytes())
            h.update(np.asarray(gp.kernel_.theta, np.float64).tobytes())
        return h.hexdigest()


def lognormal_within(mu: np.ndarray, sigma: np.ndarray, tolerance: float) -> np.ndarray:
    """P(|T - exp(mu)| <= tolerance) for log T ~ N(mu, sigma^2), elementwise."""
    from scipy.stats import norm

    mu, sigma = np.asarray(mu, np.float64), np.asarray(sigma, np.float64)
    est = np.exp(mu)
    lo = np.log(np.maximum(est - tolerance, 1e-12))
    hi = np.log(est + tolerance)
    return norm.cdf((hi - mu) / sigma) - norm.cdf((lo - mu) / sigma)


def _check_X(X: np.ndarray, d: int | None = None) -> np.ndarray:
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or X.shape[0] == 0 or (d is not None and X.shape[1] != d) or not np.all(np.isfinite(X)):
        raise ConfigError(f"embeddings must be a finite (N, {d or 'D'}) array with N >= 1, got shape {X.shape}")
    return X


# --------------------------------------------------------------------------- cross-validation


def cross_validate_body_mass(X: np.ndarray, y: Mapping[str, np.ndarray], strata: np.ndarray | None = None,
                             folds: int = 5, seed: int = 0, tolerances: Mapping[str, float] | None = None) -> dict[str, Any]:
    """k-fold cross-validated MAE, RMSE and Pearson r of :class:`BodyMassRegressor`.

    Args:
        X: ``(N, D)`` embeddings. y: target -> ``(N,)``.
        strata: ``(N,)`` labels the folds are stratified by (e.g. gender), or ``None``.
        tolerances: for the calibration check (default :data:`~xaiface.soft.traits.DEFAULT_TOLERANCES`).

    Returns:
        per target: ``mae``, ``rmse``, ``pearson_r``, ``baseline_mae`` (predict the training mean),
        ``baseline_gender_mae`` (the training mean of the face's stratum, when ``strata``), the
        calibration (``mean_confidence`` vs ``fraction_within_tolerance``), per-fold MAEs, and
        ``predictions``/``std``/``truth``/``confidence`` (``(N,)`` lists, out-of-fold).
    """
    from scipy.stats import pearsonr
    from sklearn.model_selection import KFold, StratifiedKFold

    X = _check_X(X)
    n = X.shape[0]
    if not 2 <= folds <= n:
        raise ConfigError(f"folds must be within 2..{n}, got {folds}")
    tol = check_tolerances(tolerances)
    splitter = StratifiedKFold(folds, shuffle=True, random_state=seed) if strata is not None else KFold(folds, shuffle=True, random_state=seed)
    splits = list(splitter.split(X, strata if strata is not None else np.zeros(n)))
    targets = tuple(y)
    pred = {t: np.zeros(n) for t in targets}
    std = {t: np.zeros(n) for t in targets}
    base = {t: np.zeros(n) for t in targets}
    base_g = {t: np.zeros(n) for t in targets}
    conf = {t: np.zeros(n) for t in targets}
    fold_mae: dict[str, list[float]] = {t: [] for t in targets}
    for tr, te in splits:
        reg = BodyMassRegressor(targets, seed=seed).fit(X[tr], {t: np.asarray(y[t])[tr] for t in targets})
        out = reg.predict(X[te])
        cf = reg.confidence(X[te], tol)
        for t in targets:
            conf[t][te] = cf[t]
            v = np.asarray(y[t], np.float64)
            pred[t][te], std[t][te] = out[t]
            base[t][te] = v[tr].mean()
            if strata is not None:
                s = np.asarray(strata)
                for g in np.unique(s[te]):
                    base_g[t][te[s[te] == g]] = v[tr][s[tr] == g].mean()
            fold_mae[t].append(float(np.mean(np.abs(pred[t][te] - v[te]))))
    report: dict[str, Any] = {"folds": folds, "n": n, "seed": seed, "stratified_by": None if strata is None else "gender"}
    for t in targets:
        v = np.asarray(y[t], np.float64)
        err = pred[t] - v
        tl = tol.get(t, 1.0)
        report[t] = {
            "unit": _UNITS.get(t, ""),
            "mae": float(np.mean(np.abs(err))), "rmse": float(np.sqrt(np.mean(err ** 2))),
            "pearson_r": float(pearsonr(pred[t], v)[0]),
            "baseline_mae": float(np.mean(np.abs(base[t] - v))),
            "baseline_gender_mae": None if strata is None else float(np.mean(np.abs(base_g[t] - v))),
            "fold_mae": fold_mae[t],
            "tolerance": tl, "mean_confidence": float(conf[t].mean()),
            "fraction_within_tolerance": float(np.mean(np.abs(err) <= tl)),
            "predictions": pred[t].tolist(), "std": std[t].tolist(), "truth": v.tolist(), "confidence": conf[t].tolist(),
        }
    return report


# -------------------------------------------------------------------------------- estimator


class BodyMassEstimator(TraitEstimator):
    """Traits ``bmi`` and ``weight`` from the recogniser's embedding of the face.

    Args:
        regressor: a fitted :class:`BodyMassRegressor` (default: :func:`default_body_mass_regressor`).
        model: the recogniser whose embeddings it was trained on (name or :class:`FaceModel`).
        tolerances: half-widths for the confidences (default bmi 3 kg/m^2, weight 10 kg).
    """

    name = "vip-body-mass"
    traits = TARGETS
    reference = "Gaussian process on dlib-resnet embeddings, trained here on VIP_attribute (Dantcheva et al. 2018)"
    license = "model trained on research data (VIP_attribute)"

    def __init__(self, regressor: BodyMassRegressor | str | os.PathLike | None = None, model: Any = "dlib-resnet",
                 tolerances: Mapping[str, float] | None = None, data: str | os.PathLike | None = None,
                 progress: bool = False):
        from ..models import get_model

        self.model = get_model(model) if isinstance(model, str) else model
        if regressor is None:
            regressor = default_body_mass_regressor(data=data, model=self.model, progress=progress)
        elif not isinstance(regressor, BodyMassRegressor):
            regressor = BodyMassRegressor.load(regressor)
        self.regressor = regressor
        if regressor.embedding_size_ != self.model.spec.embedding_size:
            raise ConfigError(f"body-mass model takes {regressor.embedding_size_}-d embeddings; model "
                              f"{self.model.spec.name} gives {self.model.spec.embedding_size}-d")
        self.traits = tuple(regressor.targets)
        self.tolerances = check_tolerances(tolerances)

    def settings(self) -> dict[str, Any]:
        from ..pipeline.batch import model_digest

        return {"name": self.name, "regressor": self.regressor.digest(), "model": model_digest(self.model),
                "tolerances": {t: self.tolerances.get(t) for t in self.traits}}

    def traits_from_embeddings(self, E: np.ndarray, faces: Sequence[DetectedFace | None] | None = None,
                               sources: Sequence[str | None] | None = None) -> list[FaceTraits]:
        """Traits from ``(N, D)`` L2-normalised mirror-averaged embeddings (see :func:`~xaiface.pipeline.batch.mirror_average`)."""
        out = self.regressor.predict(E)
        conf = self.regressor.confidence(E, self.tolerances)
        n = len(E)
        faces = faces or [None] * n
        sources = sources or [None] * n
        res = []
        for i in range(n):
            traits = {}
            for t in self.traits:
                m, s = float(out[t][0][i]), float(out[t][1][i])
                tl = self.tolerances.get(t, 1.0)
                traits[t] = Trait(t, m, float(conf[t][i]), self.name, unit=_UNITS.get(t, ""), std=s, tolerance=tl)
            res.append(FaceTraits(traits, faces[i], sources[i]))
        return res

    def estimate(self, photo: np.ndarray, faces: Sequence[DetectedFace], source: str | None = None) -> list[FaceTraits]:
        from ..align import align_face
        from ..pipeline.batch import embed_crops, mirror_average

        if not faces:
            return []
        crops = np.stack([align_face(photo, f, self.model.spec.preprocessing.geometry).image for f in faces])
        return self.traits_from_embeddings(mirror_average(*embed_crops(self.model, crops)), faces, [source] * len(faces))


# ----------------------------------------------------------------------------- VIP training


def vip_embeddings(data: str | os.PathLike | None = None, model: Any = "dlib-resnet", subset: int | None = None,
                   cache: Any = True, progress: bool = True, seed: int = 0) -> dict[str, Any]:
    """Embeddings (mirror-averaged) and labels of VIP_attribute faces.

    Args:
        subset: keep this many faces, half of each gender, drawn at random with ``seed`` (quick runs).

    Returns:
        ``{"X": (N, D), "bmi", "weight", "height": (N,), "male": (N,) bool, "paths": [...],
        "fallback": {path: reason}, "errors": {path: message}}``.
    """
    from ..datasets import VIPAttribute
    from ..models import get_model
    from ..pipeline.batch import embed_faces, locate_faces

    m = get_model(model) if isinstance(model, str) else model
    items = VIPAttribute(data).items()
    if subset is not None:
        if subset < 4:
            raise ConfigError(f"subset must be >= 4, got {subset}")
        rng = np.random.default_rng(seed)
        keep = []
        for g in ("female", "male"):
            idx = [i for i, it in enumerate(items) if it.gender == g]
            keep += list(rng.choice(idx, size=min(len(idx), subset // 2), replace=False))
        items = [items[i] for i in sorted(keep)]
    paths = [str(it.path) for it in items]
    loc = locate_faces(paths, select="center", fallback="image", cache=cache, progress=progress)
    emb = embed_faces(m, loc.faces, progress=progress, desc="embed VIP_attribute",
                      store=True if cache is True else (False if cache is False else True))
    errors = {**loc.errors, **emb.errors}
    ok = [i for i, p in enumerate(paths) if p in emb]
    return {
        "X": emb.vectors([paths[i] for i in ok], flip=True) if ok else np.zeros((0, m.spec.embedding_size), np.float32),
        "bmi": np.array([items[i].bmi for i in ok]), "weight": np.array([items[i].weight for i in ok]),
        "height": np.array([items[i].height for i in ok]), "male": np.array([items[i].gender == "male" for i in ok]),
        "paths": [paths[i] for i in ok], "fallback": loc.fallback, "errors": errors,
    }


def default_body_mass_regressor(data: str | os.PathLike | None = None, model: Any = "dlib-resnet",
                                progress: bool = True, path: str | os.PathLike | None = None) -> BodyMassRegressor:
    """The regressor trained on all of VIP_attribute, from the cache or trained now and cached."""
    from ..datasets import VIPAttribute
    from ..io.hashing import file_sha256
    from ..models import get_model
    from ..pipeline.batch import model_digest

    m = get_model(model) if isinstance(model, str) else model
    if path is None:
        ann = VIPAttribute(data).annotation_path
        key = hashlib.sha256(f"{file_sha256(ann)}:{model_digest(m)}:{_FORMAT}".encode()).hexdigest()[:16]
        path = cache_dir() / "soft" / f"body-mass-{m.spec.name}-{key}.npz"
    p = Path(path)
    if p.is_file():
        return BodyMassRegressor.load(p)
    d = vip_embeddings(data, m, progress=progress)
    reg = BodyMassRegressor(TARGETS).fit(d["X"], {t: d[t] for t in TARGETS})
    reg.save(p, meta={"trained_on": "VIP_attribute", "n": int(len(d["X"])), "model": m.spec.name})
    return reg


@register_estimator("vip-body-mass", TARGETS, "BMI and weight: Gaussian process on face embeddings, trained on VIP_attribute")
def _body_mass(**kwargs: Any) -> BodyMassEstimator:
    return BodyMassEstimator(**kwargs)
