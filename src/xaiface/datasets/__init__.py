"""Readers of the face data sets under the data folder (see :func:`xaiface.config.data_dir`)."""
from __future__ import annotations

from .lfw import LFW, N_FOLDS, PAIRS_SHA256, Gender, LFWPair, LFWPerson, parse_folds, select_fold_pairs

__all__ = ["LFW", "N_FOLDS", "parse_folds", "PAIRS_SHA256", "Gender", "LFWPair", "LFWPerson", "select_fold_pairs"]
from .utkface import MalformedName, UTKFace, UTKFaceItem  # noqa: E402
from .vip import VIPAttribute, VIPItem  # noqa: E402

__all__ += ["MalformedName", "UTKFace", "UTKFaceItem", "VIPAttribute", "VIPItem"]
