"""The Patch-LFW generator: geometry of the patches, where their pixels come from, determinism."""
from __future__ import annotations

import numpy as np
import pytest

from xaiface.bench import (
    N_PATCHES, PatchLFW, generate_patch_lfw, pair_slots, patch_plan, patch_positions, patch_size_for, plant_patches,
    select_pairs,
)
from xaiface.pipeline.batch import align_faces, locate_faces
from xaiface.errors import ConfigError, DatasetError


def test_patch_size_scales_the_reference():
    assert patch_size_for(112) == 16 and patch_size_for(150) == 21 and patch_size_for(224) == 32


def test_positions_follow_the_reference_ranges():
    rng = np.random.default_rng(0)
    rows, cols = patch_positions(rng, 112, 16, 20000)
    # numpy randint(0, 96) and randint(16, 112): both ends reached, upper bound exclusive
    assert cols.min() == 0 and cols.max() == 95 and rows.min() == 16 and rows.max() == 111


def test_plant_patches_copies_the_same_coordinates():
    target = np.zeros((10, 10, 3), np.uint8)
    source = np.arange(300, dtype=np.uint8).reshape(10, 10, 3)
    patched, mask = plant_patches(target, source, rows=[3, 10], cols=[0, 7], patch_size=3)
    want = np.zeros((10, 10), bool)
    want[0:3, 0:3] = True
    want[7:10, 7:10] = True
    assert np.array_equal(mask, want)
    assert np.array_equal(patched[mask], source[mask]) and not patched[~mask].any()
    with pytest.raises(ConfigError):
        plant_patches(target, source, rows=[2], cols=[0], patch_size=3)  # would start above the crop


@pytest.mark.parametrize("size", [112, 150])
def test_coverage_is_about_forty_percent(size):
    p = patch_size_for(size)
    rng = np.random.default_rng(1)
    img = np.zeros((size, size, 1), np.uint8)
    cov = [plant_patches(img, img, *patch_positions(rng, size, p), p)[1].mean() for _ in range(400)]
    assert 0.37 < np.mean(cov) < 0.43


def test_genuine_donors_are_always_other_people(lfw):
    pairs = lfw.pairs()
    slots = pair_slots(pairs)
    for q in pairs:
        rows, cols, name, path = patch_plan(q, 0, 150, 21, N_PATCHES, slots)
        if q.same:
            assert name != q.name_a and name in path.name
        else:
            assert (name, path) == (q.name_b, q.path_b)


def test_generated_pairs_are_correct(small_ds, data_root):
    ds = small_ds
    assert ds.n_pairs == 6 and ds.size == 150 and ds.patch_size == 21 and ds.geometry == "dlib-150"
    donor_paths = [str(data_root / "lfw" / "images" / q.donor) for q in ds.pairs]
    donors = align_faces(locate_faces(donor_paths, progress=False).faces, "dlib-150", progress=False)
    fold = ds.fold(0)
    for q in ds.pairs:
        patched, clean_a, clean_b, mask = (fold.get(k, q.index) for k in ("patched", "clean_a", "clean_b", "mask"))
        assert len(q.rows) == len(q.cols) == 27
        _, want_mask = plant_patches(clean_a, clean_a, q.rows, q.cols, 21)
        assert np.array_equal(mask, want_mask)
        donor = donors[str(data_root / "lfw" / "images" / q.donor)]
        assert np.array_equal(patched[mask], donor[mask])  # the source's pixels at the same coordinates
        assert np.array_equal(patched[~mask], clean_a[~mask])  # untouched elsewhere
        assert 0.25 < q.coverage < 0.55 and q.coverage == pytest.approx(mask.mean())
        if q.same:
            assert q.donor_name != q.name_a
        else:
            assert q.donor == f"{q.name_b}/{q.name_b}_{q.num_b:04d}.jpg" and np.array_equal(donor, clean_b)
    assert ds.verify() == ds.content_sha256


def test_generation_is_deterministic_and_subsets_agree(small_ds, tmp_path, data_root):
    again = generate_patch_lfw(tmp_path / "again", pair_indices=[0, 300], data=data_root, progress=False)
    other = generate_patch_lfw(tmp_path / "seed1", pair_indices=[0, 300], seed=1, data=data_root, progress=False)
    a, b = small_ds.fold(0), again.fold(0)
    for i in (0, 300):
        for k in ("patched", "mask", "clean_a", "clean_b"):
            assert np.array_equal(a.get(k, i), b.get(k, i))
        assert not np.array_equal(other.fold(0).get("mask", i), a.get("mask", i))
    assert again.verify() == again.content_sha256 != other.content_sha256


def test_tampered_chunk_fails_verification(small_ds, tmp_path):
    import shutil

    root = tmp_path / "copy"
    shutil.copytree(small_ds.root, root)
    ds = PatchLFW(root)
    arrays = dict(ds.fold(0).arrays)
    arrays["patched"] = arrays["patched"].copy()
    arrays["patched"][0, 0, 0, 0] ^= 1
    (chunk,) = ds.chunks
    np.savez_compressed(root / chunk.file, **arrays)
    with pytest.raises(DatasetError, match="differ"):
        PatchLFW(root).verify()
    with pytest.raises(DatasetError, match=f"{chunk.file}: arrays \\['patched'\\] differ"):
        PatchLFW(root).fold(0)  # checked on every read, not only by verify()
    (root / chunk.file).write_bytes(b"not an npz")
    with pytest.raises(DatasetError, match=f"{chunk.file}: unreadable Patch-LFW chunk"):
        PatchLFW(root).fold(0)
    with pytest.raises(DatasetError, match="no Patch-LFW manifest"):
        PatchLFW(tmp_path / "nothing")


def test_select_pairs_is_balanced_per_fold(lfw):
    pairs = lfw.pairs()
    sel = select_pairs(pairs, 600)
    assert len(sel) == 600
    for f in range(10):
        got = [q for q in sel if q.fold == f]
        assert sum(q.same for q in got) == 30 and sum(not q.same for q in got) == 30
        assert [q.index for q in got if q.same] == list(range(600 * f, 600 * f + 30))
    two = select_pairs(pairs, 300, folds=[0, 1])
    assert len(two) == 300 and {q.fold for q in two} == {0, 1}
    with pytest.raises(ConfigError):
        select_pairs(pairs, 10)
    with pytest.raises(ConfigError):
        select_pairs(pairs, 20, folds=[12])
