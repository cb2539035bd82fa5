"""The reference's generator rules (``reference_rules=True``): its seed-3 stream per class, replayed
for any subset, and its in-place patching (a donor patched earlier is used patched)."""
from __future__ import annotations

import numpy as np
import pytest

from xaiface.bench import generate_patch_lfw, pair_slots, reference_plans
from xaiface.bench.patch_lfw import PINNED_FALLBACK_BOXES
from xaiface.bench.runner import dataset_dir_for

S, P = 150, 21


@pytest.fixture(scope="module")
def plans(lfw):
    return reference_plans(lfw.pairs(), S, P)


@pytest.fixture(scope="module")
def chained(plans):
    """The first genuine pair whose donor is the patched first image of an earlier genuine pair."""
    return next(i for i in sorted(plans) if plans[i].donor_pair is not None)


def _transcribe_draws(pairs):
    """The reference's two loops, on NumPy's global generator as ``patches/patch.py`` uses it:
    pair index -> (rows, cols, donor slot or None)."""
    slots = pair_slots(pairs)
    own: dict[str, list[int]] = {}
    for i, (name, _) in enumerate(slots):
        own.setdefault(name, []).append(i)
    out = {}
    state = np.random.get_state()
    try:
        for same in (False, True):
            np.random.seed(3)
            for q in [q for q in pairs if q.same == same]:
                cols = np.random.randint(0, S - P, 27)
                rows = np.random.randint(P, S, 27)
                donor = None
                if same:
                    donor = int(np.random.choice(np.delete(np.arange(len(slots)), own[q.name_a]), 1)[0])
                out[q.index] = (rows, cols, donor)
    finally:
        np.random.set_state(state)
    return out


def test_the_replayed_stream_is_the_reference_loops(lfw, plans):
    pairs = lfw.pairs()
    slots = pair_slots(pairs)
    want = _transcribe_draws(pairs)
    assert sorted(want) == sorted(plans) == list(range(6000))
    for i, (rows, cols, donor) in want.items():
        pl = plans[i]
        assert np.array_equal(pl.rows, rows) and np.array_equal(pl.cols, cols), i
        if donor is None:
            assert (pl.donor_name, pl.donor_path) == (pairs[i].name_b, pairs[i].path_b)
        else:
            assert (pl.donor_name, pl.donor_path) == slots[donor] and pl.donor_name != pairs[i].name_a
    # the first pair of each class starts the same seed-3 stream
    assert np.array_equal(plans[0].rows, plans[300].rows) and np.array_equal(plans[0].cols, plans[300].cols)


def test_in_place_patching_as_a_sequential_transcription(lfw, plans, chained, tmp_path, data_root):
    """Pairs patched in order on one dict of images, written in place, as the reference does; every
    genuine pair up to the first chained one, compared with a generation of only that pair."""
    from xaiface.pipeline.batch import align_faces, locate_faces

    pairs = lfw.pairs()
    slots = pair_slots(pairs)
    draws = _transcribe_draws(pairs)
    genuine = [q for q in pairs if q.same and q.index <= chained]
    used = {2 * q.index for q in genuine} | {draws[q.index][2] for q in genuine}
    photos = sorted({str(slots[s][1]) for s in used})
    faces = locate_faces(photos, fallback_box=PINNED_FALLBACK_BOXES[("dlib-hog", "center")], progress=False)
    crops = align_faces(faces.faces, "dlib-150", progress=False)
    imgs = {s: crops[str(slots[s][1])].copy() for s in used}  # one image per slot, as the reference's dict
    for q in genuine:
        rows, cols, donor = draws[q.index]
        for r, c in zip(rows, cols):
            imgs[2 * q.index][r - P:r, c:c + P] = imgs[donor][r - P:r, c:c + P]
    ds = generate_patch_lfw(tmp_path / "ref", pair_indices=[chained, 0], reference_rules=True, data=data_root,
                            progress=False)
    assert ds.reference_rules and ds.params["seed"] == 3
    for i in (chained, 0):
        assert np.array_equal(ds.fold(pairs[i].fold).get("patched", i), imgs[2 * i]), i


def test_a_donor_patched_earlier_is_used_patched_whatever_the_subset(lfw, plans, chained, tmp_path, data_root):
    pairs = lfw.pairs()
    j = plans[chained].donor_pair
    alone = generate_patch_lfw(tmp_path / "alone", pair_indices=[chained], reference_rules=True, data=data_root,
                               progress=False)
    both = generate_patch_lfw(tmp_path / "both", pair_indices=[j, chained], reference_rules=True, data=data_root,
                              progress=False)
    (q,) = alone.pairs
    assert q.donor_pair == j and q.donor == f"{pairs[j].name_a}/{pairs[j].name_a}_{pairs[j].num_a:04d}.jpg"
    f, g = pairs[chained].fold, pairs[j].fold
    patched, mask = alone.fold(f).get("patched", chained), alone.fold(f).get("mask", chained)
    assert np.array_equal(patched, both.fold(f).get("patched", chained))  # a subset replays the same pixels
    donor_patched, donor_clean = both.fold(g).get("patched", j), both.fold(g).get("clean_a", j)
    assert np.array_equal(patched[mask], donor_patched[mask])
    assert not np.array_equal(patched[mask], donor_clean[mask])  # the clean donor would give other pixels
    assert alone.identity == both.identity  # one recipe


def test_reference_rules_have_their_own_recipe_and_folder(small_ds, tmp_path, data_root):
    assert dataset_dir_for(tmp_path, "dlib-150", reference_rules=True).name == "patch-lfw-dlib-150-reference"
    assert dataset_dir_for(tmp_path, "dlib-150").name == "patch-lfw-dlib-150"
    ref = generate_patch_lfw(tmp_path / "r", pair_indices=[0], reference_rules=True, data=data_root, progress=False)
    assert ref.identity != small_ds.identity and ref.params["rules"] == "reference"
    assert not np.array_equal(ref.fold(0).get("mask", 0), small_ds.fold(0).get("mask", 0))
