"""Demographic disentangling of face embeddings (D5.2 section 3.2.1).

:class:`DemographicDisentangler` is an autoencoder on embeddings trained against adversaries:

* the encoder maps an embedding ``x`` (``D``) to a code ``z`` (``code_size``), and the decoder
  reconstructs ``x`` from ``z`` *and the attributes* (one-hot, as in Fader networks), so the code
  need not carry them to reconstruct;
* one adversary per attribute (gender; optionally an age group) predicts it from ``z``; it is
  trained to predict (class-balanced cross-entropy) and the encoder to leave it at chance
  (cross-entropy towards the uniform distribution);
* because an adversary that is fooled today leaves information a fresh classifier finds
  tomorrow, the encoder also minimises a kernel two-sample statistic (MMD with RBF kernels at
  several bandwidths) between the codes of each class and those of all faces in the batch: the
  class-conditional code distributions are pulled together, whatever classifier comes later;
* identity is kept by the reconstruction (``1 - cos``) and by a similarity-preservation loss:
  within a batch, the cosine similarities of the codes of two faces of the *same labelled
  gender* are pulled to those of their embeddings (pairs of different genders are left free,
  as their similarity is partly the gender the code must lose).

The verdict is then taken on the codes (cosine of L2-normalised codes). :func:`attribute_predictability`
is the check of D5.2's question: a fresh classifier (logistic regression or an MLP), cross-validated
with folds disjoint in identity, trained on original or on disentangled embeddings: the goal is
chance level (balanced accuracy 1/classes). :func:`disentangle_lfw` runs the LFW experiment.
"""
from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import ConfigError
from ..verify.similarity import pair_similarity


def _mlp(i: int, h: int, o: int):
    import torch.nn as nn

    return nn.Sequential(nn.Linear(i, h), nn.ReLU(), nn.Linear(h, h), nn.ReLU(), nn.Linear(h, o))


