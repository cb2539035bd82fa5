"""Post-hoc concept erasure of face embeddings: gender removed from a fitted embedding (issue 19).

Three erasers beside the adversarial autoencoder of :mod:`.disentangle`, each fitted on the
embeddings and labels of *training* people only and applied to anyone's embedding; every one has a
``strength`` knob for the trade-off curve (leakage against verification accuracy):

* :class:`INLP`: iterative nullspace projection (Ravfogel, Elazar, Gonen, Twiton & Goldberg,
  ACL 2020). Repeatedly: train a linear classifier of the attribute (class-balanced logistic
  regression) on the projected training embeddings, add its weight vector to the removed
  rowspace and project onto the nullspace of all weight vectors so far
  (``P = I - B B^T``, ``B`` an orthonormal basis of the stacked weights, as the paper's
  ``P_N(w_1) ... `` composition); stop when a classifier trained on the projected training
  embeddings is at chance on *held-out* people (balanced accuracy ``<= 1/C + tolerance`` on an
  identity-disjoint development split of the training people, ``patience`` times in a row) or
  after ``max_iterations``. ``strength``: the number of directions removed (the curve).
  Deviation from the paper: logistic regression instead of a linear SVM (either is allowed
  there), and the stopping split is identity-disjoint (faces of one person are not
  independent).
* :class:`LEACE`: least-squares concept erasure (Belrose, Schneider-Joseph, Ravfogel, Cotterell,
  Raff & Biderman, NeurIPS 2023), the closed form of the smallest (in the whitened metric)
  affine edit after which *no* linear classifier beats a constant predictor on the fitting
  data: ``x' = x - W^+ P W (x - mu)``, ``W = Sigma^{-1/2}`` (whitening), ``P`` the orthogonal
  projection onto the column space of ``W Sigma_xz`` (the whitened cross-covariance with the
  one-hot attribute). A further linear baseline. ``strength`` ``a`` in [0, 1]: ``x - a (x - x')``.
* :class:`ConditionalGaussianTransport`: the nonlinear eraser. Each class's embedding distribution
  is moved onto the pooled one by the optimal-transport (Monge) map between Gaussians
  (Knott & Smith 1984; the "quadratic" eraser QLEACE of the concept-erasure library that
  accompanies Belrose et al. 2023): ``x' = mu + A_c (x - mu_c)``,
  ``A_c = S_c^{-1/2} (S_c^{1/2} S S_c^{1/2})^{1/2} S_c^{-1/2}`` for class ``c``'s mean / covariance
  ``mu_c, S_c`` and the pooled ``mu, S`` (both shrunk towards their diagonal by ``shrinkage``).
  Means *and* covariances of the classes then agree, which also defeats quadratic probes.
  QLEACE needs each face's class at transform time; here, as a face's gender is not known when
  it is verified, it is *predicted* from the embedding by a class-balanced logistic regression
  fitted on the same training people (the map is then piecewise affine: nonlinear in ``x``).
  ``strength`` ``a``: ``x + a (x' - x)``.

Every ``transform`` returns the erased ``float32`` rows *not* L2-normalised (``normalise=True``:
normalised): the verifier compares cosines, which do not depend on the norm, while dividing by a
norm that depends on the removed component is a nonlinear step that gives a linear probe some of
the attribute back (measured: :func:`erase_lfw` ``normalise=True``).
:func:`erase_lfw` is the LFW experiment.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import ConfigError
from .disentangle import _balanced_accuracy, _check


def _normalise(E: np.ndarray) -> np.ndarray:
    return (E / np.maximum(np.linalg.norm(E, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def _out(E: np.ndarray, normalise: bool) -> np.ndarray:
    return _normalise(E) if normalise else E.astype(np.float32)


def _labels(X: np.ndarray, y: np.ndarray, who: str) -> tuple[np.ndarray, np.ndarray]:
    X = _check(X).astype(np.float64)
    y = np.asarray(y)
    if y.shape != (X.shape[0],) or not np.issubdtype(y.dtype, np.integer):
        raise ConfigError(f"{who}: expected ({X.shape[0]},) integer labels (-1 unknown), got {y.dtype} {y.shape}")
    keep = y >= 0
    if np.unique(y[keep]).size < 2:
        raise ConfigError(f"{who}: needs at least two classes among the known labels")
    return X[keep], y[keep]


def _linear_probe(C: float = 1.0, seed: int = 0):
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=C, max_iter=2000, class_weight="balanced", random_state=seed)


class INLP:
    """Iterative nullspace projection (see the module docstring).

    Args:
        max_iterations: at most this many classifiers (directions for two classes).
        tolerance: "at chance" means dev balanced accuracy ``<= 1/C + tolerance``.
        patience: consecutive at-chance iterations before stopping.
        dev_fraction: share of the training *people* held out to decide the stop (``groups``
            given), else of the faces.
        C: inverse regularisation of the logistic regressions (inputs standardised per dimension at
            every iteration, as the probes do; the removed direction is the decision direction in
            embedding coordinates, ``w / scale``).
        seed: the development split and the classifiers.

    Attributes (after :meth:`fit`): ``directions_`` ``(k, D)`` orthonormal, in removal order;
    ``history_`` (dev balanced accuracy before each removal); ``n_iterations_``; ``mean_``.
    """

    def __init__(self, max_iterations: int = 100, tolerance: float = 0.01, patience: int = 3, dev_fraction: float = 0.25,
                 C: float = 1.0, seed: int = 0):
        if max_iterations < 1 or patience < 1 or not 0 < dev_fraction < 1 or tolerance < 0:
            raise ConfigError(f"INLP: bad settings max_iterations={max_iterations}, patience={patience}, "
                              f"dev_fraction={dev_fraction}, tolerance={tolerance}")
        self.max_iterations = max_iterations
        self.tolerance = tolerance
        self.patience = patience
        self.dev_fraction = dev_fraction
        self.C = C
        self.seed = seed

    def fit(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None) -> INLP:
        y_all = np.asarray(y)
        g_all = None if groups is None else np.asarray(groups)
        X, y = _labels(X, y_all, "INLP.fit")
        g = None if g_all is None else g_all[y_all >= 0]
        rng = np.random.default_rng(self.seed)
        if g is not None:
            people = rng.permutation(np.unique(g))
            dev_people = set(people[: max(1, int(round(self.dev_fraction * people.size)))].tolist())
            dev = np.array([p in dev_people for p in g])
        else:
            dev = rng.uniform(size=y.size) < self.dev_fraction
        if np.unique(y[dev]).size < 2 or np.unique(y[~dev]).size < 2:
            raise ConfigError("INLP.fit: the development split lacks a class; give more labelled faces")
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        self.mean_ = X[~dev].mean(0)
        Z = X - self.mean_
        chance = 1.0 / np.unique(y).size
        d = X.shape[1]
        basis = np.zeros((0, d))
        self.history_: list[float] = []
        at_chance = 0
        for _ in range(self.max_iterations):
            P = np.eye(d) - basis.T @ basis
            # the classifier standardises the *projected* inputs, like the probes that check it later
            clf = make_pipeline(StandardScaler(), _linear_probe(self.C, self.seed)).fit(Z[~dev] @ P, y[~dev])
            bacc = _balanced_accuracy(y[dev], clf.predict(Z[dev] @ P))
            self.history_.append(float(bacc))
            if bacc <= chance + self.tolerance:
                at_chance += 1
                if at_chance >= self.patience:
                    break
            else:
                at_chance = 0
            added = 0
            scale = clf[0].scale_
            for w in np.atleast_2d(clf[-1].coef_):
                w = P @ (w / scale)  # the decision direction in embedding coordinates
                w = w - basis.T @ (basis @ w)
                n = np.linalg.norm(w)
                if n > 1e-9:
                    basis = np.vstack([basis, w / n])
                    added += 1
            if added == 0 or basis.shape[0] >= d:
                break
        self.directions_ = basis
        self.n_iterations_ = len(self.history_)
        return self

    @property
    def strengths(self) -> list[int]:
        """Possible ``strength`` values: 0 .. number of directions."""
        return list(range(self.directions_.shape[0] + 1))

    def transform(self, X: np.ndarray, strength: int | None = None, normalise: bool = False) -> np.ndarray:
        """Remove the first ``strength`` directions (default: all found): ``x - B^T B (x - mean)``."""
        if not hasattr(self, "directions_"):
            raise ConfigError("INLP: call fit() first")
        X = _check(X, self.directions_.shape[1]).astype(np.float64)
        B = self.directions_[: self.directions_.shape[0] if strength is None else int(strength)]
        Z = X - self.mean_
        return _out(Z - (Z @ B.T) @ B + self.mean_, normalise)


def _sqrtm_psd(S: np.ndarray, inverse: bool = False, eps: float = 1e-10) -> np.ndarray:
    w, V = np.linalg.eigh((S + S.T) / 2)
    w = np.maximum(w, eps)
    return (V * (w ** (-0.5 if inverse else 0.5))) @ V.T


def _shrunk_cov(X: np.ndarray, shrinkage: float) -> np.ndarray:
    S = np.cov(X, rowvar=False)
    return (1 - shrinkage) * S + shrinkage * np.diag(np.diag(S))


class LEACE:
    """Least-squares concept erasure (see the module docstring).

    Args:
        shrinkage: covariance shrinkage towards its diagonal (numerical stability; 0 = exact).

    Attributes (after :meth:`fit`): ``mean_`` ``(D,)``, ``eraser_`` ``(D, D)`` (``x' = x - (x - mean) @ eraser``).
    """

    def __init__(self, shrinkage: float = 0.0):
        if not 0 <= shrinkage < 1:
            raise ConfigError(f"LEACE: shrinkage must be in [0, 1), got {shrinkage}")
        self.shrinkage = shrinkage

    def fit(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None) -> LEACE:
        X, y = _labels(X, y, "LEACE.fit")
        classes = np.unique(y)
        Zc = (y[:, None] == classes[None, :]).astype(np.float64)[:, :-1]  # one-hot without the last class (full rank)
        mu = X.mean(0)
        Xc = X - mu
        S = _shrunk_cov(X, self.shrinkage)
        Sxz = Xc.T @ (Zc - Zc.mean(0)) / (X.shape[0] - 1)
        W, W_inv = _sqrtm_psd(S, inverse=True), _sqrtm_psd(S)
        U, s, _ = np.linalg.svd(W @ Sxz, full_matrices=False)
        U = U[:, s > 1e-12 * max(1.0, s.max())]
        P = U @ U.T
        # x' = x - W^+ P W (x - mu); rows: (x - mu) @ (W P W^+)^T = (x - mu) @ W P W_inv (all symmetric)
        self.mean_ = mu
        self.eraser_ = W @ P @ W_inv
        return self

    strengths = (0.0, 0.25, 0.5, 0.75, 1.0)

    def transform(self, X: np.ndarray, strength: float = 1.0, normalise: bool = False) -> np.ndarray:
        if not hasattr(self, "eraser_"):
            raise ConfigError("LEACE: call fit() first")
        X = _check(X, self.mean_.shape[0]).astype(np.float64)
        return _out(X - float(strength) * ((X - self.mean_) @ self.eraser_), normalise)

    def erase(self, X: np.ndarray) -> np.ndarray:
        """The erased embeddings *before* L2 normalisation (the exact LEACE output)."""
        X = _check(X, self.mean_.shape[0]).astype(np.float64)
        return X - (X - self.mean_) @ self.eraser_


class ConditionalGaussianTransport:
    """Class-conditional Gaussian optimal transport to the pooled distribution (module docstring).

    Args:
        shrinkage: covariance shrinkage towards the diagonal (the class covariances of a few
            thousand 128-d faces need it).
        C: inverse regularisation of the logistic regression that predicts the class at transform time.
        seed: of that regression.

    Attributes (after :meth:`fit`): ``classes_``, ``mean_`` (pooled), ``class_means_``, ``maps_``
    ``(C, D, D)``, ``classifier_`` (the class predictor), ``train_accuracy_`` (its balanced
    accuracy on the training faces).
    """

    def __init__(self, shrinkage: float = 0.1, C: float = 1.0, seed: int = 0):
        if not 0 <= shrinkage < 1:
            raise ConfigError(f"ConditionalGaussianTransport: shrinkage must be in [0, 1), got {shrinkage}")
        self.shrinkage = shrinkage
        self.C = C
        self.seed = seed

    def fit(self, X: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None) -> ConditionalGaussianTransport:
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        X, y = _labels(X, y, "ConditionalGaussianTransport.fit")
        self.classes_ = np.unique(y)
        self.mean_ = X.mean(0)
        S = _shrunk_cov(X, self.shrinkage)
        maps, means = [], []
        for c in self.classes_:
            Xc = X[y == c]
            if Xc.shape[0] < 3:
                raise ConfigError(f"ConditionalGaussianTransport.fit: class {c} has {Xc.shape[0]} faces; need >= 3")
            Sc = _shrunk_cov(Xc, self.shrinkage)
            Sc_half, Sc_ihalf = _sqrtm_psd(Sc), _sqrtm_psd(Sc, inverse=True)
            maps.append(Sc_ihalf @ _sqrtm_psd(Sc_half @ S @ Sc_half) @ Sc_ihalf)
            means.append(Xc.mean(0))
        self.maps_ = np.stack(maps)
        self.class_means_ = np.stack(means)
        self.classifier_ = make_pipeline(StandardScaler(), _linear_probe(self.C, self.seed)).fit(X, y)
        self.train_accuracy_ = _balanced_accuracy(y, self.classifier_.predict(X))
        return self

    strengths = (0.0, 0.25, 0.5, 0.75, 1.0)

    def transform(self, X: np.ndarray, strength: float = 1.0, labels: np.ndarray | None = None,
                  normalise: bool = False) -> np.ndarray:
        """Transport each face by the map of its predicted class (``labels``: given classes instead)."""
        if not hasattr(self, "maps_"):
            raise ConfigError("ConditionalGaussianTransport: call fit() first")
        X = _check(X, self.mean_.shape[0]).astype(np.float64)
        c = self.classifier_.predict(X) if labels is None else np.asarray(labels)
        out = X.copy()
        for k, cls in enumerate(self.classes_):
            m = c == cls
            if m.any():
                out[m] = self.mean_ + (X[m] - self.class_means_[k]) @ self.maps_[k].T
        return _out(X + float(strength) * (out - X), normalise)


ERASERS = {"inlp": INLP, "leace": LEACE, "gaussian-ot": ConditionalGaussianTransport}


# ------------------------------------------------------------------------------ LFW experiment


def _probe_half(E: np.ndarray, y: np.ndarray, person: np.ndarray, half: np.ndarray, clf: str, seed: int) -> dict[str, Any]:
    from .disentangle import attribute_predictability

    res = [attribute_predictability(E[half == h], y[half == h], person[half == h], classifier=clf, seed=seed) for h in (0, 1)]
    return {"balanced_accuracy": float(np.mean([r["balanced_accuracy"] for r in res])),
            "per_half": [r["balanced_accuracy"] for r in res], "n": int(sum(r["n"] for r in res)), "chance": res[0]["chance"]}


def erase_lfw(out_dir: str | os.PathLike, *, model: str = "dlib-resnet", data: str | os.PathLike | None = None,
              all_images: bool = False, methods: Sequence[str] = ("inlp", "leace", "gaussian-ot", "autoencoder"),
              probes: Sequence[str] = ("logistic", "mlp", "hgb"), curve_probes: Sequence[str] = ("logistic", "mlp"),
              cache: Any = True, progress: bool = True, seed: int = 0, inlp: Mapping[str, Any] | None = None,
              autoencoder: Mapping[str, Any] | None = None, normalise: bool = False) -> dict[str, Any]:
    """Gender erasure on LFW: leakage (three probes) and verification (accuracy, EER), per method and strength.

    Split as :func:`~xaiface.soft.disentangle.disentangle_lfw`: every eraser is fitted on the
    people of LFW folds 1-5 and applied to folds 6-10, and vice versa, so no face is erased by a
    model that saw its person. Leakage: :func:`~xaiface.soft.disentangle.attribute_predictability`
    (a fresh probe, identity-disjoint 5-fold cross-validation within each held-out half: trained
    on some held-out people, scored on others), balanced accuracy averaged over the two halves;
    probes ``logistic``, ``mlp`` and ``hgb`` (scikit-learn's HistGradientBoostingClassifier). Also,
    for the full setting, the literal protocol: the probe trained on the erased embeddings of the
    eraser's own training people and scored on the held-out half
    (``leakage_probe_on_training_people``; weaker, as an eraser leaves its own training faces
    cleaner than others).
    Verification: the LFW View 2 10-fold protocol (:func:`xaiface.verify.lfw_protocol`: each
    fold's threshold chosen on the other nine) on cosine similarities of the erased embeddings.

    Each method's strengths (INLP: directions removed, 0..found; LEACE / transport: 0..1;
    ``autoencoder``: the existing :class:`~xaiface.soft.disentangle.DemographicDisentangler`,
    gender only, one setting) give a trade-off curve (``curve_probes``); the full setting gets
    every probe. ``normalise``: the probes see L2-normalised erased embeddings (default: as erased;
    the autoencoder's codes are always normalised). Writes ``report.json``, ``table.md`` and
    ``tradeoff.png``; returns the report.
    """
    from ..verify import lfw_protocol
    from ..verify.similarity import pair_similarity
    from .disentangle import DemographicDisentangler, lfw_embeddings, transfer_predictability

    t0 = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    d = lfw_embeddings(model=model, data=data, all_images=all_images, cache=cache, progress=progress)
    X, y, person, half = d["X"], d["gender"], d["person"], d["half"]
    ia, ib, labels, folds = d["pair_a"], d["pair_b"], d["pair_same"], d["pair_fold"]

    def verify(E: np.ndarray) -> dict[str, float]:
        En = E / np.maximum(np.linalg.norm(E, axis=1, keepdims=True), 1e-12)  # cosine similarity
        rep = lfw_protocol(pair_similarity(En[ia], En[ib]), labels, folds)
        return {"accuracy": rep.mean_accuracy, "std_accuracy": rep.std_accuracy, "eer": rep.eer}

    def leak(E: np.ndarray, which: Sequence[str]) -> dict[str, Any]:
        return {c: _probe_half(E, y, person, half, c, seed) for c in which}

    report: dict[str, Any] = {"model": model, "images": int(len(X)), "labelled_gender": int((y >= 0).sum()),
                              "probes_see": "L2-normalised erased embeddings" if normalise else
                              "erased embeddings, not renormalised (verification: their cosine)",
                              "split": "erasers fitted on the people of LFW folds 1-5 and applied to 6-10, and vice versa",
                              "probes": list(probes), "methods": {}}
    base = {"leakage": leak(X, probes), "verification": verify(X),
            "leakage_probe_on_training_people": {c: {"balanced_accuracy": float(np.mean(
                [transfer_predictability(X[half == h], y[half == h], X[half != h], y[half != h], c, seed)["balanced_accuracy"]
                 for h in (0, 1)]))} for c in probes}}
    report["original"] = base
    for name in methods:
        t1 = time.perf_counter()
        fitted = {}
        for h in (0, 1):
            tr = half == h
            if name == "inlp":
                fitted[h] = INLP(**{"seed": seed, **(inlp or {})}).fit(X[tr], y[tr], person[tr])
            elif name == "leace":
                fitted[h] = LEACE().fit(X[tr], y[tr])
            elif name == "gaussian-ot":
                fitted[h] = ConditionalGaussianTransport(seed=seed).fit(X[tr], y[tr])
            elif name == "autoencoder":
                fitted[h] = DemographicDisentangler(**{"seed": seed, **(autoencoder or {})}).fit(X[tr], {"gender": y[tr]},
                                                                                                 progress=progress)
            else:
                raise ConfigError(f"unknown erasure method {name!r}; choose from {[*ERASERS, 'autoencoder']}")

        def apply(strength: Any) -> np.ndarray:
            E = np.zeros_like(X)
            for h in (0, 1):
                te = half != h
                kw = {} if name == "autoencoder" else {"normalise": normalise}
                E[te] = fitted[h].transform(X[te], **kw) if strength is None else fitted[h].transform(X[te], strength, **kw)
            return E

        if name == "inlp":
            n_dirs = min(f.directions_.shape[0] for f in fitted.values())
            grid = sorted({0, 1, 2, 4, 8, 16, 24, 32, 48, 64, 96, n_dirs} & set(range(n_dirs + 1)))
            strengths: list[Any] = [s for s in grid if s < n_dirs]
            full: Any = None  # each half's own stopping point
            extra = {"directions_found": [int(f.directions_.shape[0]) for f in fitted.values()],
                     "iterations": [int(f.n_iterations_) for f in fitted.values()],
                     "dev_balanced_accuracy": [f.history_ for f in fitted.values()]}
        elif name == "autoencoder":
            strengths, full, extra = [], None, {"final_epoch": [f.history_[-1] for f in fitted.values()]}
        else:
            strengths, full = [s for s in ERASERS[name].strengths if s != 1.0], 1.0
            extra = ({"predictor_train_balanced_accuracy": [float(f.train_accuracy_) for f in fitted.values()]}
                     if name == "gaussian-ot" else {})
        curve = []
        for s in strengths:
            E = apply(s)
            curve.append({"strength": s, "leakage": {c: v["balanced_accuracy"] for c, v in leak(E, curve_probes).items()},
                          **verify(E)})
        E = apply(full)
        final = {"leakage": leak(E, probes), "verification": verify(E)}
        # the literal protocol: probe trained on the erased embeddings of the eraser's own training people
        own: dict[str, list[float]] = {c: [] for c in probes}
        for h in (0, 1):
            tr = half == h
            kw = {} if name == "autoencoder" else {"normalise": normalise}
            E_tr = fitted[h].transform(X[tr], **kw)
            for c in probes:
                own[c].append(transfer_predictability(E_tr, y[tr], E[~tr], y[~tr], c, seed)["balanced_accuracy"])
        final["leakage_probe_on_training_people"] = {c: {"balanced_accuracy": float(np.mean(v)), "per_half": v}
                                                     for c, v in own.items()}
        curve.append({"strength": "full" if full is None else full,
                      "leakage": {c: final["leakage"][c]["balanced_accuracy"] for c in curve_probes}, **final["verification"]})
        report["methods"][name] = {**final, "curve": curve, **extra, "seconds": round(time.perf_counter() - t1, 1)}
        (out / "report.json").write_text(json.dumps(report, indent=2, default=str))  # as it goes

    report["table"] = _table(report, probes)
    (out / "table.md").write_text(report["table"])
    _tradeoff_plot(report, out / "tradeoff.png", curve_probes)
    report["seconds"] = round(time.perf_counter() - t0, 1)
    (out / "report.json").write_text(json.dumps(report, indent=2, default=str))
    return report


_NAMES = {"inlp": "INLP (Ravfogel et al. 2020)", "leace": "LEACE (Belrose et al. 2023)",
          "gaussian-ot": "class-conditional Gaussian OT (QLEACE-style, predicted gender)",
          "autoencoder": "adversarial autoencoder (existing DemographicDisentangler, gender only)"}


def _table(report: Mapping[str, Any], probes: Sequence[str]) -> str:
    head = "| embeddings | " + " | ".join(f"gender bal. acc. ({p})" for p in probes) + " | LFW accuracy | LFW EER | accuracy lost |"
    rows = [head, "|" + "---|" * (len(probes) + 4)]
    base_acc = report["original"]["verification"]["accuracy"]
    for name, r in [("original", report["original"]), *report["methods"].items()]:
        v = r["verification"]
        cells = " | ".join(f"{100 * r['leakage'][p]['balanced_accuracy']:.1f}%" for p in probes)
        rows.append(f"| {_NAMES.get(name, name)} | {cells} | {100 * v['accuracy']:.2f}% +- {100 * v['std_accuracy']:.2f}% | "
                    f"{100 * v['eer']:.2f}% | {100 * (base_acc - v['accuracy']):.2f} |")
    rows += ["", "Probes trained on the erased embeddings of the eraser's own training people, scored on the held-out half:", "",
             "| embeddings | " + " | ".join(f"gender bal. acc. ({p})" for p in probes) + " |", "|" + "---|" * (len(probes) + 1)]
    for name, r in [("original", report["original"]), *report["methods"].items()]:
        lt = r.get("leakage_probe_on_training_people", {})
        rows.append(f"| {_NAMES.get(name, name)} | " + " | ".join(
            f"{100 * lt[p]['balanced_accuracy']:.1f}%" if p in lt else "-" for p in probes) + " |")
    return "\n".join(rows) + "\n\nChance: 50.0% (balanced accuracy, two classes). Goal: every probe <= 60% with <= 1 point of accuracy lost.\n"


def _tradeoff_plot(report: Mapping[str, Any], path: Path, probes: Sequence[str]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(probes), figsize=(5.6 * len(probes), 5.2), squeeze=False)
    base = report["original"]
    colours = {"inlp": "#b4235a", "leace": "#4a6fa5", "gaussian-ot": "#1a7f37", "autoencoder": "#8a6d00"}
    for ax, p in zip(axes[0], probes):
        ax.scatter([100 * base["leakage"][p]["balanced_accuracy"]], [100 * base["verification"]["accuracy"]], color="k",
                   marker="*", s=120, label="original", zorder=3)
        for name, r in report["methods"].items():
            xs = [100 * c["leakage"][p] for c in r["curve"]]
            ys = [100 * c["accuracy"] for c in r["curve"]]
            ax.plot(xs, ys, "o-", color=colours.get(name), label=_NAMES.get(name, name), ms=4)
            if name == "inlp":
                for c, x_, y_ in zip(r["curve"], xs, ys):
                    ax.annotate(str(c["strength"]), (x_, y_), fontsize=6, xytext=(2, 2), textcoords="offset points")
        ax.axvline(60, color="grey", ls="--", lw=1)
        ax.axhline(100 * base["verification"]["accuracy"] - 1, color="grey", ls=":", lw=1)
        ax.axvline(50, color="k", lw=0.5)
        ax.set_xlabel(f"gender leakage: balanced accuracy of a fresh {p} probe (%)")
        ax.set_ylabel("LFW View 2 accuracy (%)")
        ax.set_title(f"leakage vs verification ({p} probe)")
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, names, fontsize=8, loc="lower center", ncol=3)
    fig.suptitle("gender erasure on LFW: goal region left of the dashed line (60%) and above the dotted one (-1 point)",
                 fontsize=9)
    fig.tight_layout(rect=(0, 0.1, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def replot(report_json: str | os.PathLike, path: str | os.PathLike, probes: Sequence[str] = ("logistic", "mlp")) -> Path:
    """Draw ``tradeoff.png`` again from a saved ``report.json`` of :func:`erase_lfw`."""
    _tradeoff_plot(json.loads(Path(report_json).read_text()), Path(path), probes)
    return Path(path)
