"""UTKFace (aligned and cropped faces): age, gender and race from each file name.

The data folder is a setting (``root``, default :func:`xaiface.config.data_dir`) and UTKFace
lies under ``<root>/utkface/images``, one 200x200 face a file named
``AGE_GENDER_RACE_DATE.jpg.chip.jpg``: age 0-116 years, gender 0 = male / 1 = female, race
0-4 (White, Black, Asian, Indian, Others), date ``yyyymmddHHMMSSfff``.

A few names of the original release are malformed (a missing field, a space before ``.jpg``,
``jpg`` without its dot): they are not guessed at. :meth:`UTKFace.malformed` lists each with the
reason, :meth:`UTKFace.items` skips them and warns once with their count and names.
Cite Zhang, Song and Qi, CVPR 2017; non-commercial research use only.
"""
from __future__ import annotations

import os
import re
import warnings
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal

from ..config import data_dir
from ..errors import DatasetError

RACES = ("White", "Black", "Asian", "Indian", "Others")
_NAME = re.compile(r"(\d{1,3})_([01])_([0-4])_(\d{17})\.jpg\.chip\.jpg")
_LOCATE_HINT = "pass --data DIR or set XAIFACE_DATA to the folder that holds utkface/"
_IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass(frozen=True)
class UTKFaceItem:
    """One well-formed UTKFace image with the labels its name carries."""

    path: Path
    age: int
    gender: Literal["male", "female"]
    race: str
    date: str


@dataclass(frozen=True)
class MalformedName:
    """A UTKFace file whose name does not follow ``AGE_GENDER_RACE_DATE.jpg.chip.jpg``."""

    path: Path
    reason: str


def parse_name(name: str) -> tuple[int, str, str, str]:
    """``(age, gender, race, date)`` of a UTKFace file name.

    Raises:
        DatasetError: the name is malformed; the message says how.
    """
    m = _NAME.fullmatch(name)
    if m is None:
        raise DatasetError(f"{name!r}: {_malformed_reason(name)}; expected AGE_GENDER_RACE_DATE.jpg.chip.jpg "
                           "(e.g. 25_0_2_20170116174525125.jpg.chip.jpg)")
    age = int(m.group(1))
    if age > 116:
        raise DatasetError(f"{name!r}: age {age} outside 0..116")
    return age, ("male", "female")[int(m.group(2))], RACES[int(m.group(3))], m.group(4)


def _malformed_reason(name: str) -> str:
    if " " in name:
        return "a space in the name"
    if name.endswith("jpg.chip.jpg") and not name.endswith(".jpg.chip.jpg"):
        return "no '.' before 'jpg.chip.jpg'"
    stem = name.split(".", 1)[0]
    fields = stem.split("_")
    if len(fields) != 4:
        return f"{len(fields)} underscore-separated fields, expected 4 (age, gender, race, date)"
    return "a field out of range or of the wrong length"


class UTKFace:
    """Reader of ``<root>/utkface/images``.

    Args:
        root: the data folder holding ``utkface/`` (default :func:`xaiface.config.data_dir`).

    Raises:
        DatasetError: the folder does not exist.

    Example:
        >>> utk = UTKFace()                                   # doctest: +SKIP
        >>> len(utk.items()), [m.reason for m in utk.malformed()][:1]   # doctest: +SKIP
        (7899, ['a space in the name'])
    """

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = data_dir(root)
        self.images_dir = self.root / "utkface" / "images"
        if not self.images_dir.is_dir():
            raise DatasetError(f"UTKFace folder not found: {self.images_dir}; expected utkface/images/ there; {_LOCATE_HINT}")

    def __repr__(self) -> str:
        return f"UTKFace(root={str(self.root)!r})"

    @cached_property
    def _scan(self) -> tuple[tuple[UTKFaceItem, ...], tuple[MalformedName, ...]]:
        items, bad = [], []
        for p in sorted(self.images_dir.iterdir()):
            if not p.is_file() or not p.name.lower().endswith(_IMAGE_SUFFIXES):
                continue
            try:
                age, gender, race, date = parse_name(p.name)
            except DatasetError as e:
                bad.append(MalformedName(p, str(e).split(": ", 1)[1].split("; expected")[0]))
                continue
            items.append(UTKFaceItem(p, age, gender, race, date))  # type: ignore[arg-type]
        if not items:
            raise DatasetError(f"{self.images_dir}: no UTKFace images (AGE_GENDER_RACE_DATE.jpg.chip.jpg); {_LOCATE_HINT}")
        return tuple(items), tuple(bad)

    def items(self) -> list[UTKFaceItem]:
        """The well-formed images, sorted by file name. Malformed names are skipped with a warning."""
        items, bad = self._scan
        if bad and not getattr(self, "_warned", False):
            self._warned = True
            warnings.warn(f"UTKFace: skipped {len(bad)} malformed file name(s) in {self.images_dir}: "
                          + "; ".join(f"{m.path.name!r} ({m.reason})" for m in bad), stacklevel=2)
        return list(items)

    def malformed(self) -> list[MalformedName]:
        """The files skipped by :meth:`items`, each with the reason."""
        return list(self._scan[1])
