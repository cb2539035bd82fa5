"""Video verification on clips made from real LFW photos (moving, scaled, JPEG-compressed)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from xaiface.errors import ConfigError
from xaiface.video import VideoError, box_iou, frame_count, make_clip, read_frames, sniff_container, verify_video

PERSON, IMPOSTOR = "Alejandro_Toledo", "Al_Gore"


@pytest.fixture(scope="module")
def clip(lfw, tmp_path_factory):
    from xaiface.io import load_image

    photos = [load_image(lfw.image_path(PERSON, k)) for k in (2, 3)]
    return make_clip(photos, tmp_path_factory.mktemp("clip") / "clip.mp4", n_frames=16, size=(320, 240))


@pytest.fixture(scope="module")
def pipe():
    from xaiface.pipeline import FacePipeline

    return FacePipeline()


def test_box_iou_exact():
    a = np.array([0.0, 0.0, 10.0, 10.0])
    assert box_iou(a, a) == 1.0
    assert box_iou(a, np.array([5.0, 0.0, 15.0, 10.0])) == pytest.approx(50 / 150)
    assert box_iou(a, np.array([20.0, 20.0, 30.0, 30.0])) == 0.0


def test_made_clip_reads_back_moving_and_compressed(clip):
    frames = list(read_frames(clip))
    assert len(frames) == 16 and all(f.image.shape == (240, 320, 3) for f in frames)
    assert [f.index for f in frames] == list(range(16))
    assert frames[1].time == pytest.approx(0.1, abs=1e-6)  # 10 fps
    # the photo moves: consecutive frames differ, and the middle (quality 12) is blockier than the start
    assert np.abs(frames[0].image.astype(int) - frames[4].image.astype(int)).mean() > 5
    assert [f.index for f in read_frames(clip, stride=5, max_frames=3)] == [0, 5, 10]
    assert frame_count(clip) == 16


def test_genuine_clip_matches_and_impostor_does_not(lfw, clip, pipe):
    ref = lfw.image_path(PERSON, 1)
    seen = []
    v = verify_video(ref, clip, pipe, top_k=3, progress=lambda f, stage: seen.append(f))
    assert seen == sorted(seen) and len(seen) == 17 and seen[-1] == 1.0 and seen[-2] == pytest.approx(0.95)
    assert seen[7] == pytest.approx(8 / 16)  # the fraction of the declared frames read
    assert v.frames_read == 16 and v.frames_with_face >= 12
    assert v.match and v.score >= v.threshold == pipe.threshold
    # the rule: the deciding track's top-3 frame scores, averaged
    x, y = v.frame_series()
    assert v.score == pytest.approx(float(np.mean(np.sort(y)[-3:])), abs=1e-9)
    assert sorted(v.deciding_frames) == sorted(int(f) for f in x[np.argsort(y)[-3:]])
    assert v.explained_frame == int(x[np.argmax(y)])
    # the explained frame is the best one, explained against the reference, at the clip's own verdict scale
    e = v.explanation
    assert e.method == "xssab" and e.score == pytest.approx(float(y.max()), abs=1e-5)
    assert e.combined_maps[1].shape == (150, 150) and np.abs(e.combined_maps[1]).max() > 0
    # the single-frame scores agree with the still-photo pipeline on the decoded frame
    frame = next(f for f in read_frames(clip) if f.index == v.explained_frame)
    assert pipe.verify(ref, frame.image).similarity == pytest.approx(float(y.max()), abs=1e-5)
    impostor = verify_video(lfw.image_path(IMPOSTOR, 1), clip, pipe, explain=None)
    assert not impostor.match and impostor.score < v.score - 0.03
    assert impostor.explanation is None


def test_verify_video_cli_writes_plot_and_verdict(lfw, clip, tmp_path, capsys):
    from xaiface.cli import main

    assert main(["verify-video", str(lfw.image_path(PERSON, 1)), str(clip), "--stride", "2", "--out", str(tmp_path)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["decision"] == "match" and out["frames_read"] == 8
    assert all(f["frame"] % 2 == 0 for f in out["frames"])
    saved = json.loads((tmp_path / "verdict.json").read_text())
    assert saved["score"] == out["score"]
    for name in ("scores.png", "best_frame.png", "explained.png"):
        assert (tmp_path / name).stat().st_size > 5000


def test_bad_clips_are_refused_by_content(lfw, tmp_path, pipe):
    text = tmp_path / "notes.mp4"
    text.write_text("not a video at all\n")
    jpeg = tmp_path / "photo.mp4"
    jpeg.write_bytes(lfw.image_path(PERSON, 1).read_bytes())
    empty = tmp_path / "empty.avi"
    empty.write_bytes(b"")
    for path, words in ((text, "not a video container"), (jpeg, "not a video container"), (empty, "empty"),
                        (tmp_path / "missing.mp4", "no such file")):
        with pytest.raises(VideoError, match=words) as e:
            verify_video(lfw.image_path(PERSON, 1), path, pipe)
        assert path.name in str(e.value)
    truncated = tmp_path / "cut.mp4"
    truncated.write_bytes(b"\x00\x00\x00\x20ftypisom" + b"\x00" * 64)
    with pytest.raises(VideoError, match="cut.mp4"):
        list(read_frames(truncated))
    assert sniff_container(b"RIFF\x00\x00\x00\x00AVI LIST") == "AVI"
    with pytest.raises(ConfigError):
        list(read_frames(text, stride=0))
