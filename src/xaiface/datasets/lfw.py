"""Labeled Faces in the Wild (LFW): images, the View 2 pairs protocol, people folds and gender labels.

The data folder is a setting (``root``, default :func:`xaiface.config.data_dir`: ``--data``,
``$XAIFACE_DATA`` or ``../shared/data``) and LFW lies under ``<root>/lfw``::

    lfw/images/<Name>/<Name>_NNNN.jpg     13,233 images of 5,749 people (deep-funneled, 250x250)
    lfw/pairs.txt                         View 2: 10 folds x (300 genuine + 300 impostor) pairs
    lfw/people.txt                        10 folds of "<Name><TAB><image count>"
    lfw/male_names.txt, female_names.txt  one image file name a line

Every protocol file is validated as it is read; a malformed one raises
:class:`~xaiface.errors.DatasetError` naming the file and the line.
"""
from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Iterable, Literal, NoReturn, TypeVar

from ..config import data_dir
from ..errors import ConfigError, DatasetError
from ..io.hashing import file_sha256

PAIRS_SHA256 = "ea42330c62c92989f9d7c03237ed5d591365e89b3e649747777b70e692dc1592"
"""SHA-256 of the official View 2 ``pairs.txt``; another digest gives a warning, not an error."""

Gender = Literal["male", "female", "ambiguous"]
_P = TypeVar("_P")

_LOCATE_HINT = "pass --data DIR or set XAIFACE_DATA to the folder that holds lfw/"
_PERSON = re.compile(r"(?!\.\.?$)[^/\\\s]+")  # a folder name: no separators, no '.' or '..'
_IMAGE_FILE = re.compile(r"[^/\\\s]+_\d{4}\.jpg")


@dataclass(frozen=True)
class LFWPair:
    """One pair of the View 2 protocol.

    ``index`` is the pair's position in ``pairs.txt`` order (0..5999 for the official file), so
    its images are ``pair_images()[2 * index]`` and ``[2 * index + 1]``; ``fold`` is 0..9.
    """

    fold: int
    index: int
    name_a: str
    num_a: int
    name_b: str
    num_b: int
    same: bool
    path_a: Path
    path_b: Path


@dataclass(frozen=True)
class LFWPerson:
    """One line of ``people.txt``: a person, the fold (0..9) they belong to and their image count."""

    fold: int
    name: str
    count: int


