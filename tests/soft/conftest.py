"""Fixtures of the soft-biometrics tests: an isolated cache, real faces, a small body-mass model."""
from __future__ import annotations

import pytest
from soft_helpers import LABELLED_FACES


@pytest.fixture(scope="module", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Each module gets its own empty cache folder (detections, traits, embeddings, models)."""
    mp = pytest.MonkeyPatch()
    mp.setenv("XAIFACE_CACHE", str(tmp_path_factory.mktemp("xaiface-cache")))
    yield
    mp.undo()


@pytest.fixture(scope="session")
def real_faces(lfw, hog):
    """name -> (photo, the detected face nearest the centre) for :data:`LABELLED_FACES`."""
    from xaiface.detect.base import select_faces
    from xaiface.io import load_image

    out = {}
    for name in LABELLED_FACES:
        person, num = name.rsplit("_", 1)
        photo = load_image(lfw.image_path(person, int(num.split(".")[0])))
        out[name] = (photo, select_faces(hog.detect(photo), photo.shape, "center")[0])
    return out


@pytest.fixture(scope="session")
def small_body_mass_model(tmp_path_factory, data_root, dlib_model):
    """A body-mass regressor fitted on 16 VIP_attribute faces (8 per gender), saved to a file."""
    from xaiface.soft.body_mass import TARGETS, BodyMassRegressor, vip_embeddings

    d = vip_embeddings(data_root, dlib_model, subset=16, progress=False)
    reg = BodyMassRegressor(TARGETS, optimize_on=16).fit(d["X"], {t: d[t] for t in TARGETS})
    path = tmp_path_factory.mktemp("bm") / "body-mass.npz"
    reg.save(path)
    return path, d
