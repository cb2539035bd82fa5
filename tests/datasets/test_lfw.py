"""Tests of xaiface.datasets.lfw on the real shared LFW files and on malformed copies."""
from __future__ import annotations

import warnings
from collections import Counter
from pathlib import Path

import pytest

from xaiface.datasets import LFW, LFWPair, LFWPerson
from xaiface.errors import ConfigError, DatasetError

FOLD_SIZES = [601, 555, 552, 560, 567, 527, 597, 601, 580, 609]  # people.txt, as published
AMBIGUOUS = {
    "Allison_Searing_0001.jpg", "Claudia_Coslovich_0001.jpg", "Elizabeth_Hill_0001.jpg",
    "Erika_Reyes_0001.jpg", "Tatiana_Shchegoleva_0001.jpg",
}


@pytest.fixture(scope="module")
def lfw() -> LFW:
    try:
        return LFW()
    except DatasetError as exc:
        pytest.skip(f"shared LFW data not available: {exc}")


def _lfw_with(tmp_path: Path, file_name: str, text: str) -> LFW:
    """An LFW reader over ``tmp_path/lfw`` holding one protocol file with ``text``."""
    (tmp_path / "lfw").mkdir(exist_ok=True)
    (tmp_path / "lfw" / file_name).write_text(text)
    return LFW(tmp_path)


# -- pairs on the real data ------------------------------------------------------------------------

def test_official_pairs_counts_and_folds(lfw):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the official file's SHA-256 matches: no warning
        pairs = LFW(lfw.root).pairs()
    assert len(pairs) == 6000
    assert sum(p.same for p in pairs) == 3000
    assert Counter(p.fold for p in pairs) == {fold: 600 for fold in range(10)}
    assert [p.index for p in pairs] == list(range(6000))
    for fold in range(10):  # each fold: 300 genuine, then 300 impostor
        block = pairs[600 * fold: 600 * (fold + 1)]
        assert [p.same for p in block] == [True] * 300 + [False] * 300
        assert {p.fold for p in block} == {fold}
    assert all(p.name_a == p.name_b for p in pairs if p.same)
    assert all(p.name_a != p.name_b for p in pairs if not p.same)


def test_first_pairs(lfw):
    first, first_impostor = lfw.pairs()[0], lfw.pairs()[300]
    assert (first.name_a, first.num_a, first.name_b, first.num_b) == ("Abel_Pacheco", 1, "Abel_Pacheco", 4)
    assert first.same and first.fold == 0
    assert first.path_a == lfw.root / "lfw/images/Abel_Pacheco/Abel_Pacheco_0001.jpg"
    assert first.path_b == lfw.root / "lfw/images/Abel_Pacheco/Abel_Pacheco_0004.jpg"
    assert first.path_a.is_file() and first.path_b.is_file()
    assert (first_impostor.fold, first_impostor.same) == (0, False)
    assert isinstance(first, LFWPair)


def test_pair_images_follow_the_pairs(lfw):
    pairs, images = lfw.pairs(), lfw.pair_images()
    assert len(images) == 12000
    assert all(images[2 * k] == p.path_a and images[2 * k + 1] == p.path_b for k, p in enumerate(pairs))
    missing = [p for p in images if not p.is_file()]
    assert not missing, missing[:5]
    unique = lfw.unique_pair_images()
    assert len(unique) == len(set(images)) == 7701
    assert unique[:2] == images[:2] and set(unique) == set(images)


# -- people, identities, genders -----------------------------------------------------------------

def test_people_folds(lfw):
    people = lfw.people()
    assert len(people) == 5749 and isinstance(people[0], LFWPerson)
    assert [Counter(p.fold for p in people)[fold] for fold in range(10)] == FOLD_SIZES
    assert [p.fold for p in people] == sorted(p.fold for p in people)  # folds in file order
    assert len({p.name for p in people}) == 5749  # each person in exactly one fold
    assert sum(p.count for p in people) == 13233
    assert (people[0].fold, people[0].name, people[0].count) == (0, "Abdel_Madi_Shabneh", 1)


def test_people_counts_match_the_image_folders(lfw):
    people = lfw.people()
    assert sorted(p.name for p in people) == lfw.identities()
    assert {p.name: p.count for p in people} == {name: len(lfw.images_of(name)) for name in lfw.identities()}


def test_images_of_and_image_path(lfw):
    assert [p.name for p in lfw.images_of("Abel_Pacheco")] == [f"Abel_Pacheco_{n:04d}.jpg" for n in (1, 2, 3, 4)]
    assert lfw.image_path("Zhu_Rongji", 9) == lfw.root / "lfw" / "images" / "Zhu_Rongji" / "Zhu_Rongji_0009.jpg"
    with pytest.raises(DatasetError, match="No_Such_Person"):
        lfw.images_of("No_Such_Person")
    for name, number in (("../etc", 1), ("", 1), ("Abel_Pacheco", 0), ("Abel_Pacheco", "1")):
        with pytest.raises(ConfigError, match="expected"):
            lfw.image_path(name, number)


