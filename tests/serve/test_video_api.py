"""``POST /api/verify-video``: a reference photo against a clip made from real LFW photos, as a job."""
from __future__ import annotations

import time

import pytest

PERSON = "Alejandro_Toledo"


@pytest.fixture(scope="module")
def clip(lfw, tmp_path_factory):
    from xaiface.io import load_image
    from xaiface.video import make_clip

    photos = [load_image(lfw.image_path(PERSON, k)) for k in (2, 3)]
    return make_clip(photos, tmp_path_factory.mktemp("clip") / "clip.mp4", n_frames=12, size=(320, 240))


def test_video_over_the_api_as_a_job(client, lfw, clip):
    ref = lfw.image_path(PERSON, 1)
    files = {"reference": (ref.name, ref.read_bytes()), "clip": ("clip.mp4", clip.read_bytes())}
    r = client.post("/api/verify-video", files=files, data={"top_k": "3"})
    assert r.status_code == 202, r.text
    deadline = time.monotonic() + 120
    while (s := client.get(f"/api/jobs/{r.json()['id']}").json())["state"] in ("queued", "running"):
        assert time.monotonic() < deadline
        time.sleep(0.2)
    assert s["state"] == "done", s
    res = s["result"]
    assert res["decision"] == "match" and res["frames_read"] == 12
    assert res["plot"].startswith("data:image/png;base64,") and res["best_frame"].startswith("data:image/png")
    assert res["explanation"]["method"] == "xssab"
    bad = client.post("/api/verify-video", files={"reference": files["reference"], "clip": ("c.mp4", b"hello world, no video")})
    assert bad.status_code == 422 and bad.json()["error"] == "VideoError" and "clip (c.mp4)" in bad.json()["detail"]
