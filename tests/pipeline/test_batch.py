"""The batch face stage: one face per photo, one fallback, one failure policy, mirror-averaging, the store."""
from __future__ import annotations

import numpy as np
import pytest

from xaiface.detect.fallback import median_box
from xaiface.errors import ConfigError, DatasetError
from xaiface.io import load_image
from xaiface.pipeline.batch import embed_faces, locate_faces, locate_in_image, mirror_average
from xaiface.pipeline.store import ResultStore

NO_FACE = ("Saeb_Erekat", 2)  # dlib's HOG detector finds no face in this LFW photo
WITH_FACES = (("Abel_Pacheco", 1), ("Abel_Pacheco", 4), ("George_W_Bush", 1))


@pytest.fixture(scope="module")
def photos(lfw):
    return [str(lfw.image_path(n, k)) for n, k in WITH_FACES], str(lfw.image_path(*NO_FACE))


def test_photo_without_detection_takes_the_median_box_and_unreadable_ones_are_recorded(photos, tmp_path):
    detected, no_face = photos
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not an image")
    run = locate_faces([*detected, no_face, str(bad)], cache=tmp_path / "det.sqlite", progress=False)
    assert list(run.faces) == [*detected, no_face]  # input order, the unreadable photo left out
    assert set(run.errors) == {str(bad)} and "not a recognised image" in run.errors[str(bad)]
    assert run.no_face == [no_face] and "median box" in run.fallback[no_face]
    np.testing.assert_array_equal(run.fallback_box, median_box([run.faces[p] for p in detected]))
    face = run.faces[no_face]
    assert face.fallback and np.array_equal(face.box, run.fallback_box)
    assert not any(run.faces[p].fallback for p in detected)
    with pytest.raises(DatasetError, match="unreadable LFW images: .*broken.jpg"):
        run.require_all("LFW images")
    other = run.reselect("largest")  # another choice among detections; the fallback face is kept
    assert other.faces[no_face] is face and other.fallback == run.fallback


def test_whole_photo_fallback_and_one_photo_in_memory(photos, hog):
    _, no_face = photos
    run = locate_faces([no_face], fallback="image", cache=False, progress=False)
    h, w = load_image(no_face).shape[:2]
    np.testing.assert_array_equal(run.faces[no_face].box, [0, 0, w, h])
    assert "whole photo" in run.fallback[no_face] and run.fallback_box is None
    one = locate_in_image(load_image(no_face), hog, fallback_box=[67.0, 80.0, 176.0, 188.0])
    assert not one.detected and one.face.fallback
    np.testing.assert_array_equal(one.face.box, [67, 80, 176, 188])
    with pytest.raises(ConfigError, match="fallback must be one of"):
        locate_faces([no_face], fallback="nearest", progress=False)


def test_mirror_average_rows_and_single_vectors():
    rng = np.random.default_rng(0)
    p, m = rng.normal(size=(5, 128)).astype(np.float32), rng.normal(size=(5, 128)).astype(np.float32)
    rows = mirror_average(p, m)
    assert rows.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-6)  # float32 rounding of 128 terms
    s = p[0] + m[0]
    assert np.array_equal(mirror_average(p[0], m[0]), s / np.linalg.norm(s))
    np.testing.assert_allclose(mirror_average(p[0], m[0]), rows[0], atol=1e-7)


def test_embeddings_are_stored_and_reused(photos, dlib_model, tmp_path):
    detected, _ = photos
    run = locate_faces(detected, cache=False, progress=False)
    fresh = embed_faces(dlib_model, run.faces, store=False, progress=False)
    store = ResultStore(tmp_path / "store.sqlite")
    first = embed_faces(dlib_model, run.faces, store=store, progress=False)
    hits = store.hits
    again = embed_faces(dlib_model, run.faces, store=store, progress=False)
    assert store.hits - hits == len(detected)  # the second run computed nothing
    for e in (first, again):
        assert all(np.array_equal(e.plain[p], fresh.plain[p]) and np.array_equal(e.mirrored[p], fresh.mirrored[p])
                   for p in detected)
    v = fresh.vectors(detected, flip=True)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-6)
    assert float(v[0] @ v[1]) > float(v[0] @ v[2])  # two photos of Abel Pacheco beat one of George W. Bush
    assert np.array_equal(fresh.vectors(detected, flip=False), np.stack([fresh.plain[p] for p in detected]))
