"""`xaiface bench status`: what a benchmark folder holds, read without writing; damaged stores refused."""
from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3

import pytest

from xaiface.bench import PairResult, ResultStore, bench_status, run_patch_lfw, subset_pairs
from xaiface.cli import main
from xaiface.errors import StorageError


@pytest.fixture(scope="module")
def bench(small_ds, dlib_model, tmp_path_factory):
    """A benchmark folder with the small data set inside, a default and a reference-rules random run."""
    out = tmp_path_factory.mktemp("status") / "bench"
    out.mkdir()
    ds = out / "patch-lfw-dlib-150"
    ds.symlink_to(small_ds.root)
    keys = {}
    for ref in (False, True):
        s = run_patch_lfw(out, methods=["random"], model=dlib_model, dataset=ds, n_pairs=4, progress=False, write=False,
                          reference_rules=ref)
        keys[ref] = s["run_keys"]["random"]
    return out, keys


def _sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_standard_subsets_are_the_runs_selections():
    assert [len(subset_pairs(n)) for n in (6000, 1200, 600, 300, 100)] == [6000, 1200, 600, 300, 100]
    s100 = subset_pairs(100)  # per fold the first 5 genuine and the first 5 impostor pairs
    assert sorted(i for i in s100 if i < 600) == [0, 1, 2, 3, 4, 300, 301, 302, 303, 304]
    assert subset_pairs(100) <= subset_pairs(300) <= subset_pairs(600) <= subset_pairs(1200)


def test_status_of_a_small_run(bench, small_ds):
    out, keys = bench
    before = _sha(out / "results.sqlite")
    st = bench_status(out)
    assert _sha(out / "results.sqlite") == before  # read only
    (d,) = st.datasets
    assert d.error is None and d.pairs == 6 and d.identity == small_ds.identity and d.geometry == "dlib-150"
    assert [(s.pairs, s.finished) for s in d.subsets] == [(6000, 6), (1200, 6), (600, 6), (300, 6), (100, 6)]
    (e,) = st.embeddings
    assert e.error is None and e.pairs == 6
    runs = {r.run_key: r for r in st.runs}
    assert set(runs) == set(keys.values())
    default, ref = runs[keys[False]], runs[keys[True]]
    assert default.settings["params"] == {"seed": 0} and "reference_rules" not in default.settings
    assert ref.settings["reference_rules"] is True and ref.settings["params"] == {"seed": 3, "reference": True}
    for r in (default, ref):
        assert (r.method, r.model, r.finished, r.failed, r.damaged) == ("random", "dlib-resnet", 4, 0, 0)
        assert r.dataset == str(out / "patch-lfw-dlib-150") and r.embeddings is not None
        sub = {s.pairs: s for s in r.subsets}
        assert (sub[100].needed, sub[100].done, sub[100].complete) == (100, 4, False)
        assert (sub[6000].needed, sub[6000].done) == (6000, 4)
    text = st.text()
    assert f"run {keys[True]}  random  dlib-resnet" in text and "reference_rules True" in text
    assert "100: 4/100" in text and "data set patch-lfw-dlib-150: 6 pairs in folds 1" in text
    assert any("5996 of the 6000 pairs" in m for m in st.missing())


def test_failed_and_damaged_rows_are_reported_not_dropped(bench, tmp_path):
    out, keys = bench
    copy = tmp_path / "copy"
    shutil.copytree(out, copy, symlinks=True)
    with ResultStore(copy / "results.sqlite") as s:
        s.put(keys[False], PairResult(2, 0, True, error="NumericalError: test"))
    con = sqlite3.connect(copy / "results.sqlite")
    with con:
        con.execute("UPDATE pairs SET score_clean = score_clean + 1e-9 WHERE run_key = ? AND pair = 0", (keys[False],))
    con.close()
    r = {x.run_key: x for x in bench_status(copy).runs}[keys[False]]
    assert (r.finished, r.failed, r.damaged) == (3, 1, 1)
    # pairs 1, 300, 301 finished, 2 failed; 0 damaged counts as missing (recomputed on the next run)
    assert {s.pairs: (s.finished, s.failed, s.done) for s in r.subsets}[100] == (3, 1, 4)
    con = sqlite3.connect(copy / "results.sqlite")
    assert con.execute("SELECT COUNT(*) FROM pairs WHERE run_key = ?", (keys[False],)).fetchone() == (5,)  # kept
    con.close()


def test_cli_text_and_json(bench, capsys):
    out, keys = bench
    assert main(["bench", "status", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"benchmark folder {out}") and "results.sqlite: 2 run(s)" in text
    assert main(["bench", "status", str(out), "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert {r["run_key"] for r in d["runs"]} == set(keys.values())
    assert d["runs"][0]["subsets"][-1] == {"pairs": 100, "needed": 100, "finished": 4, "failed": 0, "done": 4,
                                           "complete": False}


@pytest.mark.parametrize("damage", ["text", "truncated", "missing", "foreign"])
def test_missing_or_damaged_store_is_one_clear_line(bench, tmp_path, capsys, damage):
    out, _ = bench
    folder = tmp_path / "b"
    shutil.copytree(out, folder, symlinks=True)
    db = folder / "results.sqlite"
    if damage == "text":
        db.write_text("not a database\n" * 100)
    elif damage == "truncated":
        db.write_bytes(db.read_bytes()[:3000])
    elif damage == "missing":
        db.unlink()
    else:
        db.unlink()
        con = sqlite3.connect(db)
        con.execute("CREATE TABLE other (x)")
        con.close()
    with pytest.raises(StorageError, match="results.sqlite"):
        bench_status(folder)
    assert main(["bench", "status", str(folder)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "results.sqlite" in err and err.startswith("xaiface: error:")
    assert main(["bench", "status", str(tmp_path / "nowhere")]) == 1
    assert "no such benchmark folder" in capsys.readouterr().err
