"""A tight crop whose face fills the frame: the no-face error says what finds it, and it does."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from xaiface.cli import main
from xaiface.detect import get_detector
from xaiface.errors import NoFaceError
from xaiface.pipeline import FacePipeline


@pytest.fixture(scope="module")
def tight_crop(lfw, tmp_path_factory):
    """Abel_Pacheco_0001 cut to 92x112 around the face, grayscale (ORL/AT&T-style): HOG misses it."""
    photo = Image.open(lfw.image_path("Abel_Pacheco", 1))
    path = tmp_path_factory.mktemp("crop") / "abel-92x112.png"
    photo.crop((79, 72, 171, 184)).convert("L").save(path)
    return path


def test_tight_crop_no_face_error_gives_hint(tight_crop, hog, capsys):
    pipe = FacePipeline(detector=hog)
    with pytest.raises(NoFaceError) as e:
        pipe.align(tight_crop)
    msg = str(e.value)
    assert msg.startswith(f"no face found in {tight_crop}; the photo is only 92x112 pixels")
    assert "--pad-retry" in msg and "--detector dlib-mmod" in msg
    code = main(["verify", str(tight_crop), str(tight_crop)])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "--detector dlib-mmod" in err


def test_tight_crop_found_by_the_hinted_routes(tight_crop, lfw):
    img = np.array(Image.open(tight_crop).convert("RGB"))
    retry = get_detector("dlib-hog", pad_retry=True).detect(img)
    mmod = get_detector("dlib-mmod").detect(img)
    assert len(retry) == 1 and len(mmod) == 1
    for face in (retry[0], mmod[0]):  # both in the crop's own pixels: eyes inside the frame, level
        left, right = face.landmarks[0], face.landmarks[1]
        assert 0 < left[0] < right[0] < 92 and 0 < left[1] < 112 and abs(left[1] - right[1]) < 8
    np.testing.assert_allclose(retry[0].landmarks, mmod[0].landmarks, atol=6)
    # the crop still verifies against another photo of the same person
    pipe = FacePipeline(detector="dlib-hog", detector_kwargs={"pad_retry": True})
    assert pipe.verify(tight_crop, lfw.image_path("Abel_Pacheco", 4)).match


def test_no_face_hint_only_where_it_can_help():
    from xaiface.detect.base import no_face_hint

    hog = {"name": "dlib-hog", "upsample": 1, "pad_retry": False}
    assert "--pad-retry" in no_face_hint((112, 92, 3), hog)
    assert "--pad-retry" not in no_face_hint((112, 92, 3), {**hog, "pad_retry": True})
    assert no_face_hint((112, 92, 3), {"name": "dlib-mmod", "upsample": 2}) == ""
    assert "--pad-retry" not in no_face_hint((500, 500, 3), hog)
