"""VIP_attribute reader: the real annotation and every kind of malformed row."""
from __future__ import annotations

import pytest

from xaiface.datasets import VIPAttribute
from xaiface.errors import DatasetError


def test_real_annotation(data_root):
    items = VIPAttribute(data_root).items()
    assert len(items) == 1026
    assert sum(i.gender == "female" for i in items) == 513 and sum(i.gender == "male" for i in items) == 513
    f1 = items[0]
    assert (f1.name, f1.gender, f1.height, f1.weight) == ("f_001", "female", 1.55, 61.0)
    assert f1.bmi == pytest.approx(61.0 / 1.55 ** 2, abs=1e-6)
    assert all(i.path.is_file() for i in items)
    assert sum(i.path.suffix == ".JPG" for i in items) == 7  # upper-case extensions are found
    assert all(abs(i.bmi - i.weight / i.height ** 2) < 0.05 for i in items)


def _folder(tmp_path, rows, images=("f_001", "m_001")):
    d = tmp_path / "vip_attribute"
    (d / "images").mkdir(parents=True)
    for n in images:
        (d / "images" / f"{n}.jpg").write_bytes(b"x")
    (d / "annotation.csv").write_text("\n".join(rows) + "\n")
    return VIPAttribute(tmp_path)


def test_constructed_good(tmp_path):
    v = _folder(tmp_path, ["image,height,weight,BMI", "f_001,1.60,64.0,25.0", "m_001,1.80,81.0,25.0"])
    assert [(i.name, i.gender, i.bmi) for i in v.items()] == [("f_001", "female", 25.0), ("m_001", "male", 25.0)]


@pytest.mark.parametrize("rows,expect", [
    (["name,h,w,b", "f_001,1.6,64,25"], "line 1: expected the header"),
    (["image,height,weight,BMI", "f_001,1.6,64"], "line 2: expected 4 fields"),
    (["image,height,weight,BMI", "x_001,1.6,64,25"], "line 2: expected an image name"),
    (["image,height,weight,BMI", "f_001,tall,64,25"], "line 2: expected height as a number"),
    (["image,height,weight,BMI", "f_001,1.6,64,30"], "line 2: BMI 30.0 disagrees"),
    (["image,height,weight,BMI", "f_001,1.6,64,25", "f_001,1.6,64,25"], "line 3: image 'f_001' annotated twice"),
    (["image,height,weight,BMI", "f_002,1.6,64,25"], "line 2: image .*f_002.jpg not found"),
])
def test_constructed_malformed(tmp_path, rows, expect):
    with pytest.raises(DatasetError, match=expect):
        _folder(tmp_path, rows).items()


def test_missing(tmp_path):
    with pytest.raises(DatasetError, match="VIP_attribute folder not found"):
        VIPAttribute(tmp_path)
    (tmp_path / "vip_attribute" / "images").mkdir(parents=True)
    with pytest.raises(DatasetError, match="annotation.csv: file not found"):
        VIPAttribute(tmp_path).items()