class LFW:
    """Reader of the LFW files under ``<root>/lfw``.

    Files are read on first use and kept; the returned lists are new on every call.

    Args:
        root: the data folder holding ``lfw/`` (default :func:`xaiface.config.data_dir`).

    Raises:
        DatasetError: the data folder or its ``lfw`` folder does not exist.

    Example:
        >>> lfw = LFW()                                  # doctest: +SKIP
        >>> p = lfw.pairs()[0]; (p.name_a, p.num_a, p.num_b, p.same)  # doctest: +SKIP
        ('Abel_Pacheco', 1, 4, True)
    """

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = data_dir(root)
        self.lfw_dir = self.root / "lfw"
        if not self.lfw_dir.is_dir():
            raise DatasetError(
                f"LFW folder not found: {self.lfw_dir}; expected lfw/images/ and lfw/pairs.txt there; {_LOCATE_HINT}"
            )
        self.images_dir = self.lfw_dir / "images"

    def __repr__(self) -> str:
        return f"LFW(root={str(self.root)!r})"

    # -- images ----------------------------------------------------------------------------------

    def image_path(self, name: str, number: int) -> Path:
        """Return ``lfw/images/<name>/<name>_<number:04d>.jpg`` (whether or not it exists).

        Raises:
            ConfigError: ``name`` is not a plain folder name or ``number`` not in 1..9999.
        """
        problem = _image_ref_problem(name, number)
        if problem:
            raise ConfigError(f"LFW image ({name!r}, {number!r}): expected {problem}")
        return self.images_dir / name / f"{name}_{number:04d}.jpg"

    def identities(self) -> list[str]:
        """Return the sorted names of all people (the folders of ``lfw/images``)."""
        if not self.images_dir.is_dir():
            raise DatasetError(f"LFW images folder not found: {self.images_dir}; {_LOCATE_HINT}")
        return sorted(p.name for p in self.images_dir.iterdir() if p.is_dir())

    def images_of(self, name: str) -> list[Path]:
        """Return the sorted image paths of one person.

        Raises:
            DatasetError: the person has no folder (or no images) under ``lfw/images``.
        """
        folder = self.image_path(name, 1).parent
        paths = sorted(
            p for p in (folder.iterdir() if folder.is_dir() else ())
            if p.name.startswith(f"{name}_") and _IMAGE_FILE.fullmatch(p.name)
        )
        if not paths:
            raise DatasetError(f"{folder}: no images of {name!r}; expected files {name}_NNNN.jpg")
        return paths

    # -- pairs -----------------------------------------------------------------------------------

    def pairs(self, folds: Iterable[int] | None = None, per_fold: int | None = None) -> list[LFWPair]:
        """Return the View 2 pairs in file order (fold by fold, genuine pairs first).

        Args:
            folds: 0-based folds to keep (``None``: all ten; see :func:`parse_folds` for the
                command line's 1-based numbers).
            per_fold: a balanced quick run: the first ``max(1, per_fold // 2)`` genuine and as many
                impostor pairs of each kept fold (``None``: all 600).
        Raises:
            DatasetError: no pair is left (folds not in the file).
        """
        return select_fold_pairs(self._pairs, folds, per_fold)

    def pair_images(self) -> list[Path]:
        """Return the 12,000 image paths of the pairs in order: pair ``k`` gives items ``2k, 2k+1``."""
        return [path for p in self._pairs for path in (p.path_a, p.path_b)]

    def unique_pair_images(self) -> list[Path]:
        """Return each image used by the pairs once, in order of first appearance in ``pair_images()``."""
        return list(dict.fromkeys(self.pair_images()))

    @cached_property
    def _pairs(self) -> tuple[LFWPair, ...]:
        path = self.lfw_dir / "pairs.txt"
        lines = _Lines(path)
        digest = file_sha256(path)
        if digest != PAIRS_SHA256:
            warnings.warn(
                f"{path}: SHA-256 {digest} differs from the official View 2 file's {PAIRS_SHA256}; "
                "results will not be comparable with published LFW numbers",
                stacklevel=4,  # the caller of pairs() / pair_images()
            )
        n_folds, per_fold = lines.ints(2, "a header '<folds><TAB><pairs per fold>'")
        pairs: list[LFWPair] = []
        for fold in range(n_folds):
            for same in (True, False):
                for _ in range(per_fold):
                    pairs.append(self._parse_pair(lines, fold, len(pairs), same))
        lines.expect_end(f"{n_folds} folds of {per_fold} genuine and {per_fold} impostor pairs")
        return tuple(pairs)

    def _parse_pair(self, lines: _Lines, fold: int, index: int, same: bool) -> LFWPair:
        kind = "a genuine pair 'name<TAB>n1<TAB>n2'" if same else "an impostor pair 'name1<TAB>n1<TAB>name2<TAB>n2'"
        fields = lines.fields(3 if same else 4, f"{kind} (fold {fold})")
        name_a, raw_a, name_b, raw_b = (fields[0], fields[1], fields[0], fields[2]) if same else fields
        num_a, num_b = lines.to_int(raw_a, kind), lines.to_int(raw_b, kind)
        if not same and name_a == name_b:
            lines.fail(f"an impostor pair of two different people, got {name_a} twice")
        for name, num in ((name_a, num_a), (name_b, num_b)):
            problem = _image_ref_problem(name, num)
            if problem:
                lines.fail(problem)
        return LFWPair(fold, index, name_a, num_a, name_b, num_b, same,
                       self.image_path(name_a, num_a), self.image_path(name_b, num_b))

    # -- people and labels -----------------------------------------------------------------------

    def people(self) -> list[LFWPerson]:
        """Return the people of ``people.txt`` with their fold (0..9) and image count, in file order."""
        return list(self._people)

    @cached_property
    def _people(self) -> tuple[LFWPerson, ...]:
        lines = _Lines(self.lfw_dir / "people.txt")
        (n_folds,) = lines.ints(1, "a header '<number of folds>'")
        people: list[LFWPerson] = []
        for fold in range(n_folds):
            (count,) = lines.ints(1, f"the number of people in fold {fold}")
            for _ in range(count):
                kind = "a person 'name<TAB>image count'"
                name, raw = lines.fields(2, f"{kind} (fold {fold})")
                n_images = lines.to_int(raw, kind)
                problem = _image_ref_problem(name, n_images)
                if problem:
                    lines.fail(problem)
                people.append(LFWPerson(fold, name, n_images))
        lines.expect_end(f"{n_folds} folds")
        return tuple(people)

    def genders(self) -> dict[str, Gender]:
        """Return image file name (``Name_NNNN.jpg``) -> ``"male"``, ``"female"`` or ``"ambiguous"``.

        Read from ``male_names.txt`` and ``female_names.txt``. A file listed in both (5 in the
        published lists) is ``"ambiguous"`` rather than silently given either label, so that
        gender-split results never rest on a contradictory label; drop or review those as needed.
        Images in neither list (4 of the 13,233) are absent from the dict.
        """
        return dict(self._genders)

    @cached_property
    def _genders(self) -> dict[str, Gender]:
        male = self._read_name_list("male_names.txt")
        female = self._read_name_list("female_names.txt")
        labels: dict[str, Gender] = {name: "male" for name in male}
        for name in female:
            labels[name] = "ambiguous" if name in labels else "female"
        return labels

    def _read_name_list(self, file_name: str) -> list[str]:
        lines = _Lines(self.lfw_dir / file_name)
        names = []
        for fields in lines:
            if len(fields) != 1 or not _IMAGE_FILE.fullmatch(fields[0]):
                lines.fail(f"one image file name such as 'Abel_Pacheco_0001.jpg', got {' '.join(fields)!r}")
            names.append(fields[0])
        return names


