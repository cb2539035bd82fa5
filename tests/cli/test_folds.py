"""``--folds``: one parser and one convention (folds numbered 1..10) for every command."""
from __future__ import annotations

import pytest

from xaiface.cli import build_parser, main
from xaiface.errors import ConfigError

#: every command with ``--folds`` (its other required arguments filled in)
FOLD_COMMANDS = [
    ["eval", "lfw"],
    ["bench", "patch-lfw-generate"],
    ["bench", "patch-lfw"],
    ["train", "libf"],
    ["analyze", "soft-biometrics"],
    ["study", "factors", "--factor", "jpeg", "--levels", "50"],
]


def test_parse_folds_counts_from_one():
    from xaiface.datasets.lfw import parse_folds

    assert parse_folds(None) is None and parse_folds("") is None and parse_folds("  ") is None
    assert parse_folds("1") == (0,)
    assert parse_folds("10, 2,2") == (1, 9)
    for bad in ("x", "0", "11", "1,", "1.5", "-1", "1-3", "²"):
        with pytest.raises(ConfigError, match=r"--folds .*1\.\.10"):
            parse_folds(bad)


@pytest.mark.parametrize("bad", ["x", "0", "1,,2"])
@pytest.mark.parametrize("command", FOLD_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_bad_folds_one_line_error_every_command(command, bad, tmp_path, capsys):
    code = main([*command, "--folds", bad, "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith(f"xaiface: error: --folds {bad!r}") and err.count("\n") == 1, err
    assert not (tmp_path / "out").exists()


def test_folds_same_lfw_folds_in_every_command():
    """``--folds 2,3`` means LFW folds 2 and 3 (0-based 1, 2) whichever command reads it."""
    from xaiface.cli.args import lfw_folds
    from xaiface.cli.libf import _test_folds

    assert lfw_folds("2,3") == [1, 2]
    assert _test_folds("2,3") == (2, 3)  # LIBFTrainConfig numbers its test folds 1..10
    assert _test_folds(None) == tuple(range(1, 11))


def test_folds_help_states_the_convention():
    import argparse

    ap = build_parser()
    for command in FOLD_COMMANDS:
        parser = ap
        for word in command[:2]:
            sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
            parser = sub.choices[word]
        opt = next(a for a in parser._actions if "--folds" in a.option_strings)
        assert "numbered 1..10" in opt.help, (command, opt.help)
