"""The median-box rule for photos without a detected face (shared by every data-set stage)."""
from __future__ import annotations

import numpy as np
import pytest

from xaiface.detect.fallback import box_landmarker, fallback_face, median_box
from xaiface.errors import DatasetError
from xaiface.types import DetectedFace


def _face(box):
    return DetectedFace(box=np.array(box, float), score=1.0, landmarks=np.zeros((5, 2)))


def test_median_box_is_elementwise():
    faces = [_face([60, 70, 170, 180]), _face([70, 80, 180, 190]), _face([0, 0, 250, 250])]
    np.testing.assert_array_equal(median_box(faces), [60, 70, 180, 190])
    with pytest.raises(DatasetError, match="no face detected"):
        median_box([])


def test_fallback_face_places_landmarks_inside_the_box(lfw_photo):
    box = np.array([67.0, 80.0, 176.0, 188.0])
    f = fallback_face(lfw_photo, box)
    assert f.fallback and np.isnan(f.score)
    np.testing.assert_array_equal(f.box, box)
    assert (f.landmarks[:, 0] > 60).all() and (f.landmarks[:, 0] < 185).all()
    assert f.landmarks[0, 1] < f.landmarks[3, 1]  # eyes above the mouth
    assert hasattr(box_landmarker("dlib-hog"), "face_in_box")