def _residual_encoder(d: int, h: int, linear: bool = False, rank: int | None = None):
    """``z = x + f(x)`` with ``f``'s last layer zero: training starts from the embedding itself, so
    the code keeps identity unless a loss asks otherwise (and generalises to unseen people).
    ``linear``: ``f`` is one linear map (``z = (I + A) x + b``), of rank ``rank`` when given
    (``A = U V^T``: few parameters, so what it learns on some people transfers to others)."""
    import torch.nn as nn

    class Residual(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            if linear:
                self.f = nn.Sequential(nn.Linear(d, rank, bias=False), nn.Linear(rank, d)) if rank else nn.Sequential(nn.Linear(d, d))
            else:
                self.f = _mlp(d, h, d)
            nn.init.zeros_(self.f[-1].weight)
            nn.init.zeros_(self.f[-1].bias)

        def forward(self, x):
            return x + self.f(x)

    return Residual()


class DemographicDisentangler:
    """Adversarial autoencoder that removes attributes from embeddings (see the module docstring).

    Args:
        code_size: size of the code (default: the embedding size).
        encoder: ``"residual"`` (``z = x + f(x)``, ``f`` an MLP whose last layer starts at zero, so
            training starts from the embedding itself), ``"linear"`` (``z = (I + A) x + b``, ``A``
            from zero) or ``"mlp"`` (a plain MLP, any ``code_size``).
        rank: the rank of ``A`` for the linear encoder (``None``: full).
        hidden: width of the encoder / decoder layers; adversary_hidden: of the adversaries
            (0: linear adversaries). adversary_lr: their learning rate (default ``lr``).
        adversary_weight, similarity_weight, reconstruction_weight, mmd_weight: loss weights of the encoder.
        adversary_steps: adversary updates per encoder update.
        epochs, batch_size, lr, weight_decay: Adam training schedule.
        seed: torch and numpy seed. threads: torch threads while fitting (default: unchanged).

    Attributes (after :meth:`fit`):
        attributes_: name -> number of classes. history_: one dict of losses and adversary
        balanced accuracies per epoch. embedding_size_.

    Shape:
        ``X``: ``(N, D)`` embeddings; an attribute ``(N,)`` int in ``0..C-1``, ``-1`` = unknown.

    Example:
        >>> dis = DemographicDisentangler(epochs=40).fit(X, {"gender": g})   # doctest: +SKIP
        >>> Z = dis.transform(X)                                            # doctest: +SKIP
    """

    def __init__(self, code_size: int | None = None, encoder: str = "linear", rank: int | None = None, hidden: int = 256,
                 adversary_hidden: int = 128,
                 adversary_weight: float = 1.0, similarity_weight: float = 10.0, reconstruction_weight: float = 1.0,
                 mmd_weight: float = 100.0, weight_decay: float = 0.0, adversary_steps: int = 3,
                 adversary_lr: float | None = None, epochs: int = 40, batch_size: int = 256, lr: float = 1e-3, seed: int = 0,
                 threads: int | None = None):
        self.code_size = code_size
        self.encoder = encoder
        self.rank = rank
        self.hidden = hidden
        self.adversary_hidden = adversary_hidden
        self.adversary_weight = adversary_weight
        self.similarity_weight = similarity_weight
        self.reconstruction_weight = reconstruction_weight
        self.mmd_weight = mmd_weight
        self.weight_decay = weight_decay
        self.adversary_lr = adversary_lr
        self.adversary_steps = adversary_steps
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.seed = seed
        self.threads = threads

    def fit(self, X: np.ndarray, attributes: Mapping[str, np.ndarray], similarity_attribute: str | None = "gender",
            progress: bool = False) -> DemographicDisentangler:
        """Train on embeddings ``X`` and their attributes.

        Args:
            similarity_attribute: similarities are preserved only between faces with the same
                known value of this attribute (``None``: between all faces).
        """
        import torch
        import torch.nn.functional as F
        from tqdm import tqdm

        X = _check(X)
        if not attributes:
            raise ConfigError("DemographicDisentangler.fit: give at least one attribute to remove")
        labels = {}
        for k, v in attributes.items():
            a = np.asarray(v)
            if a.shape != (X.shape[0],) or not np.issubdtype(a.dtype, np.integer):
                raise ConfigError(f"attribute {k!r}: expected ({X.shape[0]},) integer labels (-1 unknown), got {a.dtype} {a.shape}")
            known = a[a >= 0]
            if np.unique(known).size < 2:
                raise ConfigError(f"attribute {k!r}: needs at least two classes among the known labels")
            labels[k] = a.astype(np.int64)
        if similarity_attribute is not None and similarity_attribute not in labels:
            raise ConfigError(f"similarity_attribute {similarity_attribute!r} is not one of the attributes {sorted(labels)}")
        old_threads = torch.get_num_threads()
        if self.threads:
            torch.set_num_threads(self.threads)
        try:
            torch.manual_seed(self.seed)
            rng = np.random.default_rng(self.seed)
            d = X.shape[1]
            c = self.code_size or d
            self.attributes_ = {k: int(v.max()) + 1 for k, v in labels.items()}
            n_onehot = sum(self.attributes_.values())
            if self.encoder not in ("residual", "linear", "mlp"):
                raise ConfigError(f"encoder must be 'residual', 'linear' or 'mlp', got {self.encoder!r}")
            if self.encoder != "mlp" and c != d:
                raise ConfigError(f"a {self.encoder} encoder keeps the embedding size {d}; code_size {c} needs encoder='mlp'")
            self._enc = _mlp(d, self.hidden, c) if self.encoder == "mlp" else _residual_encoder(d, self.hidden, self.encoder == "linear", self.rank)
            self._dec = _mlp(c + n_onehot, self.hidden, d)
            self._adv = torch.nn.ModuleDict({k: _mlp(c, self.adversary_hidden, n) if self.adversary_hidden else torch.nn.Linear(c, n)
                                             for k, n in self.attributes_.items()})
            opt = torch.optim.Adam(list(self._enc.parameters()) + list(self._dec.parameters()), lr=self.lr,
                                   weight_decay=self.weight_decay)
            opt_a = torch.optim.Adam(self._adv.parameters(), lr=self.adversary_lr or self.lr)
            xt = torch.from_numpy(X)
            yt = {k: torch.from_numpy(v) for k, v in labels.items()}
            weights = {}
            for k, v in labels.items():  # class-balanced adversaries: chance is 1/C whatever the class shares
                counts = np.bincount(v[v >= 0], minlength=self.attributes_[k]).astype(np.float64)
                weights[k] = torch.tensor(np.where(counts > 0, counts.sum() / (len(counts) * np.maximum(counts, 1)), 0.0),
                                          dtype=torch.float32)
            onehot = torch.cat([_onehot(yt[k], n) for k, n in self.attributes_.items()], dim=1)
            n = X.shape[0]
            bs = min(self.batch_size, n)
            self.history_: list[dict[str, float]] = []
            for epoch in tqdm(range(self.epochs), desc="disentangle", disable=not progress, unit="epoch"):
                perm = rng.permutation(n)
                tot: dict[str, float] = {"reconstruction": 0.0, "similarity": 0.0, "confusion": 0.0, "mmd": 0.0}
                steps = 0
                for i in range(0, n - bs + 1, bs):
                    idx = torch.from_numpy(perm[i : i + bs])
                    xb, ob = xt[idx], onehot[idx]
                    # adversaries learn to read the attributes from the (fixed) codes
                    with torch.no_grad():
                        zb_fixed = self._enc(xb)
                    for _ in range(self.adversary_steps):
                        loss_a = sum(_ce(self._adv[k](zb_fixed), yt[k][idx], weights[k]) for k in self.attributes_)
                        opt_a.zero_grad()
                        loss_a.backward()  # type: ignore[union-attr]
                        opt_a.step()
                    # encoder/decoder: reconstruct, keep similarities, leave the adversaries at chance
                    zb = self._enc(xb)
                    rec = (1 - F.cosine_similarity(self._dec(torch.cat([zb, ob], 1)), xb, dim=1)).mean()
                    zn = F.normalize(zb, dim=1)
                    cz, cx = zn @ zn.T, xb @ xb.T
                    if similarity_attribute is not None:
                        g = yt[similarity_attribute][idx]
                        mask = (g[:, None] == g[None, :]) & (g[:, None] >= 0)
                    else:
                        mask = torch.ones(bs, bs, dtype=torch.bool)
                    mask &= ~torch.eye(bs, dtype=torch.bool)
                    sim = ((cz - cx)[mask] ** 2).mean() if mask.any() else zb.sum() * 0
                    conf = sum(_confusion(self._adv[k](zb), yt[k][idx]) for k in self.attributes_)
                    mmd = sum(_mmd_to_pool(zn, yt[k][idx], n_cls) for k, n_cls in self.attributes_.items())
                    loss = (self.reconstruction_weight * rec + self.similarity_weight * sim + self.adversary_weight * conf
                            + self.mmd_weight * mmd)
                    opt.zero_grad()
                    loss.backward()  # type: ignore[union-attr]
                    opt.step()
                    tot["reconstruction"] += float(rec.detach())
                    tot["similarity"] += float(sim.detach())
                    tot["confusion"] += float(conf.detach())  # type: ignore[union-attr]
                    tot["mmd"] += float(mmd.detach())  # type: ignore[union-attr]
                    steps += 1
                rec_ep = {k: v / max(1, steps) for k, v in tot.items()}
                with torch.no_grad():
                    z = self._enc(xt)
                    for k in self.attributes_:
                        rec_ep[f"adversary_{k}_balanced_accuracy"] = _balanced_accuracy(
                            labels[k], self._adv[k](z).argmax(1).numpy())
                self.history_.append({"epoch": epoch + 1, **rec_ep})
            self.embedding_size_ = d
            self._enc.eval()
        finally:
            torch.set_num_threads(old_threads)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        """``(N, code_size)`` L2-normalised codes of embeddings ``X``."""
        import torch
        import torch.nn.functional as F

        if not hasattr(self, "_enc"):
            raise ConfigError("DemographicDisentangler: call fit() first")
        X = _check(X, self.embedding_size_)
        with torch.no_grad():
            return F.normalize(self._enc(torch.from_numpy(X)), dim=1).numpy().astype(np.float32)


def _check(X: np.ndarray, d: int | None = None) -> np.ndarray:
    X = np.asarray(X, dtype=np.float32)
    if X.ndim != 2 or X.shape[0] < 2 or (d is not None and X.shape[1] != d) or not np.all(np.isfinite(X)):
        raise ConfigError(f"embeddings must be a finite (N, {d or 'D'}) array with N >= 2, got shape {X.shape}")
    return np.ascontiguousarray(X)


def _onehot(y, n: int):
    import torch

    out = torch.zeros(y.shape[0], n)
    known = y >= 0
    out[known, y[known]] = 1.0
    return out


def _ce(logits, y, weight):
    import torch.nn.functional as F

    known = y >= 0
    if not known.any():
        return logits.sum() * 0
    return F.cross_entropy(logits[known], y[known], weight=weight)


def _mmd_to_pool(z, y, n_classes: int, bandwidths: Sequence[float] = (0.25, 0.5, 1.0, 2.0)):
    """Sum over classes of the squared MMD (multi-bandwidth RBF) between the codes of a class and of
    all labelled faces of the batch: zero when every class's codes are distributed alike."""
    import torch

    known = y >= 0
    pool = z[known]
    total = z.sum() * 0
    if pool.shape[0] < 4:
        return total

    def k(a, b):
        d2 = torch.cdist(a, b).pow(2)
        return sum(torch.exp(-d2 / (2 * w * w)) for w in bandwidths)

    kpp = k(pool, pool).mean()
    for c in range(n_classes):
        zc = z[y == c]
        if zc.shape[0] < 2:
            continue
        total = total + k(zc, zc).mean() - 2 * k(zc, pool).mean() + kpp
    return total


def _confusion(logits, y):
    """Cross-entropy of the adversary's prediction against the uniform distribution (labelled faces)."""
    import torch.nn.functional as F

    known = y >= 0
    if not known.any():
        return logits.sum() * 0
    return -F.log_softmax(logits[known], dim=1).mean()


def _balanced_accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    known = y >= 0
    classes = np.unique(y[known])
    return float(np.mean([np.mean(pred[known][y[known] == c] == c) for c in classes]))


class LinearAttributeProjection:
    """Baseline: iterative nullspace projection (Ravfogel et al., ACL 2020).

    ``directions`` times: fit a class-balanced logistic regression of the attribute on the
    projected embeddings and project its weight direction out. No identity term: what it costs
    in verification is measured, not traded.

    Attributes (after :meth:`fit`): ``projection_`` ``(D, D)``; ``directions_`` ``(k, D)``.
    """

    def __init__(self, directions: int = 5):
        self.directions = directions

    def fit(self, X: np.ndarray, y: np.ndarray) -> LinearAttributeProjection:
        from sklearn.linear_model import LogisticRegression

        X = _check(X).astype(np.float64)
        y = np.asarray(y)
        keep = y >= 0
        P = np.eye(X.shape[1])
        dirs = []
        for _ in range(self.directions):
            clf = LogisticRegression(max_iter=2000, class_weight="balanced").fit(X[keep] @ P, y[keep])
            for w in np.atleast_2d(clf.coef_):
                w = P @ w
                for u in dirs:  # keep the removed directions orthonormal
                    w = w - (w @ u) * u
                n = np.linalg.norm(w)
                if n < 1e-9:
                    continue
                w = w / n
                dirs.append(w)
                P = P - np.outer(w, w)
        self.projection_ = P
        self.directions_ = np.array(dirs)
        return self

    def transform(self, X: np.ndarray) -> np.ndarray:
        if not hasattr(self, "projection_"):
            raise ConfigError("LinearAttributeProjection: call fit() first")
        E = _check(X, self.projection_.shape[0]).astype(np.float64) @ self.projection_
        return (E / np.linalg.norm(E, axis=1, keepdims=True)).astype(np.float32)


# ------------------------------------------------------------------------------ predictability


def attribute_predictability(X: np.ndarray, y: np.ndarray, groups: np.ndarray | None = None, folds: int = 5,
                             classifier: str = "logistic", seed: int = 0) -> dict[str, Any]:
    """How well a fresh classifier predicts an attribute from embeddings, cross-validated.

    Args:
        X: ``(N, D)``; y: ``(N,)`` int labels (``-1`` unknown: dropped).
        groups: ``(N,)`` identity of each face: folds never split an identity (a classifier
            could otherwise read the attribute off the identity it memorised).
        classifier: ``"logistic"`` (scikit-learn, standardised inputs, class-balanced), ``"mlp"``
            (one hidden layer of 128, early stopping after 5 epochs without progress, at most 100;
            minority classes resampled to balance) or ``"hgb"`` (scikit-learn's
            HistGradientBoostingClassifier: at most 200 trees, early stopping on a 10% validation
            split, class-balanced).

    Returns:
        ``balanced_accuracy`` (mean of per-class recalls; chance = ``1 / classes``), ``accuracy``,
        ``majority_accuracy`` (always predicting the largest class), ``chance``, ``n``, per-fold values.
    """
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    X = np.asarray(X, np.float64)
    y = np.asarray(y)
    keep = y >= 0
    X, y = X[keep], y[keep]
    g = None if groups is None else np.asarray(groups)[keep]
    classes = np.unique(y)
    if classes.size < 2:
        raise ConfigError("attribute_predictability: needs at least two classes")
    make = lambda: _probe(classifier, seed)  # noqa: E731
    splitter = (StratifiedGroupKFold(folds, shuffle=True, random_state=seed) if g is not None
                else StratifiedKFold(folds, shuffle=True, random_state=seed))
    pred = np.full(y.shape, -1)
    fold_bacc = []
    for tr, te in splitter.split(X, y, g):
        clf = _fit_probe(make(), X[tr], y[tr], classifier, seed)
        pred[te] = clf.predict(X[te])
        fold_bacc.append(_balanced_accuracy(y[te], pred[te]))
    counts = np.bincount(y)
    return {"classifier": classifier, "balanced_accuracy": _balanced_accuracy(y, pred), "accuracy": float(np.mean(pred == y)),
            "majority_accuracy": float(counts.max() / counts.sum()), "chance": 1.0 / classes.size, "n": int(y.size),
            "classes": int(classes.size), "fold_balanced_accuracy": fold_bacc, "identity_disjoint_folds": g is not None}


def _probe(classifier: str, seed: int):
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if classifier == "logistic":
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=1.0, class_weight="balanced"))
    if classifier == "mlp":
        return make_pipeline(StandardScaler(), MLPClassifier((128,), early_stopping=True, max_iter=100, n_iter_no_change=5,
                                                             random_state=seed))
    if classifier == "hgb":
        return HistGradientBoostingClassifier(max_iter=200, early_stopping=True, validation_fraction=0.1,
                                              class_weight="balanced", random_state=seed)
    raise ConfigError(f"classifier must be 'logistic', 'mlp' or 'hgb', got {classifier!r}")


