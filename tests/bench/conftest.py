"""A small real Patch-LFW (3 genuine + 3 impostor pairs of fold 1, dlib-150 crops), generated once."""
from __future__ import annotations

import pytest

SMALL_PAIRS = (0, 1, 2, 300, 301, 302)


@pytest.fixture(scope="session")
def small_ds(tmp_path_factory, data_root):
    from xaiface.bench import generate_patch_lfw

    return generate_patch_lfw(tmp_path_factory.mktemp("plfw") / "ds", pair_indices=SMALL_PAIRS, data=data_root,
                              progress=False)


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """One intra-op thread for these tests, restored afterwards: on a shared 2-core machine the
    second thread's spin-waits made the small forwards here 5x slower (results do not depend on it)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
