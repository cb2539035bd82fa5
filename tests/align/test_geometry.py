"""Alignment: exact transforms on synthetic points, dlib's chips on real faces, differentiable warps."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from xaiface.align import (
    ARCFACE_TEMPLATE_112, align_face, apply_affine, invert_affine, similarity_transform, unwarp_map, warp_image,
    warp_tensor,
)
from xaiface.detect import select_faces
from xaiface.errors import ConfigError
from xaiface.models.dlib_resnet import dlib_model_path


def test_similarity_transform_recovers_known_transform():
    a, s, t = 0.3, 1.7, np.array([12.0, -4.0])
    r = s * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    src = ARCFACE_TEMPLATE_112
    dst = src @ r.T + t
    m = similarity_transform(src, dst)
    np.testing.assert_allclose(m[:, :2], r, atol=1e-10)
    np.testing.assert_allclose(m[:, 2], t, atol=1e-9)
    np.testing.assert_allclose(apply_affine(invert_affine(m), dst), src, atol=1e-9)


def test_similarity_transform_rejects_bad_points():
    with pytest.raises(ConfigError):
        similarity_transform(np.zeros((5, 2)), np.ones((5, 2)))
    with pytest.raises(ConfigError):
        similarity_transform(np.zeros((5, 2)), np.ones((4, 2)))


def test_warp_identity_and_translation():
    img = np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    ident = np.array([[1.0, 0, 0], [0, 1.0, 0]])
    np.testing.assert_array_equal(warp_image(img, ident, 40), img)
    shift = np.array([[1.0, 0, -5], [0, 1.0, -7]])  # crop(x, y) = photo(x + 5, y + 7)
    out = warp_image(img, shift, 20)
    np.testing.assert_array_equal(out, img[7:27, 5:25])


def test_arcface_alignment_puts_landmarks_on_template(lfw_photo, hog):
    face = select_faces(hog.detect(lfw_photo), lfw_photo.shape, "center")[0]
    a = align_face(lfw_photo, face, "arcface-112")
    assert a.image.shape == (112, 112, 3) and a.image.dtype == np.uint8
    mapped = apply_affine(a.matrix, face.landmarks)
    # least squares over 5 points: eyes within a few pixels of the template, nose and mouth
    # (which move with pose and expression) within 8
    assert np.abs(mapped - ARCFACE_TEMPLATE_112)[:2].max() < 3
    assert np.abs(mapped - ARCFACE_TEMPLATE_112).max() < 8
    a2 = align_face(lfw_photo, face, "arcface-224")
    np.testing.assert_allclose(a2.matrix, a.matrix * 2, atol=1e-9)


def test_dlib_chip_matches_dlib(lfw):
    """Our dlib-150 chips equal dlib.get_face_chip to within one grey level on real faces."""
    import dlib

    from xaiface.io import load_image
    from xaiface.types import DetectedFace

    det = dlib.get_frontal_face_detector()
    sp = dlib.shape_predictor(str(dlib_model_path("shape_predictor_5_face_landmarks.dat")))
    for p in lfw.pairs()[:5]:
        img = load_image(p.path_a)
        r = det(img, 1)[0]
        shape = sp(img, r)
        ref = dlib.get_face_chip(img, shape, size=150, padding=0.25)
        pts = np.array([[q.x, q.y] for q in shape.parts()], float)
        face = DetectedFace(np.array([r.left(), r.top(), r.right() + 1, r.bottom() + 1], float), 1.0,
                            np.zeros((5, 2)), landmarks_dlib5=pts)
        ours = align_face(img, face, "dlib-150").image
        d = np.abs(ours.astype(int) - ref.astype(int))
        assert d.max() <= 1 and d.mean() < 0.01


def test_differentiable_warp_reaches_photo(lfw_photo, hog):
    face = hog.detect(lfw_photo)[0]
    a = align_face(lfw_photo, face, "arcface-112")
    photo = torch.from_numpy(lfw_photo.copy()).permute(2, 0, 1)[None].float().requires_grad_(True)
    crop = warp_tensor(photo, a.matrix, 112)
    assert torch.allclose(crop[0].permute(1, 2, 0).round(), torch.from_numpy(a.image).float(), atol=1.0)
    crop[..., 50:60, 50:60].sum().backward()
    g = photo.grad[0].abs().sum(0)
    ys, xs = np.nonzero(g.numpy())
    # the gradient lands where the crop window maps back onto the photo
    centre = apply_affine(invert_affine(a.matrix), np.array([[54.5, 54.5]]))[0]
    assert abs(xs.mean() - centre[0]) < 2 and abs(ys.mean() - centre[1]) < 2


def test_unwarp_map_roundtrip(lfw_photo, hog):
    face = hog.detect(lfw_photo)[0]
    a = align_face(lfw_photo, face, "arcface-112")
    m = np.zeros((112, 112), np.float32)
    m[40:70, 30:80] = 1.0
    back = unwarp_map(m, a.matrix, lfw_photo.shape[:2])
    assert back.shape == lfw_photo.shape[:2]
    assert np.isnan(back[0, 0])  # outside the crop
    inside = apply_affine(invert_affine(a.matrix), np.array([[55.0, 55.0]]))[0].round().astype(int)
    assert back[inside[1], inside[0]] == pytest.approx(1.0, abs=1e-4)


def test_unknown_geometry(lfw_photo, hog):
    with pytest.raises(ConfigError, match="geometry"):
        align_face(lfw_photo, hog.detect(lfw_photo)[0], "mystery-112")


def test_zoomed_arcface_geometry():
    """``arcface-224-zoom1.4``: the 112 template scaled to 224, then pulled 1.4x towards the centre."""
    from xaiface.align.aligner import _size, _zoom, arcface_template
    from xaiface.align.geometry import ARCFACE_TEMPLATE_112
    from xaiface.errors import ConfigError

    assert _size("arcface-224-zoom1.4") == 224 and _zoom("arcface-224-zoom1.4") == 1.4 and _zoom("arcface-112") == 1.0
    t = arcface_template(224, 1.4)
    np.testing.assert_allclose((t - 112) * 1.4 + 112, ARCFACE_TEMPLATE_112 * 2, atol=1e-9)
    np.testing.assert_allclose(arcface_template(112), ARCFACE_TEMPLATE_112, atol=1e-12)
    for bad in ("arcface-224-zoomx", "arcface-224-big", "arcface-224-zoom9"):
        with pytest.raises(ConfigError, match="arcface-224"):
            _zoom(bad)