def _fit_probe(clf: Any, X: np.ndarray, y: np.ndarray, classifier: str, seed: int) -> Any:
    if classifier == "mlp":  # MLPClassifier has no class weights: balance by resampling the minority classes
        rng = np.random.default_rng(seed)
        counts = np.bincount(y)
        idx = np.concatenate([rng.choice(np.flatnonzero(y == c), size=counts.max(), replace=True) for c in np.unique(y)])
        return clf.fit(X[idx], y[idx])
    return clf.fit(X, y)


def transfer_predictability(X_train: np.ndarray, y_train: np.ndarray, X_test: np.ndarray, y_test: np.ndarray,
                            classifier: str = "logistic", seed: int = 0) -> dict[str, Any]:
    """A probe (as in :func:`attribute_predictability`) trained on one set of faces, scored on another
    (e.g. trained on the erased embeddings of an eraser's own training people, scored on held-out people)."""
    Xa, ya = np.asarray(X_train, np.float64), np.asarray(y_train)
    Xb, yb = np.asarray(X_test, np.float64), np.asarray(y_test)
    ka, kb = ya >= 0, yb >= 0
    if np.unique(ya[ka]).size < 2 or np.unique(yb[kb]).size < 2:
        raise ConfigError("transfer_predictability: both sets need at least two classes")
    clf = _fit_probe(_probe(classifier, seed), Xa[ka], ya[ka], classifier, seed)
    return {"classifier": classifier, "balanced_accuracy": _balanced_accuracy(yb[kb], clf.predict(Xb[kb])),
            "n_train": int(ka.sum()), "n_test": int(kb.sum())}


