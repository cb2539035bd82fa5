"""Stored benchmark results and cached embeddings are verified on read: damage is recomputed, never used."""
from __future__ import annotations

import sqlite3
import warnings

import numpy as np
import pytest

from xaiface.bench import ResultStore, run_patch_lfw


@pytest.fixture(scope="module")
def first_run(small_ds, dlib_model, tmp_path_factory):
    out = tmp_path_factory.mktemp("bench-integrity")
    s = run_patch_lfw(out, methods=["random"], model=dlib_model, dataset=small_ds.root, n_pairs=2, progress=False,
                      write=False)
    with ResultStore(out / "results.sqlite") as st:
        rows = {r.pair: r.outcome() for r in st.results(s["run_keys"]["random"])}
    return out, s, rows


def test_edited_digit_in_a_stored_dpr_array_is_recomputed(first_run, small_ds, dlib_model):
    out, s, rows = first_run
    key = s["run_keys"]["random"]
    pair = min(rows)
    con = sqlite3.connect(out / "results.sqlite")
    (dpr,) = con.execute("SELECT dpr FROM pairs WHERE run_key=? AND pair=?", (key, pair)).fetchone()
    i = next(k for k, c in enumerate(dpr) if c in "12345678")
    edited = dpr[:i] + str(int(dpr[i]) % 9 + 1) + dpr[i + 1:]  # one digit changed
    with con:
        con.execute("UPDATE pairs SET dpr=? WHERE run_key=? AND pair=?", (edited, key, pair))
    con.close()
    recomputed = []
    with pytest.warns(UserWarning, match="checksum"):
        again = run_patch_lfw(out, methods=["random"], model=dlib_model, dataset=small_ds.root, n_pairs=2,
                              progress=False, write=False, on_pair=lambda m, q: recomputed.append(q))
    assert recomputed == [pair]  # only the damaged row
    with ResultStore(out / "results.sqlite") as st:
        now = {r.pair: r.outcome() for r in st.results(key)}
    assert now[pair]["dpr"] == pytest.approx(rows[pair]["dpr"], abs=1e-6)  # the computed values, not the edit
    for k in ("auc_fmr", "auc_fnmr"):
        assert again["methods"]["random"]["dpr"][k] == pytest.approx(s["methods"]["random"]["dpr"][k], abs=1e-6)


@pytest.mark.parametrize("damage", ["garbage", "truncated", "wrong-shape"])
def test_damaged_cached_embeddings_are_recomputed(first_run, small_ds, dlib_model, tmp_path, damage):
    out, s, _ = first_run
    (src,) = out.glob("embeddings-*.npz")
    bad = tmp_path / src.name
    if damage == "garbage":
        bad.write_bytes(b"this is not an npz file")
    elif damage == "truncated":
        bad.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    else:
        with np.load(src) as z:
            arrays = {k: z[k] for k in z.files}
        arrays["e_a"] = arrays["e_a"][:, :64]
        np.savez(bad, **arrays)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = run_patch_lfw(tmp_path, methods=[], model=dlib_model, dataset=small_ds.root, progress=False,
                          write=False)["table1"]
    assert t["threshold"] == pytest.approx(s["table1"]["threshold"], abs=1e-6)
    assert t["patched_fmr"] == s["table1"]["patched_fmr"] and t["clean_eer"] == s["table1"]["clean_eer"]
    with np.load(bad) as z:  # replaced by a complete file
        assert z["e_a"].shape == (6, 128)


def test_store_without_checksums_is_migrated(first_run, tmp_path):
    out, s, rows = first_run
    old = tmp_path / "old.sqlite"
    src = sqlite3.connect(out / "results.sqlite")
    src.backup(dst := sqlite3.connect(old))
    src.close()
    with dst:  # as a store written before checksums
        dst.execute("ALTER TABLE pairs DROP COLUMN checksum")
    dst.close()
    with ResultStore(old) as st:
        got = {r.pair: r.outcome() for r in st.results(s["run_keys"]["random"])}
    assert got == rows
