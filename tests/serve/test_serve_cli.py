"""``xaiface serve`` refuses to listen beyond loopback without --allow-remote; the progress hook of
perturbation explainers (what the job bar and cancel use), on real LFW crops."""
from __future__ import annotations

import pytest

from xaiface.cli import build_parser, main
from xaiface.serve import is_loopback


def test_serve_refuses_a_non_loopback_host(capsys):
    assert main(["serve", "--host", "0.0.0.0", "--port", "8765"]) == 1
    err = capsys.readouterr().err
    assert "not a loopback address" in err and "--allow-remote" in err
    assert main(["serve", "--port", "70000"]) == 1
    assert "1..65535" in capsys.readouterr().err
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and not is_loopback("0.0.0.0")
    args = build_parser().parse_args(["serve"])
    assert args.host == "127.0.0.1" and args.port == 8000


def test_verify_video_is_a_command():
    args = build_parser().parse_args(["verify-video", "ref.jpg", "clip.mp4", "--top-k", "5"])
    assert args.top_k == 5 and args.stride == 1 and args.explain == "xssab"


def test_perturbation_progress_callback_reports_and_cancels(lfw):
    from xaiface.explain import get_explainer
    from xaiface.pipeline import FacePipeline

    pipe = FacePipeline()
    p = next(p for p in lfw.pairs(folds=[0], per_fold=2) if p.same)
    pair = (pipe.align(p.path_a), pipe.align(p.path_b))
    calls = []
    e = get_explainer("corrrise", pipe.model, n_masks=12, batch_size=5, progress=lambda d, n: calls.append((d, n)))
    expl = e.explain(pair)
    # after each batch of each explained image: masks done so far of 12
    assert calls == [(5, 12), (10, 12), (12, 12)] * 2
    assert expl.n_forward == 2 + 24

    class Stop(Exception):
        pass

    def stop(d, n):
        raise Stop

    with pytest.raises(Stop):
        get_explainer("corrrise", pipe.model, n_masks=12, batch_size=5, progress=stop).explain(pair)
    # progress=True keeps its old meaning (a tqdm bar), False none
    assert get_explainer("corrrise", pipe.model, n_masks=4, progress=True).explain(pair).n_forward == 2 + 8
