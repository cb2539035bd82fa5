"""Real LFW faces for the LIBF tests: few photos, detections in a session-wide temporary cache."""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from libf_helpers import tiny_encoder  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """One torch thread in these tests: on a shared 2-core machine two threads are several times slower."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def det_cache(tmp_path_factory):
    return tmp_path_factory.mktemp("libf-det") / "detections.sqlite"


@pytest.fixture(scope="session")
def cached_hog(hog, det_cache):
    from xaiface.detect.cache import CachedDetector

    return CachedDetector(hog, det_cache)


@pytest.fixture(scope="session")
def abel(lfw, cached_hog):
    """(photo, detected face) of Abel_Pacheco_0001."""
    from xaiface.io import load_image

    img = load_image(lfw.image_path("Abel_Pacheco", 1))
    return img, cached_hog.detect(img)[0]


@pytest.fixture(scope="session")
def fold0_pairs(lfw):
    """The first 6 genuine and 6 impostor pairs of LFW fold 1."""
    pairs = [p for p in lfw.pairs() if p.fold == 0]
    return [p for p in pairs if p.same][:6] + [p for p in pairs if not p.same][:6]


@pytest.fixture(scope="session")
def small_bank(lfw, fold0_pairs, cached_hog):
    """Patches (dlib-150 crops, 24 px) of the photos of ``fold0_pairs``: dict path -> FacePatches."""
    from xaiface.detect.base import select_faces
    from xaiface.io import load_image
    from xaiface.libf.data import patches_of_face

    out = {}
    for p in fold0_pairs:
        for path in (p.path_a, p.path_b):
            if str(path) in out:
                continue
            img = load_image(path)
            face = select_faces(cached_hog.detect(img), img.shape, "center")[0]
            out[str(path)] = patches_of_face(img, face, 24, "dlib-150")[0]
    return out


@pytest.fixture(scope="session")
def small_ebm(fold0_pairs, small_bank):
    """(encoder, fitted symmetric LIBFVerifier, LIBF a, LIBF b, labels) on the real pairs plus shifted impostors."""
    from xaiface.libf import LIBFVerifier

    enc = tiny_encoder()
    fa = [small_bank[str(p.path_a)] for p in fold0_pairs]
    fb = [small_bank[str(p.path_b)] for p in fold0_pairs]
    la = enc.transform(np.stack([f.pixels for f in fa]), np.stack([f.visible for f in fa]))
    lb = enc.transform(np.stack([f.pixels for f in fb]), np.stack([f.visible for f in fb]))
    y = np.array([p.same for p in fold0_pairs], int)
    # more impostors: each first image against the next pair's second image (different people)
    gen = np.flatnonzero(y == 1)
    xa = np.concatenate([la, la[gen]])
    xb = np.concatenate([lb, lb[np.roll(gen, 1)]])
    yy = np.concatenate([y, np.zeros(len(gen), int)])
    ver = LIBFVerifier("symmetric", interactions=1, outer_bags=1, n_jobs=1, max_rounds=150, embedding_dim=2,
                       min_samples_leaf=2)
    ver.fit(xa, xb, yy)
    return enc, ver, xa, xb, yy
