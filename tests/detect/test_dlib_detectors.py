"""dlib's detectors on real LFW photos; selection; the detection cache."""
from __future__ import annotations

import sqlite3

import numpy as np
import pytest

from xaiface.detect import CachedDetector, DetectionCache, get_detector, list_detectors, select_faces
from xaiface.errors import ConfigError, ImageError, ModelNotFoundError, NoFaceError
from xaiface.types import DetectedFace


def test_registry():
    assert {"dlib-hog", "dlib-mmod"} <= set(list_detectors())
    with pytest.raises(ModelNotFoundError, match="no-such"):
        get_detector("no-such")


def _check_face(face: DetectedFace, shape):
    x1, y1, x2, y2 = face.box
    assert 0 <= x1 < x2 <= shape[1] and 0 <= y1 < y2 <= shape[0]
    le, re, nose, lm, rm = face.landmarks
    assert le[0] < re[0] and lm[0] < rm[0]  # image-left first
    assert max(le[1], re[1]) < nose[1] < min(lm[1], rm[1])  # eyes above nose above mouth
    for p in face.landmarks:
        assert x1 - 5 <= p[0] <= x2 + 5 and y1 - 5 <= p[1] <= y2 + 5
    assert face.landmarks_dlib5.shape == (5, 2)


@pytest.mark.parametrize("name", ["dlib-hog", "dlib-mmod"])
def test_detects_lfw_face(name, lfw_photo):
    faces = get_detector(name).detect(lfw_photo)
    assert len(faces) >= 1
    f = select_faces(faces, lfw_photo.shape, "center")[0]
    _check_face(f, lfw_photo.shape)
    assert f.detector == name


def test_five_point_landmarks_close_to_68(lfw_photo):
    f68 = get_detector("dlib-hog").detect(lfw_photo)[0]
    f5 = get_detector("dlib-hog", landmarks="5").detect(lfw_photo)[0]
    eye_dist = np.linalg.norm(f68.landmarks[0] - f68.landmarks[1])
    # eyes agree closely; nose and mouth are estimated from the template with the 5-point model
    assert np.linalg.norm(f5.landmarks[:2] - f68.landmarks[:2], axis=1).max() < 0.15 * eye_dist
    assert np.linalg.norm(f5.landmarks - f68.landmarks, axis=1).max() < 0.5 * eye_dist


def test_no_face_in_blank_image(hog):
    img = np.full((200, 200, 3), 127, np.uint8)
    assert hog.detect(img) == []
    with pytest.raises(NoFaceError, match="blank.png"):
        select_faces(hog.detect(img), img.shape, "largest", source="blank.png")


def test_selection_rules():
    mk = lambda box, s: DetectedFace(np.array(box, float), s, np.zeros((5, 2)))  # noqa: E731
    big_corner = mk([0, 0, 100, 100], 0.5)
    small_centre = mk([90, 90, 130, 130], 2.0)
    faces = [big_corner, small_centre]
    assert select_faces(faces, (220, 220, 3), "largest")[0] is big_corner
    assert select_faces(faces, (220, 220, 3), "center")[0] is small_centre
    assert select_faces(faces, (220, 220, 3), "score")[0] is small_centre
    assert select_faces(faces, (220, 220, 3), "all") == [big_corner, small_centre]
    with pytest.raises(ConfigError):
        select_faces(faces, (220, 220, 3), "biggest")


def test_bad_image_array(hog):
    with pytest.raises(ImageError):
        hog.detect(np.zeros((10, 10), np.float32))


def test_cache_hit_and_corruption(tmp_path, lfw_photo):
    path = tmp_path / "det.sqlite"
    det = get_detector("dlib-hog")
    cached = CachedDetector(det, DetectionCache(path))
    first = cached.detect(lfw_photo)
    assert cached.cache.misses == 1 and cached.cache.hits == 0
    second = cached.detect(lfw_photo)
    assert cached.cache.hits == 1
    assert len(first) == len(second)
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a.box, b.box)
        np.testing.assert_array_equal(a.landmarks, b.landmarks)
    # different settings -> a different key
    other = CachedDetector(get_detector("dlib-hog", upsample=0), DetectionCache(path))
    other.detect(lfw_photo)
    assert other.cache.misses == 1
    # corrupt the stored payload: detected, dropped and recomputed
    con = sqlite3.connect(path)
    con.execute("UPDATE detections SET payload = replace(payload, '\"score\"', '\"scxre\"')")
    con.commit()
    con.close()
    fresh = CachedDetector(det, DetectionCache(path))
    again = fresh.detect(lfw_photo)
    assert fresh.cache.repaired == 1 and fresh.cache.misses == 1
    np.testing.assert_array_equal(again[0].box, first[0].box)
    fresh2 = CachedDetector(det, DetectionCache(path))
    fresh2.detect(lfw_photo)
    assert fresh2.cache.hits == 1


def test_fallback_box(lfw_photo, hog):
    f = hog.face_in_box(lfw_photo, np.array([70.0, 70.0, 180.0, 180.0]))
    assert f.fallback and np.isnan(f.score)
    _check_face(f, lfw_photo.shape)
