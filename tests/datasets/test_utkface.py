"""UTKFace reader: labels from file names; the real folder's malformed names reported and skipped."""
from __future__ import annotations

import warnings

import pytest

from xaiface.datasets import UTKFace
from xaiface.datasets.utkface import parse_name
from xaiface.errors import DatasetError

REAL_MALFORMED = {
    "24_0_1_20170116220224657 .jpg.chip.jpg": "a space in the name",
    "39_1_20170116174525125.jpg.chip.jpg": "3 underscore-separated fields",
    "55_0_0_20170116232725357jpg.chip.jpg": "no '.' before 'jpg.chip.jpg'",
    "61_1_20170109150557335.jpg.chip.jpg": "3 underscore-separated fields",
}


@pytest.fixture(scope="module")
def utk(data_root):
    return UTKFace(data_root)


def test_real_folder_malformed_names_reported_and_skipped(utk):
    bad = {m.path.name: m.reason for m in utk.malformed()}
    assert set(bad) == set(REAL_MALFORMED)
    for name, reason in REAL_MALFORMED.items():
        assert reason in bad[name]
    with pytest.warns(UserWarning, match="skipped 4 malformed") as rec:
        items = utk.items()
    assert len(items) == 7899 and len(items) + len(bad) == 7903
    assert all("24_0_1_20170116220224657 .jpg" in str(r.message) for r in rec)
    assert not {it.path.name for it in items} & set(REAL_MALFORMED)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the warning is given once per reader
        utk.items()


def test_real_labels(utk):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        items = utk.items()
    first = items[0]
    assert first.path.name == "100_0_0_20170112213500903.jpg.chip.jpg"
    assert (first.age, first.gender, first.race, first.date) == (100, "male", "White", "20170112213500903")
    assert {it.gender for it in items} == {"male", "female"}
    assert min(it.age for it in items) >= 1 and max(it.age for it in items) <= 116


def test_parse_name_and_reasons():
    assert parse_name("25_1_2_20170116174525125.jpg.chip.jpg") == (25, "female", "Asian", "20170116174525125")
    for name, reason in [("25_1_20170116174525125.jpg.chip.jpg", "3 underscore"),
                         ("25_1_2_20170116174525125 .jpg.chip.jpg", "space"),
                         ("25_1_2_20170116174525125jpg.chip.jpg", "no '.'"),
                         ("25_2_2_20170116174525125.jpg.chip.jpg", "out of range"),
                         ("130_1_2_20170116174525125.jpg.chip.jpg", "outside 0..116")]:
        with pytest.raises(DatasetError, match=reason):
            parse_name(name)


def test_constructed_folder(tmp_path):
    img = tmp_path / "utkface" / "images"
    img.mkdir(parents=True)
    for n in ["30_0_0_20170116174525125.jpg.chip.jpg", "31_1_4_20170116174525126.jpg.chip.jpg",
              "32_1_20170116174525127.jpg.chip.jpg", "notes.txt"]:
        (img / n).write_bytes(b"x")
    u = UTKFace(tmp_path)
    with pytest.warns(UserWarning, match="skipped 1 malformed"):
        assert [(i.age, i.gender, i.race) for i in u.items()] == [(30, "male", "White"), (31, "female", "Others")]
    assert [m.path.name for m in u.malformed()] == ["32_1_20170116174525127.jpg.chip.jpg"]


def test_missing_folder(tmp_path):
    with pytest.raises(DatasetError, match="UTKFace folder not found"):
        UTKFace(tmp_path)
