"""VIP_attribute: celebrity faces with height, weight and body-mass index.

The data folder is a setting (``root``, default :func:`xaiface.config.data_dir`); the data set
lies under ``<root>/vip_attribute``::

    images/{f,m}_NNN.jpg      1,026 face crops (513 female ``f_``, 513 male ``m_``; 7 named .JPG)
    annotation.csv            image,height,weight,BMI   (m, kg, kg/m^2; image without extension)

Every row is validated as it is read: a malformed row, a duplicate, a missing image or a BMI
that disagrees with weight / height^2 raises :class:`~xaiface.errors.DatasetError` naming the
file and line. Cite Dantcheva, Bremond and Bilinski 2018; research use.
"""
from __future__ import annotations

import csv
import math
import os
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Literal

from ..config import data_dir
from ..errors import DatasetError

_LOCATE_HINT = "pass --data DIR or set XAIFACE_DATA to the folder that holds vip_attribute/"
_NAME = re.compile(r"([fm])_\d+")
_COLUMNS = ("image", "height", "weight", "BMI")
#: plausible ranges (adults): a value outside is a data error, not a person
_RANGES = {"height": (1.0, 2.6), "weight": (25.0, 350.0), "BMI": (10.0, 80.0)}


@dataclass(frozen=True)
class VIPItem:
    """One VIP_attribute face: height in m, weight in kg, BMI in kg/m^2; gender from the name."""

    path: Path
    name: str
    gender: Literal["male", "female"]
    height: float
    weight: float
    bmi: float


class VIPAttribute:
    """Reader of ``<root>/vip_attribute``.

    Args:
        root: the data folder holding ``vip_attribute/`` (default :func:`xaiface.config.data_dir`).

    Raises:
        DatasetError: the folder does not exist.

    Example:
        >>> vip = VIPAttribute()                     # doctest: +SKIP
        >>> it = vip.items()[0]; (it.name, it.gender, it.height, it.weight)   # doctest: +SKIP
        ('f_001', 'female', 1.55, 61.0)
    """

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = data_dir(root)
        self.dir = self.root / "vip_attribute"
        if not self.dir.is_dir():
            raise DatasetError(f"VIP_attribute folder not found: {self.dir}; expected vip_attribute/images/ and "
                               f"vip_attribute/annotation.csv there; {_LOCATE_HINT}")
        self.images_dir = self.dir / "images"
        self.annotation_path = self.dir / "annotation.csv"

    def __repr__(self) -> str:
        return f"VIPAttribute(root={str(self.root)!r})"

    def items(self) -> list[VIPItem]:
        """Every annotated face, in the file's order."""
        return list(self._items)

    @cached_property
    def _image_files(self) -> dict[str, Path]:
        # 7 of the 1,026 files are named .JPG: the extension is matched case-insensitively
        if not self.images_dir.is_dir():
            raise DatasetError(f"VIP_attribute images folder not found: {self.images_dir}; {_LOCATE_HINT}")
        return {p.stem: p for p in sorted(self.images_dir.iterdir())
                if p.is_file() and p.suffix.lower() in (".jpg", ".jpeg", ".png")}

    @cached_property
    def _items(self) -> tuple[VIPItem, ...]:
        path = self.annotation_path
        try:
            text = path.read_text(encoding="utf-8-sig")
        except FileNotFoundError:
            raise DatasetError(f"{path}: file not found; expected the VIP_attribute annotation; {_LOCATE_HINT}") from None
        except (OSError, UnicodeDecodeError) as e:
            raise DatasetError(f"{path}: cannot read ({e}); expected a UTF-8 CSV file") from e
        rows = list(csv.reader(text.splitlines()))
        if not rows or tuple(c.strip() for c in rows[0]) != _COLUMNS:
            raise DatasetError(f"{path}, line 1: expected the header {','.join(_COLUMNS)}, got {','.join(rows[0]) if rows else 'nothing'}")
        items: list[VIPItem] = []
        seen: set[str] = set()
        for n, row in enumerate(rows[1:], 2):
            if not any(c.strip() for c in row):
                continue
            if len(row) != 4:
                raise DatasetError(f"{path}, line {n}: expected 4 fields {','.join(_COLUMNS)}, got {len(row)}: {row}")
            name = row[0].strip()
            m = _NAME.fullmatch(name)
            if m is None:
                raise DatasetError(f"{path}, line {n}: expected an image name such as 'f_001' or 'm_123', got {name!r}")
            if name in seen:
                raise DatasetError(f"{path}, line {n}: image {name!r} annotated twice")
            seen.add(name)
            vals = {}
            for col, raw in zip(_COLUMNS[1:], row[1:]):
                try:
                    v = float(raw)
                except ValueError:
                    v = math.nan
                lo, hi = _RANGES[col]
                if not (math.isfinite(v) and lo <= v <= hi):
                    raise DatasetError(f"{path}, line {n}: expected {col} as a number in {lo}..{hi}, got {raw!r}")
                vals[col] = v
            bmi = vals["weight"] / vals["height"] ** 2
            if abs(bmi - vals["BMI"]) > 0.05:
                raise DatasetError(f"{path}, line {n}: BMI {vals['BMI']} disagrees with weight / height^2 = {bmi:.3f}")
            img = self._image_files.get(name)
            if img is None:
                raise DatasetError(f"{path}, line {n}: image {self.images_dir / name}.jpg not found")
            items.append(VIPItem(img, name, "female" if m.group(1) == "f" else "male",
                                 vals["height"], vals["weight"], vals["BMI"]))
        if not items:
            raise DatasetError(f"{path}: no annotated images")
        return tuple(items)
