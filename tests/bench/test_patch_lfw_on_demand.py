"""Patch-LFW generated on demand: a run generates only its pairs, a folder grows without changing
what it already holds or its identity, writes are atomic and locked, older folders still load."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from xaiface.bench import PatchLFW, generate_patch_lfw, run_patch_lfw, select_pairs
from xaiface.bench.patch_lfw import ARRAYS, FORMAT_V1, PINNED_FALLBACK_BOXES, _content_sha256
from xaiface.bench.runner import dataset_dir_for, dataset_embeddings, decision_threshold, run_config
from xaiface.errors import ConfigError, DatasetError, StorageError
from xaiface.io import array_sha256

NO_FACE_PAIR = 72
"""A pair of pairs.txt with a photo where dlib-hog finds no face (George_Galloway_0004)."""


def _photos(ds: PatchLFW, indices) -> set[str]:
    """The photos a generation of ``indices`` must locate: both of each pair and the donors."""
    out = set()
    for q in ds.pairs:
        if q.index in indices:
            out |= {f"{q.name_a}/{q.name_a}_{q.num_a:04d}.jpg", f"{q.name_b}/{q.name_b}_{q.num_b:04d}.jpg", q.donor}
    return out


def _same_arrays(a: PatchLFW, b: PatchLFW, indices) -> None:
    for q in (q for q in a.pairs if q.index in indices):
        for k in ARRAYS[1:]:
            assert np.array_equal(a.fold(q.fold).get(k, q.index), b.fold(q.fold).get(k, q.index)), (q.index, k)


@pytest.fixture(scope="module")
def grown(tmp_path_factory, data_root, lfw):
    """A folder generated for a 20-pair run, then grown to 40 pairs (and a copy of its 20-pair state)."""
    import shutil

    root = tmp_path_factory.mktemp("on-demand") / "ds"
    small = generate_patch_lfw(root, n_pairs=20, data=data_root, progress=False)
    first = root.parent / "first-20"
    shutil.copytree(root, first)
    big = generate_patch_lfw(root, n_pairs=40, data=data_root, progress=False)
    return PatchLFW(first), big


def test_a_small_run_generates_only_its_pairs(grown, lfw):
    small, _ = grown
    want = [q.index for q in select_pairs(lfw.pairs(), 20)]
    assert [q.index for q in small.pairs] == want and not small.complete
    (ext,) = small.manifest["extensions"]
    photos = _photos(small, set(want))
    assert ext["photos"] == len(photos) < 60  # 40 pair photos and 10 donors at most, not LFW's 7,701
    assert ext["detections_computed"] + ext["detections_cached"] == len(photos)


def test_growing_keeps_pairs_and_identity(grown, lfw):
    small, big = grown
    assert big.n_pairs == 40 and [q.index for q in big.pairs] == [q.index for q in select_pairs(lfw.pairs(), 40)]
    assert big.identity == small.identity != big.content_sha256 != small.content_sha256
    _same_arrays(small, big, small.pair_indices)  # the first 20 pairs' arrays, bit for bit
    new = big.pair_indices - small.pair_indices
    assert big.manifest["extensions"][1]["pairs_added"] == 20
    assert big.manifest["extensions"][1]["photos"] == len(_photos(big, new))  # only the new pairs' photos
    assert big.verify() == big.content_sha256
    again = generate_patch_lfw(big.root, n_pairs=20, progress=False)  # all there: nothing generated
    assert len(again.manifest["extensions"]) == 2 and again.content_sha256 == big.content_sha256


def test_a_subset_equals_a_larger_generation(small_ds, tmp_path, data_root):
    parts = generate_patch_lfw(tmp_path / "parts", pair_indices=[0, 300], data=data_root, progress=False)
    parts = generate_patch_lfw(parts.root, pair_indices=[1, 2, 301, 302], data=data_root, progress=False)
    assert parts.identity == small_ds.identity  # one recipe
    _same_arrays(small_ds, parts, small_ds.pair_indices)
    assert [q.to_dict() for q in parts.pairs] == [q.to_dict() for q in small_ds.pairs]


def test_a_photo_without_a_face_takes_the_fixed_box(tmp_path, data_root):
    alone = generate_patch_lfw(tmp_path / "alone", pair_indices=[NO_FACE_PAIR], data=data_root, progress=False)
    assert alone.manifest["faces"]["no_face"]  # the premise: this pair has such a photo
    assert alone.manifest["faces"]["fallback_box"] == list(PINNED_FALLBACK_BOXES[("dlib-hog", "center")])
    # with other photos the run's median would differ; the fixed box does not
    with_others = generate_patch_lfw(tmp_path / "others", pair_indices=[NO_FACE_PAIR, 3, 4, 303], data=data_root,
                                     progress=False)
    _same_arrays(alone, with_others, {NO_FACE_PAIR})


def test_an_interrupted_extension_leaves_the_folder_as_it_was(tmp_path, data_root, monkeypatch):
    import xaiface.bench.patch_lfw as plfw

    root = tmp_path / "ds"
    before = generate_patch_lfw(root, pair_indices=[0, 300], data=data_root, progress=False)
    real = plfw._write_manifest

    def killed(*a, **k):
        raise KeyboardInterrupt  # after the new chunks were written, before the manifest

    monkeypatch.setattr(plfw, "_write_manifest", killed)
    with pytest.raises(KeyboardInterrupt):
        generate_patch_lfw(root, pair_indices=[0, 1, 300], data=data_root, progress=False)
    orphans = {p.name for p in root.glob("fold-*.npz")} - {c.file for c in before.chunks}
    assert orphans  # a chunk of the interrupted extension, unknown to the manifest
    now = PatchLFW(root)
    assert now.n_pairs == 2 and now.content_sha256 == before.content_sha256 and now.verify() == before.content_sha256
    monkeypatch.setattr(plfw, "_write_manifest", real)
    done = generate_patch_lfw(root, pair_indices=[0, 1, 300], data=data_root, progress=False)
    assert done.n_pairs == 3 and done.verify() == done.content_sha256
    assert {p.name for p in root.glob("fold-*.npz")} == {c.file for c in done.chunks}  # the orphan is gone


def test_one_writer_at_a_time_and_one_recipe_per_folder(small_ds, tmp_path, data_root):
    import shutil

    from xaiface.io.files import folder_lock

    root = tmp_path / "ds"
    shutil.copytree(small_ds.root, root)
    with folder_lock(root, "test", name=".lock", announce=False):
        with pytest.raises(StorageError, match=r"another process is writing the Patch-LFW folder"):
            generate_patch_lfw(root, pair_indices=[3], data=data_root, progress=False, lock_timeout=0.3)
    assert PatchLFW(root).n_pairs == 6
    generate_patch_lfw(root, pair_indices=[0], data=data_root, progress=False, lock_timeout=0.3)  # held by no one now
    with pytest.raises(ConfigError, match="another recipe .*seed"):
        generate_patch_lfw(root, pair_indices=[3], seed=1, data=data_root, progress=False)


def _as_older_format(ds: PatchLFW, root) -> PatchLFW:
    """``ds`` rewritten as an ``xaiface-patch-lfw/1`` folder (one chunk per fold, content hash identity)."""
    root.mkdir()
    params = {k: ds.params[k] for k in ("geometry", "size", "patch_size", "n_patches", "seed", "detector", "select")}
    params["format"] = FORMAT_V1
    chunks = {}
    for f in ds.folds:
        name = f"fold-{f + 1:02d}.npz"
        np.savez_compressed(root / name, **ds.fold(f).arrays)
        chunks[str(f)] = {"file": name, "sha256": {k: array_sha256(v) for k, v in ds.fold(f).arrays.items()}}
    manifest = {"params": params, "content_sha256": _content_sha256(params, [(f, c["sha256"]) for f, c in chunks.items()]),
                "n_pairs": ds.n_pairs, "chunks": chunks, "faces": ds.manifest["faces"],
                "mean_coverage": ds.manifest["mean_coverage"], "pairs": ds.manifest["pairs"]}
    (root / "manifest.json").write_text(json.dumps(manifest))
    return PatchLFW(root)


def test_older_format_folders_keep_their_identity_and_threshold_rule(small_ds, tmp_path, dlib_model):
    old = _as_older_format(small_ds, tmp_path / "old")
    assert old.format == FORMAT_V1 and old.identity == old.content_sha256 == old.verify()
    _same_arrays(small_ds, old, small_ds.pair_indices)
    cfg = run_config("random", {}, dlib_model, old, 0.5, "bound", False, [5], [5])
    assert cfg["dataset_sha256"] == old.content_sha256
    assert decision_threshold(old, dlib_model) == (None, "clean EER (xaiface.verify.eer)")  # its pairs' own EER, as before
    with pytest.raises(ConfigError, match="older-format .* cannot be extended"):
        generate_patch_lfw(old.root, pair_indices=[3], progress=False)


def test_partial_folders_use_the_calibrated_threshold(small_ds, dlib_model, monkeypatch):
    value, source = decision_threshold(small_ds, dlib_model)
    assert value == dlib_model.spec.threshold("eer", flip=False) and "calibrated" in source
    assert decision_threshold(small_ds, dlib_model, 0.5) == (0.5, "user")
    monkeypatch.setattr(dlib_model, "spec", dataclasses.replace(dlib_model.spec, thresholds={}))
    with pytest.raises(ConfigError, match="6 of the 6000 pairs.*--threshold"):
        decision_threshold(small_ds, dlib_model)


def test_a_run_grows_the_default_folder_and_embeds_only_new_pairs(tmp_path, dlib_model, data_root, monkeypatch):
    out = tmp_path / "bench"
    done: list[int] = []
    s20 = run_patch_lfw(out, methods=["random"], model=dlib_model, n_pairs=20, data=data_root, progress=False,
                        write=False, on_pair=lambda m, q: done.append(q))
    ds_dir = dataset_dir_for(out, "dlib-150")
    assert PatchLFW(ds_dir).n_pairs == 20 and len(done) == 20
    t = s20["table1"]
    assert t["n_pairs"] == 20 and t["threshold"] == dlib_model.spec.threshold("eer") and "partial" in t["scope"]
    (emb_file,) = out.glob("embeddings-*.npz")
    e20 = dict(np.load(emb_file))

    embedded: list[int] = []
    real = dlib_model.embed
    monkeypatch.setattr(dlib_model, "embed",  # images embedded, not the black padding of the last batch
                        lambda x, **k: (embedded.append(int(x.reshape(len(x), -1).any(axis=1).sum())), real(x, **k))[1])
    s40 = run_patch_lfw(out, methods=[], model=dlib_model, n_pairs=40, data=data_root, progress=False, write=False)
    assert s40["table1"]["n_pairs"] == 40 and s40["dataset"]["identity"] == s20["dataset"]["identity"]
    grown = PatchLFW(ds_dir)
    new_pairs = [q for q in grown.pairs if q.index not in set(e20["pair_index"].tolist())]
    new_photos = {(n, k) for q in new_pairs for n, k in ((q.name_a, q.num_a), (q.name_b, q.num_b))}
    old_photos = {(n, k) for q in grown.pairs if q not in new_pairs for n, k in ((q.name_a, q.num_a), (q.name_b, q.num_b))}
    assert sum(embedded) == len(new_pairs) + len(new_photos - old_photos) == 20 + len(new_photos - old_photos)
    assert [p.name for p in out.glob("embeddings-*.npz")] == [emb_file.name]  # one file, grown
    e40 = dict(np.load(emb_file))
    keep = np.isin(e40["pair_index"], e20["pair_index"])
    monkeypatch.setattr(dlib_model, "embed", real)
    one_shot = dataset_embeddings(grown, dlib_model, tmp_path / "one-shot", progress=False)
    for k in ("pair_index", "same", "e_a", "e_b", "e_patched"):
        assert np.array_equal(e40[k][keep], e20[k])
        assert np.array_equal(e40[k], one_shot[k])  # as if embedded at once: the growth leaves no trace
    done.clear()
    again = run_patch_lfw(out, methods=["random"], model=dlib_model, n_pairs=20, data=data_root, progress=False,
                          write=False, on_pair=lambda m, q: done.append(q))
    assert not done and again["run_keys"] == s20["run_keys"]  # same run key after the folder grew


def test_explicit_folders_are_not_extended(small_ds, tmp_path, dlib_model):
    with pytest.raises(DatasetError, match="no Patch-LFW there"):
        run_patch_lfw(tmp_path / "o", methods=[], model=dlib_model, dataset=tmp_path / "none", progress=False)
    s = run_patch_lfw(tmp_path / "o", methods=[], model=dlib_model, dataset=small_ds.root, progress=False, write=False)
    assert s["table1"]["n_pairs"] == small_ds.n_pairs == PatchLFW(small_ds.root).n_pairs
