"""The shared arguments module ``xaiface.cli.args``: one definition of each shared option, read back one way."""
from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from xaiface.cli import build_parser
from xaiface.cli.args import (
    DEFAULT_DETECTOR, DEFAULT_MODEL, add_pipeline_args, detector_kwargs, set_torch_threads, subparsers_of,
    threshold_value,
)
from xaiface.errors import ConfigError


def test_threshold_value_number_or_name():
    assert threshold_value("0.35") == 0.35 and isinstance(threshold_value("0.35"), float)
    assert threshold_value("-1") == -1.0
    assert threshold_value("eer") == "eer" and threshold_value("fmr=1e-3") == "fmr=1e-3"


def _pipeline_args(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_pipeline_args(p)
    return p.parse_args(list(argv))


def test_pipeline_args_defaults_and_detector_settings():
    a = _pipeline_args()
    assert (a.model, a.detector, a.select, a.flip, a.threshold, a.cache) == (DEFAULT_MODEL, DEFAULT_DETECTOR,
                                                                             "largest", False, "eer", None)
    assert detector_kwargs(a) == {"upsample": 1}
    assert detector_kwargs(_pipeline_args("--upsample", "2", "--pad-retry")) == {"upsample": 2, "pad_retry": True}
    assert detector_kwargs(_pipeline_args("--detector", "retinaface-onnx", "--upsample", "2")) == {}


def test_subparsers_of_shares_one_group_between_command_modules():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="command")
    first = subparsers_of(sub, "train", "train things", "train_what")
    second = subparsers_of(sub, "train", "ignored: the group exists", "ignored")
    assert first is second and list(sub.choices) == ["train"]
    first.add_parser("a")
    second.add_parser("b")
    assert ap.parse_args(["train", "b"]).train_what == "b"


def test_train_and_analyze_hold_every_stage_command():
    ap = build_parser()
    sub = next(a for a in ap._actions if isinstance(a, argparse._SubParsersAction))

    def children(name: str) -> list[str]:
        group = next(a for a in sub.choices[name]._actions if isinstance(a, argparse._SubParsersAction))
        return list(group.choices)

    assert children("train") == ["libf", "body-mass"]
    assert children("eval") == ["lfw", "libf", "soft-biometrics", "calibration"]
    assert children("analyze") == ["soft-biometrics", "disentangle", "erasure"]
    assert children("study") == ["factors", "plot"]


@pytest.mark.parametrize("bad", [0, -2])
def test_set_torch_threads_rejects_fewer_than_one(bad):
    with pytest.raises(ConfigError, match=rf"--threads must be >= 1, got {bad}"):
        set_torch_threads(bad)


def test_set_torch_threads_none_leaves_torch_alone():
    code = "import sys; from xaiface.cli.args import set_torch_threads; set_torch_threads(None); print('torch' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "False", r.stderr


def test_python_m_xaiface_cli():
    r = subprocess.run([sys.executable, "-m", "xaiface.cli", "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.startswith("usage: xaiface") and "explain" in r.stdout, r.stderr
    r = subprocess.run([sys.executable, "-m", "xaiface.cli"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "required" in r.stderr