# ------------------------------------------------------------------------------ LFW experiment

AGE_GROUP_EDGES = (30.0, 45.0, 60.0)  # apparent age groups: <30, 30-45, 45-60, >=60


def age_group(age: float) -> int:
    return int(np.searchsorted(AGE_GROUP_EDGES, age, side="right"))


def lfw_embeddings(*, model: str = "dlib-resnet", data: str | os.PathLike | None = None, all_images: bool = True,
                   cache: Any = True, progress: bool = True) -> dict[str, Any]:
    """LFW embeddings (mirror-averaged) with gender labels, people, halves and the View 2 pairs.

    Faces as for the pairs (median fallback of the pair images' run), the other images (``all_images``)
    on their own; embeddings through the batch face stage's store (resumable).

    Returns:
        ``X`` ``(N, D)``, ``paths``, ``person``, ``half`` (0: LFW folds 1-5, 1: 6-10), ``gender``
        (0 female, 1 male, -1 unlabelled), ``pair_a``/``pair_b`` (indices), ``pair_same``,
        ``pair_fold``, ``pair_images``, ``faces`` (path -> detection), ``store``, ``model`` (the FaceModel).
    """
    from ..datasets import LFW
    from ..models import get_model
    from ..pipeline.batch import embed_faces, locate_faces
    from .store import open_store

    lfw = LFW(data)
    fold_of = {p.name: p.fold for p in lfw.people()}
    pairs = lfw.pairs()
    pair_paths = list(dict.fromkeys(str(p) for pr in pairs for p in (pr.path_a, pr.path_b)))
    paths = list(pair_paths)
    if all_images:
        seen = set(pair_paths)
        paths += [str(p) for n in lfw.identities() for p in lfw.images_of(n) if str(p) not in seen]
    store = open_store(cache if cache is not True else None)
    fr = get_model(model)
    loc = locate_faces(pair_paths, select="center", fallback="median", cache=cache is not False, progress=progress)
    rest = [p for p in paths if p not in loc.faces]
    if rest:
        loc2 = locate_faces(rest, select="center", fallback="median", cache=cache is not False, progress=progress)
        loc.faces.update(loc2.faces)
        loc.errors.update(loc2.errors)
    paths = [p for p in paths if p in loc.faces]
    emb = embed_faces(fr, {p: loc.faces[p] for p in paths}, store=store, progress=progress, desc="embed LFW")
    paths = [p for p in paths if p in emb]
    genders = lfw.genders()
    person = np.array([Path(p).parent.name for p in paths])
    index = {p: i for i, p in enumerate(paths)}
    return {"X": emb.vectors(paths, flip=True), "paths": paths, "person": person,
            "half": np.array([0 if fold_of[n] < 5 else 1 for n in person]),
            "gender": np.array([{"female": 0, "male": 1}.get(genders.get(Path(p).name) or "", -1) for p in paths]),
            "pair_a": np.array([index[str(p.path_a)] for p in pairs]), "pair_b": np.array([index[str(p.path_b)] for p in pairs]),
            "pair_same": np.array([p.same for p in pairs], dtype=int), "pair_fold": np.array([p.fold for p in pairs]),
            "pair_images": len(pair_paths), "faces": loc.faces, "store": store, "model": fr}


