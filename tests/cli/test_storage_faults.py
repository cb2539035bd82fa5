"""Storage and output faults on the command line: one line naming the path and the cause, exit 1,
nothing computed lost; unreadable image-named files are listed as failures."""
from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from xaiface.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(err: str, *parts: str) -> None:
    lines = [ln for ln in err.splitlines() if ln.strip() and "warning" not in ln]
    assert len(lines) == 1 and lines[0].startswith("xaiface: error: "), err
    assert "Traceback" not in err
    for p in parts:
        assert p in lines[0], (p, lines[0])


@pytest.fixture()
def photos(tmp_path, lfw):
    folder = tmp_path / "photos"
    folder.mkdir()
    for n in (1, 4):
        shutil.copy(lfw.image_path("Abel_Pacheco", n), folder / f"a{n}.jpg")
    return folder


@pytest.fixture()
def text_file(tmp_path):
    p = tmp_path / "notes.txt"
    p.write_text("not a database, not a folder\n")
    return p


@pytest.mark.parametrize("where", ["proc", "under-a-file"])
def test_embed_out_on_an_unwritable_place_is_one_line(capsys, photos, text_file, where):
    # (a device such as /dev/full as --out is refused by the atomic writer: tests/io/test_files.py;
    # not run here, where the original code would write OUT.npz into /dev)
    out = {"proc": "/proc/xaiface-nope/e.npz", "under-a-file": f"{text_file}/e.npz"}[where]
    code, stdout, err = run(capsys, "embed", str(photos), "--out", out, "--quiet", "--threshold", "0.9")
    assert code == 1 and stdout == ""
    one_line_error(err, os.path.dirname(out))


@pytest.mark.parametrize("where", ["text", "proc"])
def test_cache_on_a_non_sqlite_file_or_unwritable_place(capsys, lfw, text_file, where):
    cache = {"text": str(text_file), "proc": "/proc/xaiface-nope/c.sqlite"}[where]
    a = str(lfw.image_path("Abel_Pacheco", 1))
    code, stdout, err = run(capsys, "verify", a, a, "--cache", cache, "--threshold", "0.9")
    assert code == 1 and stdout == ""
    one_line_error(err, cache if where == "text" else "/proc/xaiface-nope")
    assert text_file.read_text() == "not a database, not a folder\n"


@pytest.mark.parametrize("where", ["existing-file", "proc"])
def test_explain_out_on_a_file_or_unwritable_place(capsys, lfw, text_file, where):
    out = {"existing-file": str(text_file), "proc": "/proc/xaiface-nope"}[where]
    a = str(lfw.image_path("Abel_Pacheco", 1))
    code, _, err = run(capsys, "explain", a, a, "--out", out, "--method", "gradient", "--no-soft-biometrics",
                       "--no-on-photo", "--threshold", "0.9")
    assert code == 1
    one_line_error(err, out)


def test_study_and_bench_out_on_an_existing_file(capsys, text_file):
    code, _, err = run(capsys, "study", "factors", "--factor", "jpeg", "--levels", "30", "--out", str(text_file), "--quiet")
    assert code == 1
    one_line_error(err, str(text_file), "not a folder")
    code, _, err = run(capsys, "bench", "patch-lfw", "--methods", "random", "--out", str(text_file), "--quiet")
    assert code == 1
    one_line_error(err, str(text_file), "not a folder")


def test_embed_garbage_resume_file_starts_fresh_with_a_warning(capsys, photos, tmp_path):
    out = tmp_path / "e.npz"
    partial = tmp_path / "e.npz.partial.npz"
    partial.write_bytes(b"PK\x03\x04 garbage where a partial file was")
    code, stdout, err = run(capsys, "embed", str(photos), "--out", str(out), "--quiet", "--resume", "--threshold", "0.9")
    assert code == 0 and "Traceback" not in err
    assert str(partial) in err and "starting fresh" in err
    assert json.loads(stdout.strip().splitlines()[-1])["embedded"] == 2
    assert not partial.exists()


def test_embed_keeps_the_embeddings_when_the_final_save_fails(capsys, photos, tmp_path):
    out = tmp_path / "e.npz"
    out.mkdir()  # something in the way of the output file
    code, stdout, err = run(capsys, "embed", str(photos), "--out", str(out), "--quiet", "--threshold", "0.9")
    assert code == 1 and stdout == ""
    partial = tmp_path / "e.npz.partial.npz"
    one_line_error(err, str(out), str(partial), "--resume")
    with np.load(partial) as z:
        assert z["embeddings"].shape == (2, 128) and sorted(map(str, z["paths"])) == [str(photos / "a1.jpg"), str(photos / "a4.jpg")]
        kept = dict(zip(map(str, z["paths"]), z["embeddings"]))
    out.rmdir()
    # another setting cannot resume from it: refused, naming the setting
    code, _, err = run(capsys, "embed", str(photos), "--out", str(out), "--quiet", "--resume", "--flip", "--threshold", "0.9")
    assert code == 1
    one_line_error(err, str(partial), "flip")
    code, stdout, err = run(capsys, "embed", str(photos), "--out", str(out), "--quiet", "--resume", "--threshold", "0.9")
    assert code == 0, err
    with np.load(out) as z:
        got = dict(zip(map(str, z["paths"]), z["embeddings"]))
    assert got.keys() == kept.keys()
    for k in kept:
        np.testing.assert_array_equal(got[k], kept[k])  # the very arrays that were kept, not recomputed ones
    assert not partial.exists()


def test_embed_lists_image_files_it_cannot_read(capsys, photos, tmp_path):
    (photos / "dangling.jpg").symlink_to(photos / "gone.jpg")
    (photos / "loop.png").symlink_to(photos / "loop.png")
    os.mkfifo(photos / "pipe.jpg")
    (photos / "phone.heic").write_bytes(b"\x00\x00\x00\x18ftypheic")
    out = tmp_path / "e.npz"
    code, stdout, err = run(capsys, "embed", str(photos), "--out", str(out), "--quiet", "--threshold", "0.9")
    assert code == 3  # finished, with failures listed
    assert json.loads(stdout.strip().splitlines()[-1]) == {"embedded": 2, "failed": 4, "out": str(out)}
    failures = json.loads((tmp_path / "e.npz.failures.json").read_text())
    reasons = {os.path.basename(k): v for k, v in failures.items()}
    assert "dangling" in reasons["dangling.jpg"] and "loop" in reasons["loop.png"]
    assert "not a regular file" in reasons["pipe.jpg"] and "unsupported" in reasons["phone.heic"]
    for name in reasons:
        assert name in err
