"""Training LIBF-EBM under the LFW View 2 protocol: ``xaiface train libf``.

For each test fold ``k`` (1..10) of LFW View 2:

1. **Encoder**: a patch encoder is trained on the patches of every pair photo whose person is
   *not* in ``people.txt`` fold ``k`` (the View 2 pairs of fold ``k`` use exactly those people, so
   the test fold's identities are never seen), plus, with ``extra_faces``, every UTKFace and
   VIP_attribute face of the data folder; per-patch centres are measured on the same photos.
   ``encoder="byol"`` (D5.2): BYOL (:mod:`.byol`). ``encoder="distill"``: each patch learns to
   predict the default deep model's identity code of its face (:mod:`.distill`); the teacher's
   embeddings come from the batch face stage (the result store keeps them between runs).
2. **LIBF** features (187-d) of all 7,701 pair photos are computed with that encoder.
3. **EBM**: one ``LIBFVerifier`` per pair encoding (``concat``: D5.2's 374-d concatenation;
   ``symmetric``: ``|Lq - Lt|, Lq * Lt``; ``patch-cosine``: one cosine per patch) is fitted on the
   5,400 pairs of the other nine folds
   and tested on the 600 pairs of fold ``k``; accuracy at match probability 0.5.

Every stage writes its output under ``out/fold-NN/`` and is skipped when that output exists, and
BYOL checkpoints after every epoch, so an interrupted run continues where it stopped (run the
same command again). ``report.json`` gathers per-fold accuracies, the protocol's out-of-fold
numbers (``lfw_protocol`` on the out-of-fold logits, as for the deep model), and wall times.
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from ..errors import ConfigError, DatasetError
from .byol import BYOLConfig, train_byol
from .data import PatchBank, build_patch_bank
from .distill import DistillConfig, train_distilled
from .ebm import LIBFVerifier
from .features import PAIR_ENCODINGS, LIBFEncoder
from .model import fold_dir

__all__ = ["LIBFTrainConfig", "train_libf", "summarize"]


@dataclass(frozen=True)
class LIBFTrainConfig:
    """Settings of ``xaiface train libf``.

    Attributes:
        folds: 1-based test folds to run (default all ten).
        byol: BYOL settings (its ``seed`` is offset by the fold number per fold).
        encodings: pair encodings to fit an EBM for (default concat and symmetric, as D5.2 and the landed runs; add "patch-cosine").
        interactions, outer_bags, max_bins: EBM settings (see :class:`~xaiface.libf.ebm.LIBFVerifier`).
        geometry: crops the patches are cut from (``None``: the photos). min_inside: visibility.
        byol_images: at most this many training photos for BYOL per fold (random; ``None``: all).
        center_images: photos used to measure the per-patch centres.
        threads: torch threads for BYOL and feature extraction (``None``: torch's default).
        pairs_per_fold: quick runs and tests: only the first ``k/2`` genuine and ``k/2`` impostor
            pairs of each fold (and their photos); ``None``: all 600.
        ebm_params: further ``ExplainableBoostingClassifier`` settings (e.g. ``max_rounds``).
        encoder: ``"byol"`` (D5.2) or ``"distill"`` (:mod:`.distill`; settings in ``distill``).
        extra_faces: also train the encoder on the UTKFace and VIP_attribute faces of the data folder.
        teacher: the registered face model whose embeddings the distilled encoder learns.
    """

    folds: tuple[int, ...] = tuple(range(1, 11))
    byol: BYOLConfig = field(default_factory=BYOLConfig)
    encoder: str = "byol"
    distill: DistillConfig = field(default_factory=DistillConfig)
    extra_faces: bool = False
    teacher: str = "dlib-resnet"
    encodings: tuple[str, ...] = ("concat", "symmetric")
    interactions: int = 5
    outer_bags: int = 2
    max_bins: int = 256
    geometry: str | None = "dlib-150"
    min_inside: float = 0.5
    byol_images: int | None = None
    center_images: int = 2000
    threads: int | None = None
    pairs_per_fold: int | None = None
    ebm_params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.folds or any(not 1 <= int(f) <= 10 for f in self.folds):
            raise ConfigError(f"folds must be numbers 1..10, got {list(self.folds)}")
        bad = [e for e in self.encodings if e not in PAIR_ENCODINGS]
        if bad or not self.encodings:
            raise ConfigError(f"encodings must be among {PAIR_ENCODINGS}, got {list(self.encodings)}")
        if self.interactions < 0 or self.outer_bags < 1 or self.max_bins < 3:
            raise ConfigError("interactions must be >= 0, outer_bags >= 1 and max_bins >= 3")
        if self.encoder not in ("byol", "distill"):
            raise ConfigError(f"encoder must be 'byol' or 'distill', got {self.encoder!r}")

    @property
    def patch_size(self) -> int:
        return self.byol.patch_size if self.encoder == "byol" else self.distill.patch_size

    @property
    def embedding_dim(self) -> int:
        return self.byol.embedding_dim if self.encoder == "byol" else self.distill.embedding_dim

    def stored(self) -> dict[str, Any]:
        """The part of the settings that the trained artefacts depend on (kept in ``config.json``)."""
        out = {
            "patches": {"patch_size": self.patch_size, "geometry": self.geometry, "min_inside": self.min_inside},
            "byol": self.byol.to_dict(), "byol_images": self.byol_images, "center_images": self.center_images,
            "ebm": {"interactions": self.interactions, "outer_bags": self.outer_bags, "max_bins": self.max_bins,
                    **self.ebm_params},
            "pairs_per_fold": self.pairs_per_fold,
        }
        # the keys of later settings appear only when used, so that earlier training folders still match
        if self.encoder != "byol":
            out.update(encoder=self.encoder, distill=self.distill.to_dict(), teacher=self.teacher)
            del out["byol"]
        if self.extra_faces:
            out["extra_faces"] = True
        return out


def _log(msg: str) -> None:
    print(f"[libf] {msg}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def _threads(n: int | None) -> Iterator[None]:
    """Torch CPU threads set to ``n`` inside the block (unchanged when ``None``)."""
    import torch

    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def train_libf(out: str | os.PathLike, config: LIBFTrainConfig | None = None, *, data: str | os.PathLike | None = None,
               cache: Any = True, progress: bool = True, log: Callable[[str], None] = _log,
               max_byol_epochs: int | None = None) -> dict[str, Any]:
    """Run (or continue) the fold-wise training; returns the report (also ``out/report.json``).

    Args:
        out: the training folder (created; an existing one must have the same settings).
        config: settings (default :class:`LIBFTrainConfig`).
        data: data folder holding ``lfw/``.
        cache: detection cache (``True``: the default on-disk one, a path, or ``False``).
        max_byol_epochs: stop BYOL after this many epochs in this call (resumable later).
    Raises:
        ConfigError: ``out`` holds a run with other settings.
    """
    from ..datasets import LFW

    cfg = config or LIBFTrainConfig()
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    cfg_path = root / "config.json"
    stored = cfg.stored()
    if cfg_path.is_file():
        old = json.loads(cfg_path.read_text())
        differ = sorted(k for k in stored if old.get(k) != stored[k])
        if differ:
            raise ConfigError(f"{root} holds a LIBF run with other settings ({cfg_path}: {', '.join(differ)} differ); "
                              "use another --out folder, or the same settings to continue it")
        runs = sorted(set(old.get("folds_requested", [])) | set(cfg.folds))
    else:
        runs = sorted(cfg.folds)
    text = json.dumps({**stored, "folds_requested": runs}, indent=2)
    if not cfg_path.is_file() or cfg_path.read_text() != text:
        cfg_path.write_text(text)

    lfw = LFW(data)
    pairs = lfw.pairs(per_fold=cfg.pairs_per_fold)
    people_fold = {p.name: p.fold for p in lfw.people()}
    paths = [str(p) for p in dict.fromkeys(x for p in pairs for x in (p.path_a, p.path_b))]
    t0 = time.perf_counter()
    log(f"patches of {len(paths)} LFW pair photos -> {root / 'patches.npz'}")
    bank = build_patch_bank(paths, lfw.images_dir, patch_size=cfg.patch_size, geometry=cfg.geometry,
                            min_inside=cfg.min_inside, cache=cache, progress=progress, out=root / "patches.npz")
    log(f"patch bank ready ({time.perf_counter() - t0:.0f} s; {int(bank.fallback.sum())} photos without a detected face use the fallback box)")
    idx = bank.index()
    rel = lambda p: os.path.relpath(p, lfw.images_dir)  # noqa: E731
    pa = np.array([idx[rel(p.path_a)] for p in pairs])
    pb = np.array([idx[rel(p.path_b)] for p in pairs])
    labels = np.array([p.same for p in pairs], dtype=int)
    folds0 = np.array([p.fold for p in pairs])
    ident_fold = np.array([people_fold.get(str(i), -1) for i in bank.identities])
    if (ident_fold < 0).any():
        raise DatasetError(f"{int((ident_fold < 0).sum())} pair photos belong to people missing from people.txt")

    extra_paths, extra_root = _extra_paths(data) if cfg.extra_faces else ([], None)
    extra = _extra_bank(root, cfg, extra_paths, extra_root, cache, progress, log) if cfg.extra_faces else None
    teacher = (_teacher(root, cfg, bank, lfw.images_dir, extra, extra_root, cache, progress, log)
               if cfg.encoder == "distill" else None)
    log(f"{len(pairs)} pairs, {len(paths)} photos")
    for k in cfg.folds:
        _train_fold(root, cfg, k, bank, ident_fold, pa, pb, labels, folds0, progress, log, max_byol_epochs,
                    extra=extra, teacher=teacher)
    report = summarize(root, pairs_labels=labels, pairs_folds=folds0)
    (root / "report.json").write_text(json.dumps(report, indent=2))
    return report


def _extra_paths(data: str | os.PathLike | None) -> tuple[list[str], Path]:
    """Every UTKFace and VIP_attribute photo of the data folder, and that folder (the bank's root)."""
    from ..datasets.utkface import UTKFace
    from ..datasets.vip import VIPAttribute

    utk, vip = UTKFace(data), VIPAttribute(data)
    return [str(it.path) for it in utk.items()] + [str(it.path) for it in vip.items()], Path(utk.root)


def _extra_bank(root: Path, cfg: LIBFTrainConfig, paths: list[str], base: Path, cache: Any, progress: bool,
                log: Callable[[str], None]) -> PatchBank:
    t0 = time.perf_counter()
    log(f"patches of {len(paths)} UTKFace and VIP_attribute photos -> {root / 'extra-patches.npz'}")
    bank = build_patch_bank(paths, base, patch_size=cfg.patch_size, geometry=cfg.geometry, min_inside=cfg.min_inside,
                            cache=cache, progress=progress, out=root / "extra-patches.npz")
    log(f"extra patch bank ready ({time.perf_counter() - t0:.0f} s)")
    return bank


def _teacher(root: Path, cfg: LIBFTrainConfig, bank: PatchBank, lfw_root: Path, extra: PatchBank | None,
             extra_root: Path | None, cache: Any, progress: bool, log: Callable[[str], None]) -> dict[str, np.ndarray]:
    """The teacher's mirror-averaged embeddings of the LFW bank's (and extra bank's) photos, kept in ``teacher.npz``.

    The faces are those of the patch banks (the batch face stage's detection and selection); the
    result store keeps the embeddings, so a rerun costs little even without ``teacher.npz``. The
    faces are located again through the same batch stage, which answers from the detection cache
    that building the banks filled.
    """
    from ..models import get_model
    from ..pipeline.batch import embed_faces, locate_faces

    path = root / "teacher.npz"
    want = {"lfw": [str(lfw_root / k) for k in bank.keys]}
    if extra is not None and extra_root is not None:
        want["extra"] = [str(extra_root / k) for k in extra.keys]
    if path.is_file():
        with np.load(path, allow_pickle=False) as z:
            got = {n: z[n] for n in z.files}
        if str(got.get("model", "")) == cfg.teacher and all(
                n in got and [str(s) for s in got[f"{n}_keys"]] == [str(s) for s in (bank if n == "lfw" else extra).keys]
                for n in want):
            return {n: got[n] for n in want}
    model = get_model(cfg.teacher)
    out: dict[str, Any] = {"model": np.array(cfg.teacher)}
    for n, ps in want.items():
        t0 = time.perf_counter()
        log(f"teacher {cfg.teacher}: embeddings of {len(ps)} {'LFW' if n == 'lfw' else 'UTKFace/VIP'} photos")
        faces = locate_faces(ps, detector="dlib-hog", select="center", fallback="median", cache=cache,
                             progress=progress).require_all(f"{n} photos").faces
        emb = embed_faces(model, faces, progress=progress, desc=f"teacher {n}").require_all(f"{n} photos")
        out[n] = emb.vectors(ps, flip=True).astype(np.float32)
        out[f"{n}_keys"] = (bank if n == "lfw" else extra).keys.astype(str)
        log(f"teacher {n}: {time.perf_counter() - t0:.0f} s")
    np.savez(path.with_name("teacher.tmp.npz"), **out)
    os.replace(path.with_name("teacher.tmp.npz"), path)
    return {n: out[n] for n in want}


def _train_fold(root: Path, cfg: LIBFTrainConfig, k: int, bank: PatchBank, ident_fold: np.ndarray, pa: np.ndarray,
                pb: np.ndarray, labels: np.ndarray, folds0: np.ndarray, progress: bool, log: Callable[[str], None],
                max_byol_epochs: int | None, extra: PatchBank | None = None,
                teacher: dict[str, np.ndarray] | None = None) -> None:
    fd = fold_dir(root, k)
    fd.mkdir(parents=True, exist_ok=True)
    enc_path = fd / "encoder.pt"
    byol_cfg = replace(cfg.byol, seed=cfg.byol.seed + k)
    if not enc_path.is_file() and cfg.encoder == "distill":
        if not _train_distilled_fold(fd, cfg, k, bank, ident_fold, extra, teacher, progress, log, max_byol_epochs):
            return
    if not enc_path.is_file():
        rows = _encoder_rows(cfg, ident_fold, k, byol_cfg.seed)
        n_ids = len(set(bank.identities[rows]))
        log(f"fold {k}: BYOL on {len(rows)} photos of {n_ids} people outside fold {k} "
            f"({len(rows) * bank.pixels.shape[1]} patches), {byol_cfg.epochs} epochs x {byol_cfg.steps_per_epoch} steps")
        px = bank.pixels[rows].reshape(-1, *bank.pixels.shape[2:])
        if extra is not None:
            px = np.concatenate([px, extra.pixels.reshape(-1, *extra.pixels.shape[2:])])
            log(f"fold {k}: and {len(extra)} UTKFace/VIP photos ({len(px)} patches in all)")
        res = train_byol(px, byol_cfg, fd / "byol-checkpoint.pt", resume=True, progress=progress,
                         max_epochs=max_byol_epochs, threads=cfg.threads,
                         on_epoch=lambda e, l: log(f"fold {k}: BYOL epoch {e}/{byol_cfg.epochs} loss {l:.4f}"))
        if len(res.epoch_loss) < byol_cfg.epochs:
            log(f"fold {k}: BYOL stopped after epoch {len(res.epoch_loss)} of {byol_cfg.epochs}; run again to continue")
            return
        crow = rows[np.random.default_rng([byol_cfg.seed, 8]).permutation(len(rows))[:cfg.center_images]]
        with _threads(cfg.threads):
            center = LIBFEncoder.centers_from(res.encoder, bank.pixels[crow], bank.visible[crow])
        LIBFEncoder(res.encoder, center, byol_cfg, meta={
            "test_fold": k, "train_photos": int(len(rows)), "train_people": int(n_ids),
            "byol_seconds": round(res.seconds, 2), "epoch_loss": res.epoch_loss, "geometry": cfg.geometry,
            "method": "byol", "extra_faces": 0 if extra is None else len(extra),
        }).save(enc_path)
        log(f"fold {k}: BYOL done in {res.seconds:.0f} s (loss {res.epoch_loss[0]:.3f} -> {res.epoch_loss[-1]:.3f})")
    feat_path = fd / "libf.npz"
    if not feat_path.is_file():
        t0 = time.perf_counter()
        enc = LIBFEncoder.load(enc_path)
        with _threads(cfg.threads):
            feats = enc.transform(bank.pixels, bank.visible)
        sec = time.perf_counter() - t0
        np.savez(feat_path.with_name("libf.tmp.npz"), keys=bank.keys.astype(str), libf=feats, seconds=np.array(sec))
        os.replace(feat_path.with_name("libf.tmp.npz"), feat_path)
        log(f"fold {k}: LIBF features of {len(feats)} photos in {sec:.1f} s")
    with np.load(feat_path, allow_pickle=False) as z:
        if [str(s) for s in z["keys"]] != [str(s) for s in bank.keys]:
            raise DatasetError(f"{feat_path}: computed for other photos; delete it to recompute")
        feats = z["libf"]
    train, test = folds0 != k - 1, folds0 == k - 1
    for enc_name in cfg.encodings:
        mdir = fd / f"ebm-{enc_name}"
        res_path = fd / f"result-{enc_name}.json"
        if (mdir / "model.json").is_file():
            ver = LIBFVerifier.load(mdir)
        else:
            log(f"fold {k}: EBM ({enc_name}) on {int(train.sum())} pairs, {cfg.interactions} interactions ...")
            params = {"n_jobs": -1, **cfg.ebm_params}
            ver = LIBFVerifier(enc_name, interactions=cfg.interactions, outer_bags=cfg.outer_bags, max_bins=cfg.max_bins,
                               random_state=k, embedding_dim=cfg.embedding_dim, **params)
            ver.fit(feats[pa[train]], feats[pb[train]], labels[train])
            ver.save(mdir)
            log(f"fold {k}: EBM ({enc_name}) fitted in {ver.fit_seconds_:.0f} s")
        if not res_path.is_file():
            logit = ver.decision_function(feats[pa[test]], feats[pb[test]])
            acc = float(((logit >= 0).astype(int) == labels[test]).mean())
            res_path.write_text(json.dumps({
                "fold": k, "encoding": enc_name, "accuracy": acc, "n_test": int(test.sum()),
                "pair_index": np.flatnonzero(test).tolist(), "logit": logit.tolist(), "label": labels[test].tolist(),
                "fit_seconds": ver.fit_seconds_, "n_train": ver.n_train_,
            }))
            log(f"fold {k}: {enc_name} accuracy {100 * acc:.2f}% on fold {k}")


def _encoder_rows(cfg: LIBFTrainConfig, ident_fold: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Bank rows of the LFW photos fold ``k``'s encoder trains on: people outside fold ``k`` (at most ``byol_images``)."""
    rows = np.flatnonzero(ident_fold != k - 1)
    if cfg.byol_images is not None and cfg.byol_images < len(rows):
        rows = np.sort(np.random.default_rng([seed, 7]).choice(rows, cfg.byol_images, replace=False))
    return rows


def _train_distilled_fold(fd: Path, cfg: LIBFTrainConfig, k: int, bank: PatchBank, ident_fold: np.ndarray,
                          extra: PatchBank | None, teacher: dict[str, np.ndarray] | None, progress: bool,
                          log: Callable[[str], None], max_epochs: int | None) -> bool:
    """Distil the teacher into fold ``k``'s encoder (``fd/encoder.pt``); False if stopped early (resumable)."""
    assert teacher is not None
    dcfg = replace(cfg.distill, seed=cfg.distill.seed + k)
    rows = _encoder_rows(cfg, ident_fold, k, dcfg.seed)
    px, vis, tv = bank.pixels[rows], bank.visible[rows], teacher["lfw"][rows]
    if extra is not None:
        px, vis, tv = (np.concatenate([px, extra.pixels]), np.concatenate([vis, extra.visible]),
                       np.concatenate([tv, teacher["extra"]]))
    n_ids = len(set(bank.identities[rows]))
    log(f"fold {k}: distilling {cfg.teacher} into the patch encoder on {len(rows)} LFW photos of {n_ids} people "
        f"outside fold {k}" + (f" and {len(extra)} UTKFace/VIP photos" if extra is not None else "")
        + f", {dcfg.epochs} epochs x {dcfg.steps_per_epoch} steps of {dcfg.batch_size} faces")
    res = train_distilled(px, vis, tv, dcfg, fd / "distill-checkpoint.pt", resume=True, progress=progress,
                          max_epochs=max_epochs, threads=cfg.threads,
                          on_epoch=lambda e, l: log(f"fold {k}: distillation epoch {e}/{dcfg.epochs} loss {l:.4f}"))
    if len(res.epoch_loss) < dcfg.epochs:
        log(f"fold {k}: distillation stopped after epoch {len(res.epoch_loss)} of {dcfg.epochs}; run again to continue")
        return False
    crow = np.random.default_rng([dcfg.seed, 8]).permutation(len(px))[:cfg.center_images]
    with _threads(cfg.threads):
        center = LIBFEncoder.centers_from(res.encoder, px[crow], vis[crow], res.projection)
    LIBFEncoder(res.encoder, center, dcfg.encoder_config(), projection=res.projection, meta={
        "test_fold": k, "train_photos": int(len(px)), "train_people": int(n_ids), "method": "distill",
        "teacher": cfg.teacher, "distill": dcfg.to_dict(), "extra_faces": 0 if extra is None else len(extra),
        "train_seconds": round(res.seconds, 2), "epoch_loss": res.epoch_loss, "geometry": cfg.geometry,
    }).save(fd / "encoder.pt")
    log(f"fold {k}: distillation done in {res.seconds:.0f} s (loss {res.epoch_loss[0]:.3f} -> {res.epoch_loss[-1]:.3f})")
    return True


def summarize(root: str | os.PathLike, pairs_labels: np.ndarray | None = None, pairs_folds: np.ndarray | None = None) -> dict[str, Any]:
    """Gather the per-fold results of a training folder into the report dict."""
    from ..verify.protocol import lfw_protocol

    r = Path(root)
    cfg = json.loads((r / "config.json").read_text())
    report: dict[str, Any] = {"settings": cfg, "encodings": {}, "timing_s": {}}
    byol_s, feat_s, folds_done = {}, {}, []
    for fd in sorted(r.glob("fold-*")):
        k = int(fd.name[5:])
        if (fd / "encoder.pt").is_file():
            meta = LIBFEncoder.load(fd / "encoder.pt").meta
            byol_s[k] = meta.get("byol_seconds", meta.get("train_seconds"))
            folds_done.append(k)
        if (fd / "libf.npz").is_file():
            with np.load(fd / "libf.npz", allow_pickle=False) as z:
                feat_s[k] = float(z["seconds"])
    encs: dict[str, Any] = {}
    for enc in PAIR_ENCODINGS:
        res = []
        for fd in sorted(r.glob("fold-*")):
            p = fd / f"result-{enc}.json"
            if p.is_file():
                res.append(json.loads(p.read_text()))
        if not res:
            continue
        acc = np.array([x["accuracy"] for x in res])
        e: dict[str, Any] = {
            "folds": [x["fold"] for x in res], "fold_accuracies": acc.tolist(),
            "mean_accuracy": float(acc.mean()), "std_accuracy": float(acc.std()),
            "rule": "match probability >= 0.5 (the EBM trained on the other nine folds)",
            "ebm_fit_seconds": [round(float(x["fit_seconds"]), 1) for x in res],
        }
        if len(res) == 10 and pairs_labels is not None:
            logit = np.zeros(len(pairs_labels))
            for x in res:
                logit[np.asarray(x["pair_index"])] = x["logit"]
            proto = lfw_protocol(logit, pairs_labels, pairs_folds)
            e["protocol_on_out_of_fold_logits"] = {
                "mean_accuracy": proto.mean_accuracy, "std_accuracy": proto.std_accuracy,
                "fold_accuracies": list(proto.fold_accuracies), "eer": proto.eer,
                "note": "xaiface.verify.lfw_protocol on each pair's logit from the model that did not see its fold "
                        "(threshold chosen on the other folds' logits, as for the deep model)",
            }
        encs[enc] = e
    report["encodings"] = encs
    report["folds_trained"] = folds_done
    report["default_fold"] = folds_done[-1] if folds_done else None
    report["timing_s"] = {
        "byol_per_fold": {str(k): v for k, v in byol_s.items()},
        "byol_mean": float(np.mean([v for v in byol_s.values() if v is not None])) if byol_s else None,
        "libf_features_per_fold": {str(k): round(v, 1) for k, v in feat_s.items()},
        "ebm_fit_mean": {enc: float(np.mean(v["ebm_fit_seconds"])) for enc, v in encs.items()},
    }
    return report
