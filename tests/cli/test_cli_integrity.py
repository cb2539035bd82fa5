"""``xaiface verify`` with a corrupt weight file or a non-finite threshold: exit 1, one line on
stderr (issue 12, defects 1 and 2); the verdict JSON names the weights' digest."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from xaiface.cli import main
from xaiface.models.dlib_resnet import default_weights_path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from weights_faults import flipped_dlib_weights  # noqa: E402


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def _one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("xaiface: error: ") and "Traceback" not in err, err
    return lines[0]


def test_verify_flipped_bit_weights_exit_1(capsys, tmp_path, lfw) -> None:
    bad = flipped_dlib_weights(tmp_path / "flipped.dat")
    a = lfw.image_path("Abel_Pacheco", 1)
    code, out, err = run(capsys, "verify", a, a, "--weights", bad)
    assert code == 1 and out == ""
    line = _one_error_line(err)
    assert "flipped.dat" in line and "degenerate" in line


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1.5"])
def test_verify_bad_threshold_exit_1(capsys, lfw, value) -> None:
    a = lfw.image_path("Abel_Pacheco", 1)
    code, out, err = run(capsys, "verify", a, a, f"--threshold={value}")
    assert code == 1 and out == ""
    line = _one_error_line(err)
    assert f"got {float(value)!r}" in line and "[-1, 1]" in line


def test_verify_json_records_weights_digest(capsys, lfw) -> None:
    import hashlib

    a = lfw.image_path("Abel_Pacheco", 1)
    code, out, _ = run(capsys, "verify", a, a, "--threshold", "0.9")
    assert code == 0
    v = json.loads(out)
    assert v["weights_sha256"] == hashlib.sha256(default_weights_path().read_bytes()).hexdigest() and v["decision"] == "match"
