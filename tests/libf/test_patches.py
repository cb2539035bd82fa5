"""Heuristic patch extraction on real LFW faces: scale / rotation invariance, visibility, label maps."""
from __future__ import annotations

import numpy as np
import pytest

from xaiface.align import apply_affine, invert_affine
from xaiface.errors import ConfigError, ImageError
from xaiface.libf.evaluate import transformed_face
from xaiface.libf.patches import (
    N_PATCHES, PATCH_NAMES, draw_patches, extract_patches, patch_label_map, patch_layout,
)

TRANSFORMS = [(0.0, 0.6), (0.0, 1.8), (25.0, 1.0), (-30.0, 1.4), (90.0, 0.8), (180.0, 1.2)]


def test_eleven_patches_on_the_face(abel):
    img, face = abel
    lay = patch_layout(face.landmarks, img.shape)
    assert lay.centers.shape == (N_PATCHES, 2) and len(PATCH_NAMES) == 11
    # the five base patches sit on the landmarks
    np.testing.assert_allclose(lay.centers[:5], face.landmarks)
    assert lay.visible.all() and np.all(lay.inside == 1.0)
    d_eye = np.linalg.norm(face.landmarks[1] - face.landmarks[0])
    up = lay.centers[:, 1]
    # forehead above the eyes, cheeks between eyes and mouth, chin below the mouth (upright photo)
    assert up[5] < up[0] - 0.3 * d_eye and up[6] < up[1] - 0.3 * d_eye
    assert up[0] < up[7] < up[3] and up[1] < up[8] < up[4]
    assert up[9] > up[3] + 0.2 * d_eye and up[10] > up[4] + 0.2 * d_eye
    assert lay.centers[7, 0] < lay.centers[2, 0] < lay.centers[8, 0]  # cheeks either side of the nose
    assert np.all((0.3 * d_eye < lay.sides) & (lay.sides < 0.8 * d_eye))


@pytest.mark.parametrize("angle,scale", TRANSFORMS)
def test_equivariant_under_similarity(abel, angle, scale):
    """Photo and landmarks transformed together: patch centres map back exactly, sides scale, pixels agree."""
    img, face = abel
    ref = extract_patches(img, face.landmarks)
    timg, tlm, m = transformed_face(img, face.landmarks, angle, scale, out_shape=(int(250 * scale) + 60,) * 2)
    got = extract_patches(timg, tlm)
    back = apply_affine(invert_affine(m), got.layout.centers)
    np.testing.assert_allclose(back, ref.layout.centers, atol=1e-6)
    np.testing.assert_allclose(got.layout.sides, scale * ref.layout.sides, rtol=1e-9)
    assert np.array_equal(got.visible, ref.visible)
    # the same facial region: patches cut upright agree to within resampling
    diff = np.abs(got.pixels.astype(float) - ref.pixels.astype(float)).mean(axis=(1, 2, 3))
    assert diff.max() < 12, diff


@pytest.mark.parametrize("angle,scale", [(0.0, 0.7), (0.0, 1.6), (20.0, 1.0), (-20.0, 1.3)])
def test_redetected_landmarks_land_on_the_same_region(abel, hog, angle, scale):
    """Landmarks found again on the transformed photo: patch centres map back to within 15% of the eye distance."""
    img, face = abel
    ref = patch_layout(face.landmarks, img.shape)
    timg, _, m = transformed_face(img, face.landmarks, angle, scale, out_shape=(int(250 * scale) + 60,) * 2)
    found = hog.detect(timg)
    assert found, "HOG found no face in the transformed photo"
    f = min(found, key=lambda f: np.linalg.norm(apply_affine(invert_affine(m), f.center[None])[0] - face.center))
    lay = patch_layout(f.landmarks, timg.shape)
    back = apply_affine(invert_affine(m), lay.centers)
    d_eye = np.linalg.norm(face.landmarks[1] - face.landmarks[0])
    err = np.linalg.norm(back - ref.centers, axis=1) / d_eye
    assert err.max() < 0.15, dict(zip(PATCH_NAMES, np.round(err, 3)))
    np.testing.assert_allclose(lay.sides / scale, ref.sides, rtol=0.15)


def test_face_partly_outside_the_image(abel):
    """The photo shifted up and right: the upper-right patches leave the image and are flagged, no crash."""
    img, face = abel
    timg, tlm, _ = transformed_face(img, face.landmarks, shift=(120.0, -100.0))
    fp = extract_patches(timg, tlm)
    lay = fp.layout
    outside = lay.inside < 0.5
    assert outside.any() and (~outside).any()
    assert np.array_equal(lay.visible, ~outside)
    assert not lay.visible[PATCH_NAMES.index("right_forehead")]
    assert lay.visible[PATCH_NAMES.index("left_chin")] and lay.visible[PATCH_NAMES.index("left_mouth")]
    # out-of-image pixels are black: a patch entirely outside is all zeros
    for j in np.flatnonzero(lay.inside == 0):
        assert fp.pixels[j].max() == 0
    # landmarks wholly outside the image: every patch invisible, still no crash
    far = extract_patches(img, face.landmarks + 1000.0)
    assert not far.visible.any() and far.pixels.max() == 0


def test_strong_yaw_hides_the_far_side(abel):
    img, face = abel
    lm = face.landmarks.copy()
    d_eye = np.linalg.norm(lm[1] - lm[0])
    lm[2, 0] = (lm[0, 0] + lm[1, 0]) / 2 + 0.6 * d_eye  # nose tip far towards the image's right
    lay = patch_layout(lm, img.shape)
    hidden = {PATCH_NAMES[j] for j in np.flatnonzero(~lay.visible)}
    assert {"right_cheek", "right_eye", "right_forehead", "right_chin"} <= hidden
    assert not hidden & {"left_eye", "left_cheek", "nose"}
    assert lay.yaw_index > 0.5
    assert patch_layout(face.landmarks, img.shape).visible.all()


def test_label_map_is_patch_constant(abel):
    img, face = abel
    lay = patch_layout(face.landmarks, img.shape)
    lab = patch_label_map(lay)
    assert lab.shape == img.shape[:2]
    assert set(np.unique(lab)) == set(range(-1, 11))
    # each patch's own centre pixel carries its label; pixels far from the face carry none
    for j, c in enumerate(np.rint(lay.centers).astype(int)):
        assert lab[c[1], c[0]] == j
    assert lab[0, 0] == -1 and lab[-1, -1] == -1
    # region sizes match the squares (overlaps are small)
    area = np.bincount(lab[lab >= 0].ravel(), minlength=11)
    np.testing.assert_allclose(area, lay.sides**2, rtol=0.3)


def test_bad_inputs(abel):
    img, face = abel
    with pytest.raises(ConfigError, match=r"\(5, 2\)"):
        patch_layout(face.landmarks[:4], img.shape)
    with pytest.raises(ConfigError, match="NaN"):
        patch_layout(np.full((5, 2), np.nan), img.shape)
    with pytest.raises(ConfigError, match="degenerate"):
        patch_layout(np.zeros((5, 2)), img.shape)
    with pytest.raises(ImageError, match="uint8"):
        extract_patches(img.astype(np.float32), face.landmarks)
    with pytest.raises(ConfigError, match="patch_size"):
        extract_patches(img, face.landmarks, patch_size=2)


def test_draw_patches(abel, tmp_path):
    img, face = abel
    fig = draw_patches(img, patch_layout(face.landmarks, img.shape), title="abel")
    fig.savefig(tmp_path / "p.png")
    assert (tmp_path / "p.png").stat().st_size > 5000