def _image_ref_problem(name: str, number: int) -> str | None:
    """Say what is wrong with a (person, image number) reference, or ``None`` if it is valid."""
    if not isinstance(name, str) or not _PERSON.fullmatch(name):
        return f"a person's folder name such as 'Abel_Pacheco', got {name!r}"
    if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= 9999:
        return f"an image number in 1..9999, got {number!r}"
    return None


class _Lines:
    """The non-blank lines of a protocol file, split on whitespace, with line numbers for errors."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise DatasetError(f"{path}: file not found; expected the LFW protocol file; {_LOCATE_HINT}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise DatasetError(f"{path}: cannot read ({exc}); expected a UTF-8 text file") from exc
        self._rows = [(n, line.split()) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
        self._next = 0
        self.lineno = 0

    def __iter__(self) -> Iterator[list[str]]:
        while self._next < len(self._rows):
            yield self._advance()

    def _advance(self) -> list[str]:
        self.lineno, fields = self._rows[self._next]
        self._next += 1
        return fields

    def fields(self, count: int, expected: str) -> list[str]:
        """Return the next line's fields, which must number ``count``."""
        if self._next >= len(self._rows):
            raise DatasetError(f"{self.path}: file ends after line {self.lineno}; expected {expected} next")
        fields = self._advance()
        if len(fields) != count:
            self.fail(f"{expected} ({count} fields), got {len(fields)} fields {fields}")
        return fields

    def ints(self, count: int, expected: str) -> list[int]:
        """Return the next line's fields as ``count`` positive integers."""
        return [self.to_int(f, expected) for f in self.fields(count, expected)]

    def to_int(self, text: str, expected: str) -> int:
        """Parse a positive integer field of the current line."""
        if not text.isdigit() or int(text) < 1:
            self.fail(f"a positive integer in {expected}, got {text!r}")
        return int(text)

    def expect_end(self, expected: str) -> None:
        """Fail if lines remain after the expected content."""
        if self._next < len(self._rows):
            self._advance()
            self.fail(f"the end of the file after {expected}, got more lines")

    def fail(self, expected: str) -> NoReturn:
        """Raise a :class:`DatasetError` for the current line."""
        raise DatasetError(f"{self.path}, line {self.lineno}: expected {expected}")


def select_fold_pairs(pairs: Iterable[_P], folds: Iterable[int] | None = None, per_fold: int | None = None) -> list[_P]:
    """The pairs of some folds, optionally a balanced subset of each: the one fold selection.

    Args:
        pairs: objects with a 0-based ``fold`` and ``same`` (:class:`LFWPair`, Patch-LFW's
            pairs), in file order.
        folds: 0-based folds to keep (``None``: all).
        per_fold: keep the first ``max(1, per_fold // 2)`` genuine and as many impostor pairs of
            each fold, in order (``None`` or 0: all).
    Raises:
        DatasetError: no pair is left.
    """
    keep_folds = None if folds is None else set(int(f) for f in folds)
    kept = [p for p in pairs if keep_folds is None or not keep_folds or p.fold in keep_folds]
    if per_fold:
        per_class = max(1, int(per_fold) // 2)
        count: dict[tuple[int, bool], int] = {}
        balanced = []
        for p in kept:
            c = count.get((p.fold, p.same), 0)
            if c < per_class:
                balanced.append(p)
                count[(p.fold, p.same)] = c + 1
        kept = balanced
    if not kept:
        raise DatasetError(f"no LFW pairs in folds {sorted(keep_folds) if keep_folds else folds}")
    return kept


N_FOLDS = 10
"""LFW View 2 has ten folds; on the command line they are numbered 1..10 (``--folds 1,2``)."""


def parse_folds(text: str | None) -> tuple[int, ...] | None:
    """Parse a ``--folds`` value: comma-separated fold numbers counted from 1 (``"1,2"``, ``"10"``).

    Every command that takes ``--folds`` uses this one parser and this one convention: folds are
    numbered 1..10 as written in the README and in each ``--help``.

    Args:
        text: the option's text; ``None`` or blank means every fold.
    Returns:
        ``None`` for every fold, else the chosen folds as sorted, distinct **0-based** indices
        (the ``fold`` of :class:`LFWPair`, 0..9), e.g. ``"2,1,2"`` -> ``(0, 1)``.
    Raises:
        ConfigError: a part that is not a whole number in 1..10 (the message quotes the text).
    """
    if text is None or not str(text).strip():
        return None
    folds = set()
    for part in str(text).split(","):
        part = part.strip()
        if not (part.isascii() and part.isdigit()) or not 1 <= int(part) <= N_FOLDS:
            raise ConfigError(f"--folds {text!r}: {part!r} is not a fold number 1..{N_FOLDS}; expected comma-separated "
                              "fold numbers counted from 1 (e.g. --folds 1,2)")
        folds.add(int(part) - 1)
    return tuple(sorted(folds))
