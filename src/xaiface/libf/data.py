"""LFW patches for LIBF: one face per photo, its eleven patches, cached as one ``.npz``.

Faces are found as ``xaiface eval lfw`` finds them, by the batch face stage
(:func:`xaiface.pipeline.batch.locate_faces`): dlib's HOG detector through the on-disk detection
cache, the face nearest the photo centre, and for photos without a detection the median box of
the other photos' faces with landmarks from dlib's shape predictors inside it (``fallback``). Patches are cut from the face's aligned crop in
``geometry`` (``dlib-150`` by default: the crops the default verifier and therefore the
``libf-ebm`` explainer see), or from the photo itself when ``geometry`` is ``None``.

A :class:`PatchBank` is saved with ``numpy.savez`` and read with ``allow_pickle=False``.
"""
from __future__ import annotations

import json
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from ..align import align_face, apply_affine
from ..errors import DatasetError, XaifaceError
from ..io import load_image
from ..types import DetectedFace
from .patches import N_PATCHES, extract_patches

__all__ = ["PatchBank", "build_patch_bank", "patches_of_face"]

_BANK_VERSION = 1


@dataclass
class PatchBank:
    """Patches of many faces.

    Attributes:
        keys: ``(N,)`` str image keys (``Name/Name_0001.jpg`` for LFW: relative to the images folder).
        identities: ``(N,)`` str person names.
        pixels: ``(N, 11, P, P, 3)`` uint8 patches.
        visible: ``(N, 11)`` bool visibility flags.
        landmarks: ``(N, 5, 2)`` float32 landmarks in the image the patches were cut from.
        fallback: ``(N,)`` bool, True where no face was detected (documented fallback box).
        config: ``{"patch_size", "geometry", "min_inside", "version"}``.
    """

    keys: np.ndarray
    identities: np.ndarray
    pixels: np.ndarray
    visible: np.ndarray
    landmarks: np.ndarray
    fallback: np.ndarray
    config: dict[str, Any]

    def __len__(self) -> int:
        return len(self.keys)

    def index(self) -> dict[str, int]:
        return {str(k): i for i, k in enumerate(self.keys)}

    def subset(self, rows: Sequence[int] | np.ndarray) -> "PatchBank":
        r = np.asarray(rows)
        return PatchBank(self.keys[r], self.identities[r], self.pixels[r], self.visible[r], self.landmarks[r],
                         self.fallback[r], dict(self.config))

    def save(self, path: str | os.PathLike) -> Path:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        tmp = p.with_name(p.name + ".tmp.npz")
        np.savez(tmp, keys=self.keys.astype(str), identities=self.identities.astype(str), pixels=self.pixels,
                 visible=self.visible, landmarks=self.landmarks, fallback=self.fallback,
                 config=np.array(json.dumps(self.config)))
        os.replace(tmp, p)
        return p

    @classmethod
    def load(cls, path: str | os.PathLike) -> "PatchBank":
        p = Path(path)
        try:
            with np.load(p, allow_pickle=False) as z:
                bank = cls(z["keys"], z["identities"], z["pixels"], z["visible"].astype(bool), z["landmarks"],
                           z["fallback"].astype(bool), json.loads(str(z["config"])))
        except FileNotFoundError:
            raise DatasetError(f"{p}: patch bank not found") from None
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as e:
            raise DatasetError(f"{p}: not a readable LIBF patch bank ({e}); delete it to rebuild") from None
        n = len(bank.keys)
        if bank.pixels.ndim != 5 or bank.pixels.shape[:2] != (n, N_PATCHES) or bank.visible.shape != (n, N_PATCHES):
            raise DatasetError(f"{p}: patch bank arrays of inconsistent shapes {bank.pixels.shape}, {bank.visible.shape}")
        return bank


def patches_of_face(image: np.ndarray, face: DetectedFace, patch_size: int = 24, geometry: str | None = "dlib-150",
                    min_inside: float = 0.5):
    """The :class:`~xaiface.libf.patches.FacePatches` of one detected face and the landmarks used.

    With ``geometry`` the face is first aligned (as the verifier aligns it) and patches are cut
    from the crop, landmarks mapped through the alignment matrix; else from the photo.
    """
    if geometry is None:
        return extract_patches(image, face.landmarks, patch_size, min_inside=min_inside), np.asarray(face.landmarks)
    aligned = align_face(image, face, geometry)
    lm = apply_affine(aligned.matrix, face.landmarks)
    return extract_patches(aligned.image, lm, patch_size, min_inside=min_inside), lm


def build_patch_bank(paths: Iterable[str | os.PathLike], root: str | os.PathLike, *, patch_size: int = 24,
                     geometry: str | None = "dlib-150", min_inside: float = 0.5, cache: Any = True,
                     workers: int | None = None, progress: bool = True, out: str | os.PathLike | None = None) -> PatchBank:
    """Detect, select, align and cut the patches of every photo.

    Args:
        paths: photos (LFW images ``<root>/<Name>/<Name>_NNNN.jpg``: the folder name is the identity).
        root: the images folder; keys are paths relative to it.
        patch_size, geometry, min_inside: see :func:`patches_of_face`.
        cache: detection cache (``True``: the default on-disk one; ``False``: none).
        out: when given and a bank with the same configuration and keys is there, it is loaded
            instead of rebuilt; otherwise the new bank is saved there.
    """
    from tqdm import tqdm

    from ..pipeline.batch import locate_faces

    paths = [str(p) for p in paths]
    root = Path(root)
    keys = [os.path.relpath(p, root) for p in paths]
    config = {"patch_size": int(patch_size), "geometry": geometry, "min_inside": float(min_inside), "version": _BANK_VERSION}
    if out is not None and Path(out).is_file():
        try:
            old = PatchBank.load(out)
            if old.config == config and [str(k) for k in old.keys] == keys:
                return old
        except DatasetError:
            pass
    located = locate_faces(paths, detector="dlib-hog", select="center", fallback="median", cache=cache, workers=workers,
                           progress=progress).require_all("LFW images")
    faces, no_face = located.faces, located.no_face
    n = len(paths)
    pixels = np.zeros((n, N_PATCHES, patch_size, patch_size, 3), np.uint8)
    visible = np.zeros((n, N_PATCHES), bool)
    landmarks = np.zeros((n, 5, 2), np.float32)
    fallback = np.zeros(n, bool)
    no = set(no_face)
    for i, p in enumerate(tqdm(paths, desc="patches", unit="img", disable=not progress)):
        try:
            fp, lm = patches_of_face(load_image(p), faces[p], patch_size, geometry, min_inside)
        except XaifaceError as e:
            raise DatasetError(f"{p}: cannot cut face patches ({e})") from None
        pixels[i], visible[i], landmarks[i], fallback[i] = fp.pixels, fp.visible, lm, p in no
    ids = np.array([Path(k).parent.name for k in keys])
    bank = PatchBank(np.array(keys), ids, pixels, visible, landmarks, fallback, config)
    if out is not None:
        bank.save(out)
    return bank