def test_genders(lfw):
    genders = lfw.genders()
    assert Counter(genders.values()) == {"male": 10263, "female": 2961, "ambiguous": 5}
    assert len(genders) == 13229  # 10,268 male + 2,966 female lines, 5 file names in both
    assert {name for name, g in genders.items() if g == "ambiguous"} == AMBIGUOUS
    assert genders["Abel_Pacheco_0001.jpg"] == "male"
    names_on_disk = {p.name for p in (lfw.root / "lfw" / "images").glob("*/*.jpg")}
    assert set(genders) <= names_on_disk and len(names_on_disk - set(genders)) == 4


# -- missing and malformed files -------------------------------------------------------------------

def test_missing_data_folder_tells_how_to_point_at_it(tmp_path):
    for root in (tmp_path / "nowhere", tmp_path):  # no folder at all; a folder without lfw/
        with pytest.raises(DatasetError) as info:
            LFW(root)
        assert "--data" in str(info.value) and "XAIFACE_DATA" in str(info.value)


def test_missing_protocol_file_is_named(tmp_path):
    (tmp_path / "lfw").mkdir()
    with pytest.raises(DatasetError, match=r"pairs\.txt: file not found"):
        LFW(tmp_path).pairs()


GOOD_PAIRS = "1\t2\nA_B\t1\t2\nC_D\t1\t3\nA_B\t1\tC_D\t2\nE_F\t1\tA_B\t2\n"


def test_small_valid_pairs_file_warns_about_its_hash(tmp_path):
    lfw = _lfw_with(tmp_path, "pairs.txt", GOOD_PAIRS)
    with pytest.warns(UserWarning, match="SHA-256"):
        pairs = lfw.pairs()
    assert [(p.fold, p.index, p.same, p.name_a, p.num_a, p.name_b, p.num_b) for p in pairs] == [
        (0, 0, True, "A_B", 1, "A_B", 2), (0, 1, True, "C_D", 1, "C_D", 3),
        (0, 2, False, "A_B", 1, "C_D", 2), (0, 3, False, "E_F", 1, "A_B", 2),
    ]
    assert lfw.pair_images()[5] == tmp_path.resolve() / "lfw/images/C_D/C_D_0002.jpg"


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("ten\t2\n" + GOOD_PAIRS.split("\n", 1)[1], "line 1: expected a positive integer in a header"),
        (GOOD_PAIRS.replace("C_D\t1\t3", "C_D\t1\t3\t4"), "line 3: expected a genuine pair"),
        (GOOD_PAIRS.replace("A_B\t1\t2\n", "A_B\tone\t2\n", 1), "line 2: expected a positive integer in a genuine"),
        (GOOD_PAIRS.replace("E_F\t1\tA_B", "E_F\t1\tE_F"), "line 5: expected an impostor pair of two different"),
        (GOOD_PAIRS.replace("E_F\t1\tA_B\t2", "E_F\t1\tA_B\t0"), "line 5: expected a positive integer"),
        (GOOD_PAIRS.replace("A_B\t1\tC_D", "A/B\t1\tC_D"), "line 4: expected a person's folder name"),
        (GOOD_PAIRS.replace("A_B\t1\t2\n", "\n\nA_B\t1\n", 1), "line 4: expected a genuine pair"),  # blank lines count
        (GOOD_PAIRS.rsplit("E_F", 1)[0], "file ends after line 4; expected an impostor pair"),
        (GOOD_PAIRS + "G_H\t1\t2\n", "line 6: expected the end of the file"),
    ],
)
def test_malformed_pairs_name_file_and_line(tmp_path, text, where):
    lfw = _lfw_with(tmp_path, "pairs.txt", text)
    with pytest.warns(UserWarning, match="SHA-256"), pytest.raises(DatasetError) as info:
        lfw.pairs()
    assert str(info.value).startswith(str(tmp_path.resolve() / "lfw" / "pairs.txt"))
    assert where in str(info.value)


def test_malformed_people_file(tmp_path):
    lfw = _lfw_with(tmp_path, "people.txt", "2\n1\nA_B\t3\n2\nC_D\t1\n")
    with pytest.raises(DatasetError, match=r"people\.txt: file ends after line 5; expected a person"):
        lfw.people()
    lfw = _lfw_with(tmp_path, "people.txt", "1\n2\nA_B\t3\nC_D\tx\n")
    with pytest.raises(DatasetError, match=r"people\.txt, line 4: expected a positive integer in a person"):
        lfw.people()


def test_malformed_gender_list(tmp_path):
    _lfw_with(tmp_path, "female_names.txt", "A_B_0001.jpg\r\n")
    lfw = _lfw_with(tmp_path, "male_names.txt", "A_B_0002.jpg\r\nC_D_0001.jpg\r\nC_D 0002\r\n")
    with pytest.raises(DatasetError, match=r"male_names\.txt, line 3: expected one image file name"):
        lfw.genders()


def test_pairs_by_fold_and_balanced_subset(lfw):
    every = lfw.pairs()
    two = lfw.pairs(folds=[1, 3])
    assert {p.fold for p in two} == {1, 3} and len(two) == 1200
    quick = lfw.pairs(folds=[1], per_fold=6)
    fold1 = [p for p in every if p.fold == 1]
    want = [p for p in fold1 if p.same][:3] + [p for p in fold1 if not p.same][:3]
    assert quick == want  # the first k/2 genuine and k/2 impostor pairs, in file order
    assert len(lfw.pairs(per_fold=1)) == 20  # at least one of each kind per fold
    with pytest.raises(DatasetError, match="no LFW pairs"):
        lfw.pairs(folds=[12])