def disentangle_lfw(out_dir: str | os.PathLike, *, model: str = "dlib-resnet", data: str | os.PathLike | None = None,
                    all_images: bool = True, age: bool = True, classifiers: Sequence[str] = ("logistic", "mlp"),
                    cache: Any = True, progress: bool = True, seed: int = 0, projection_directions: int = 5,
                    **disentangler: Any) -> dict[str, Any]:
    """The LFW experiment: predictability and verification before and after disentangling.

    LFW's ten folds hold disjoint people (``people.txt``; each View 2 pair lies within one fold).
    Two disentanglers are trained, one on the people of folds 1-5 and one on folds 6-10 (all
    their images when ``all_images``, else only the pair images), each applied to the other
    half: every evaluated face and every pair is scored by a model that never saw its person.

    * gender labels: the LFW gender lists (images in neither or both lists are unlabelled);
      apparent age group (``age``): from the age model's estimate (<30, 30-45, 45-60, >=60);
    * predictability: :func:`attribute_predictability` on each held-out half (folds disjoint in
      identity), original vs disentangled, averaged over the two halves;
    * verification: the 10-fold LFW protocol on all 6,000 pairs, cosine of mirror-averaged
      embeddings (the default pipeline) vs cosine of codes;
    * a reference: :class:`LinearAttributeProjection` (``projection_directions`` gender directions,
      fitted on the same halves), which removes linear gender information with no identity term.

    Writes ``report.json``, ``table.md`` and ``predictability.png``; returns the report.
    """
    from ..verify import lfw_protocol
    from .batch import estimate_traits
    from .dlib_age_gender import DlibAgeEstimator
    from .plots import grouped_bars

    t0 = time.perf_counter()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    d = lfw_embeddings(model=model, data=data, all_images=all_images, cache=cache, progress=progress)
    X, paths, person, half, store, fr = d["X"], d["paths"], d["person"], d["half"], d["store"], d["model"]
    pair_paths = range(d["pair_images"])
    loc_faces = d["faces"]
    attrs = {"gender": d["gender"]}
    if age:
        tr, _ = estimate_traits([DlibAgeEstimator()], {p: loc_faces[p] for p in paths}, store=store, progress=progress,
                                desc="apparent age")
        attrs["age_group"] = np.array([age_group(float(tr[p]["age"].value)) if p in tr else -1 for p in paths])

    Z = np.zeros_like(X)
    L = np.zeros_like(X)
    histories = {}
    settings = dict(disentangler)
    settings.setdefault("seed", seed)
    for h in (0, 1):
        train = half == h
        dis = DemographicDisentangler(**settings).fit(X[train], {k: v[train] for k, v in attrs.items()}, progress=progress)
        Z[~train] = dis.transform(X[~train])
        L[~train] = LinearAttributeProjection(projection_directions).fit(X[train], attrs["gender"][train]).transform(X[~train])
        histories[f"trained_on_folds_{'1-5' if h == 0 else '6-10'}"] = dis.history_[-1]

    pred: dict[str, dict[str, Any]] = {}
    variants = (("original", X), ("disentangled", Z), (f"linear projection ({projection_directions} gender directions)", L))
    for name, emb_ in variants:
        for attr, y in attrs.items():
            for clf in classifiers:
                res = [attribute_predictability(emb_[half == h], y[half == h], person[half == h], classifier=clf, seed=seed)
                       for h in (0, 1)]
                pred[f"{name}/{attr}/{clf}"] = {
                    "balanced_accuracy": float(np.mean([r["balanced_accuracy"] for r in res])),
                    "accuracy": float(np.mean([r["accuracy"] for r in res])),
                    "majority_accuracy": float(np.mean([r["majority_accuracy"] for r in res])),
                    "chance": res[0]["chance"], "n": int(sum(r["n"] for r in res)),
                    "per_half": [r["balanced_accuracy"] for r in res]}

    ia, ib, labels, folds = d["pair_a"], d["pair_b"], d["pair_same"], d["pair_fold"]
    verification = {}
    for name, emb_ in variants:
        s = pair_similarity(emb_[ia], emb_[ib])
        rep = lfw_protocol(s, labels, folds)
        verification[name] = {"mean_accuracy": rep.mean_accuracy, "std_accuracy": rep.std_accuracy, "eer": rep.eer,
                              "tar_at_far": rep.tar_at_far}

    rows = ["| embeddings | gender bal. acc. (logistic) | gender bal. acc. (MLP) | age group bal. acc. (logistic) | "
            "age group bal. acc. (MLP) | LFW accuracy | LFW EER |", "|---|---|---|---|---|---|---|"]
    for name, _ in variants:
        cell = lambda a, c: f"{100 * pred[f'{name}/{a}/{c}']['balanced_accuracy']:.1f}%" if f"{name}/{a}/{c}" in pred else "-"  # noqa: E731
        v = verification[name]
        rows.append(f"| {name} | {cell('gender', 'logistic')} | {cell('gender', 'mlp')} | {cell('age_group', 'logistic')} | "
                    f"{cell('age_group', 'mlp')} | {100 * v['mean_accuracy']:.2f}% +- {100 * v['std_accuracy']:.2f}% | "
                    f"{100 * v['eer']:.2f}% |")
    chance = {a: pred[f"original/{a}/{classifiers[0]}"]["chance"] for a in attrs}
    table = "\n".join(rows) + "\n\nChance: " + ", ".join(f"{a} {100 * c:.1f}%" for a, c in chance.items()) + "\n"
    (out / "table.md").write_text(table)
    grouped_bars({name: {f"{a} ({c})": 100 * pred[f"{name}/{a}/{c}"]["balanced_accuracy"] for a in attrs for c in classifiers}
                  for name, _ in variants}, "balanced accuracy (%)", out / "predictability.png",
                 title="attribute predictability, fresh classifier, identity-disjoint folds", chance=100 * chance["gender"])
    report = {
        "model": fr.spec.name, "images": len(paths), "pair_images": len(pair_paths), "all_images": all_images,
        "attributes": {k: {"labelled": int((v >= 0).sum()), "classes": int(v.max()) + 1} for k, v in attrs.items()},
        "age_groups": "apparent age from the dlib age model: <30, 30-45, 45-60, >=60" if age else None,
        "split": "disentanglers trained on the people of LFW folds 1-5 and 6-10, each applied to the other half",
        "disentangler": {**DemographicDisentangler(**settings).__dict__}, "final_epoch": histories,
        "predictability": pred, "verification": verification, "table": table,
        "seconds": round(time.perf_counter() - t0, 1),
    }
    (out / "report.json").write_text(json.dumps(report, indent=2, default=str))
    return report
