"""The REST API with FastAPI's test client, on real LFW photos and the real default model."""
from __future__ import annotations

import base64
import io
import json
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bad_inputs import write_bad_files  # noqa: E402


def _files(a: Path, b: Path | bytes) -> dict:
    fb = ("b.jpg", b) if isinstance(b, bytes) else (Path(b).name, Path(b).read_bytes())
    return {"image_a": (Path(a).name, Path(a).read_bytes()), "image_b": fb}


def _png(uri: str) -> np.ndarray:
    assert uri.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))).convert("RGB"))


def _wait(client, job_id: str, until=lambda s: s["state"] not in ("queued", "running"), timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        s = client.get(f"/api/jobs/{job_id}").json()
        if until(s) or time.monotonic() > deadline:
            return s
        time.sleep(0.1)


def test_verify_equals_the_cli(client, genuine_pair, impostor_pair, capsys):
    from xaiface.cli import main

    for a, b in (genuine_pair, impostor_pair):
        for threshold in ("eer", "fmr=1e-3"):
            assert main(["verify", str(a), str(b), "--threshold", threshold]) == 0
            cli = json.loads(capsys.readouterr().out)
            r = client.post("/api/verify", files=_files(a, b), data={"threshold": threshold})
            assert r.status_code == 200, r.text
            api = r.json()
            assert api["decision"] == cli["decision"]
            assert api["similarity"] == pytest.approx(cli["similarity"], abs=1e-5)
            assert api["threshold"] == pytest.approx(cli["threshold"], abs=1e-9)
            assert api["threshold_name"] == cli["threshold_name"] == threshold
            assert api["images"] == [f"image_a ({a.name})", f"image_b ({b.name})"]
    # the genuine pair is a match at the EER threshold, the impostor pair is not
    assert client.post("/api/verify", files=_files(*genuine_pair)).json()["match"] is True
    assert client.post("/api/verify", files=_files(*impostor_pair)).json()["match"] is False


def test_every_bad_input_is_refused_with_4xx_and_a_message(client, genuine_pair, tmp_path):
    a, b = genuine_pair
    bad = write_bad_files(tmp_path, Path(a))
    expect = {"empty": ("ImageError", "empty"), "truncated": ("ImageError", "truncated.jpg"),
              "text": ("ImageError", "not a recognised image"), "tiny": ("ImageError", "one_pixel.png"),
              "bomb": ("ImageError", "huge_header.png"), "noface": ("NoFaceError", "no face")}
    for name, path in bad.items():
        for side, url in (("image_a", "/api/verify"), ("image_b", "/api/verify"), ("image_b", "/api/explain")):
            files = _files(a, b)
            files[side] = (path.name, path.read_bytes())
            r = client.post(url, files=files)
            assert 400 <= r.status_code < 500, (name, r.status_code, r.text)
            body = r.json()
            assert set(body) == {"error", "detail"}
            assert body["error"] == expect[name][0], (name, body)
            assert expect[name][1] in body["detail"], (name, body)
            assert side in body["detail"]  # the message names the upload at fault
    # the content decides, not the name: a JPEG called face.txt is read
    r = client.post("/api/verify", files={"image_a": ("face.txt", a.read_bytes()), "image_b": ("b", b.read_bytes())})
    assert r.status_code == 200 and r.json()["match"] is True
    # a bomb is refused from its header: the pixel limit names the size
    r = client.post("/api/verify", files={**_files(a, b), "image_b": ("x.png", bad["bomb"].read_bytes())})
    assert r.status_code == 422 and "pixels" in r.json()["detail"] and "image_b (x.png)" in r.json()["detail"]


def test_bad_requests_map_project_errors_to_status_codes(client, genuine_pair):
    a, b = genuine_pair
    cases = [
        ("/api/verify", {"model": "no-such-model"}, 404, "ModelNotFoundError", "no-such-model"),
        ("/api/verify", {"threshold": "fmr=0.5"}, 400, "ConfigError", "fmr=0.5"),
        ("/api/verify", {"threshold": "7"}, 400, "ConfigError", "7"),
        ("/api/explain", {"methods": "nonsense"}, 404, "ModelNotFoundError", "nonsense"),
        ("/api/explain", {"methods": " , "}, 400, "ConfigError", "no method"),
        ("/api/explain", {"methods": "xssab", "factor": "jpeg"}, 400, "ConfigError", "level"),
        ("/api/explain", {"methods": "xssab", "factor": "no-such-factor", "level": "3"}, 400, "ConfigError", "no-such-factor"),
        ("/api/explain", {"methods": "xssab", "factor": "jpeg", "level": "30", "apply": "gallery"}, 400, "ConfigError", "apply"),
        ("/api/verify", {"sample": "0"}, 400, "ConfigError", "not both"),
    ]
    for url, data, code, err, word in cases:
        r = client.post(url, files=_files(a, b), data=data)
        assert r.status_code == code, (data, r.text)
        assert r.json()["error"] == err and word in r.json()["detail"], (data, r.json())
    r = client.post("/api/verify", files={"image_a": (a.name, a.read_bytes())})
    assert r.status_code == 400 and "image_b" in r.json()["detail"]
    r = client.post("/api/verify", data={"sample": "many"})
    assert r.status_code == 422 and r.json()["error"] == "ValidationError" and "sample" in r.json()["detail"]
    r = client.get("/api/jobs/0123")
    assert r.status_code == 404 and r.json()["error"] == "JobNotFound"
    r = client.get("/api/samples/999/a")
    assert r.status_code == 400 and "sample" in r.json()["detail"]
    r = client.get("/static/../../etc/passwd")
    assert r.status_code == 404


def test_upload_over_the_body_limit_is_refused_with_413(genuine_pair):
    from fastapi.testclient import TestClient

    from xaiface.serve import Limits, create_app

    a, b = genuine_pair
    limit = max(a.stat().st_size, b.stat().st_size) + 1000  # one photo fits, two do not
    with TestClient(create_app(limits=Limits(max_upload_bytes=limit))) as small:
        one = small.post("/api/verify", files={"image_a": (a.name, a.read_bytes())})
        assert one.status_code == 400 and "image_b" in one.json()["detail"]  # within the limit: read and judged
        r = small.post("/api/verify", files=_files(a, b))
        assert r.status_code == 413
        assert r.json() == {"error": "HTTPError", "detail": f"request body over the limit of {limit} bytes"}
        # without a Content-Length (chunked), the body is counted as it arrives
        body = b"--x\r\nContent-Disposition: form-data; name=\"image_a\"; filename=\"a.jpg\"\r\n\r\n" + a.read_bytes() * 3
        assert "limit" in r.json()["detail"]
        chunked = small.post("/api/verify", content=iter([body[i:i + 4096] for i in range(0, len(body), 4096)]),
                             headers={"content-type": "multipart/form-data; boundary=x"})
        assert chunked.status_code == 413 and "limit" in chunked.json()["detail"]


def test_decoded_pixel_limit(genuine_pair):
    from fastapi.testclient import TestClient

    from xaiface.serve import Limits, create_app

    a, b = genuine_pair
    with TestClient(create_app(limits=Limits(max_pixels=200 * 200))) as small:  # LFW photos are 250 x 250
        r = small.post("/api/verify", files=_files(a, b))
    assert r.status_code == 422 and r.json()["error"] == "ImageError"
    assert "40000 pixels" in r.json()["detail"] and f"image_a ({a.name})" in r.json()["detail"]


def test_explain_xssab_answers_at_once_with_maps_as_png_and_arrays(client, genuine_pair):
    from xaiface.explain import Verifier, get_explainer
    from xaiface.explain.visualize import crop_overlays, signed_maps
    from xaiface.pipeline import FacePipeline

    a, b = genuine_pair
    r = client.post("/api/explain", files=_files(a, b), data={"methods": "xssab", "arrays": "true"})
    assert r.status_code == 200, r.text
    res = r.json()["original"]
    assert r.json()["factor"] is None
    verdict = client.post("/api/verify", files=_files(a, b)).json()
    assert res["verdict"]["similarity"] == pytest.approx(verdict["similarity"], abs=1e-6)
    assert res["verdict"]["threshold"] == verdict["threshold"]
    (m,) = res["methods"]
    assert m["method"] == "xssab" and m["score"] == pytest.approx(verdict["similarity"], abs=1e-5)
    assert m["n_backward"] > 0
    # a match: the maps sent are the combined one and the evidence, the similarity map
    assert m["evidence"] == "similarity" and set(m["maps"]) == {"combined", "similarity"} and "images" not in m
    pipe = FacePipeline()
    expl = get_explainer("xssab", Verifier.from_pipeline(pipe)).explain((pipe.align(a), pipe.align(b)))
    # the grey PNGs encode the pair-scaled signed maps of the report: value = (pixel - 128) / 127
    for kind in ("combined", "similarity"):
        for png, want in zip(m["maps"][kind], signed_maps(expl, kind)):
            grey = _png(png)[..., 0].astype(float)
            assert grey.shape == (150, 150)
            assert np.abs((grey - 128) / 127 - want).max() <= 0.5 / 127 + 2e-3
    # the arrays are the maps the library computes in-process
    for k in ("combined", "similarity", "dissimilarity"):
        for got, want in zip(m["arrays"][k], expl.maps(k)):
            got = np.asarray(got)
            assert got.shape == want.shape == (150, 150)
            assert np.allclose(got, want, atol=1e-5 + 1e-3 * float(np.abs(want).max()))
    # the crops and how to draw a map onto each photo: the canvas transform maps the crop's
    # landmarks (pixel centres + 0.5) onto the photo's
    from xaiface.align import apply_affine

    assert [_png(u).shape for u in res["crops"]] == [(150, 150, 3)] * 2
    for face, geo, path in zip((expl.pair.a, expl.pair.b), res["faces"], (a, b)):
        assert geo["photo_size"] == list(Image.open(path).size) and geo["crop_size"] == 150
        ta, tb, tc, td, te, tf = geo["canvas_transform"]
        lm = np.asarray(face.face.landmarks)
        crop_pts = apply_affine(face.matrix, lm) + 0.5
        back = np.stack([ta * crop_pts[:, 0] + tc * crop_pts[:, 1] + te, tb * crop_pts[:, 0] + td * crop_pts[:, 1] + tf], 1)
        assert np.allclose(back, lm + 0.5, atol=1e-6)
    assert res["legend"]["similarity_rgb"] == [0, 200, 60] and res["legend"]["dissimilarity_rgb"] == [235, 25, 105]
    # painted=true: the server's own overlays (those of the report), all_maps: the dissimilarity map too
    both = client.post("/api/explain", files=_files(a, b),
                       data={"methods": "xssab", "all_maps": "true", "painted": "true"}).json()["original"]["methods"][0]
    assert set(both["maps"]) == {"combined", "similarity", "dissimilarity"}
    assert set(both["images"]) == {"combined_crop", "similarity_crop", "dissimilarity_crop", "combined_photo"}
    for got, want in zip(both["images"]["combined_crop"], crop_overlays(expl, "combined")):
        assert np.abs(_png(got).astype(int) - want.astype(int)).max() <= 2
    pa, pb = (np.asarray(Image.open(p).convert("RGB")) for p in (a, b))
    assert [_png(u).shape for u in both["images"]["combined_photo"]] == [pa.shape, pb.shape]


def test_factor_and_soft_biometrics_side_by_side(client, genuine_pair):
    a, b = genuine_pair
    r = client.post("/api/explain", files=_files(a, b),
                    data={"methods": "xssab", "factor": "resolution", "level": "0.25", "apply": "probe", "soft": "true"})
    assert r.status_code == 200, r.text
    orig, fac = r.json()["original"], r.json()["factor"]
    assert fac["factor"]["factor"] == "resolution" and fac["factor"]["level"] == 0.25 and fac["factor"]["apply"] == "probe"
    assert _png(fac["photos"][0]).shape == _png(fac["photos"][1]).shape
    # only the probe was down-scaled: photo A is unchanged, B lost detail
    pa = np.asarray(Image.open(a).convert("RGB")).astype(int)
    pb = np.asarray(Image.open(b).convert("RGB")).astype(int)
    assert np.array_equal(_png(fac["photos"][0]), pa)
    assert np.abs(_png(fac["photos"][1]).astype(int) - pb).mean() > 2
    assert fac["verdict"]["similarity"] != pytest.approx(orig["verdict"]["similarity"], abs=1e-4)
    assert fac["verdict"]["threshold"] == orig["verdict"]["threshold"]
    soft = orig["soft_biometrics"]
    if "skipped" in soft:
        pytest.skip(f"soft-biometric models missing: {soft['skipped']}")
    assert "gender" in soft["data"]["comparisons"] and "age" in soft["data"]["comparisons"]
    assert soft["summary"].startswith("Match" if orig["verdict"]["match"] else "No match") or "score" in soft["summary"]
    assert _png(soft["figure"]).shape[0] > 100


def test_slow_method_runs_as_a_job_with_progress_and_can_be_cancelled(genuine_pair):
    from fastapi.testclient import TestClient

    from xaiface.serve import Limits, create_app

    a, b = genuine_pair
    with TestClient(create_app(limits=Limits(max_pending_jobs=1))) as c:
        r = c.post("/api/explain", files=_files(a, b), data={"methods": "corrrise"})
        assert r.status_code == 202, r.text
        job = r.json()
        assert r.headers["location"] == f"/api/jobs/{job['id']}" and job["state"] in ("queued", "running")
        # the queue holds one job: a second is refused with 429
        r2 = c.post("/api/explain", files=_files(a, b), data={"methods": "xface1"})
        assert r2.status_code == 429 and r2.json()["error"] == "JobQueueFull"
        s = _wait(c, job["id"], until=lambda s: s["progress"] > 0.05 or s["state"] != "running", timeout=120)
        assert s["state"] == "running" and 0.05 < s["progress"] < 1 and s["stage"] == "corrrise"
        assert c.delete(f"/api/jobs/{job['id']}").status_code == 200
        s = _wait(c, job["id"], timeout=60)
        assert s["state"] == "cancelled" and s["progress"] < 1 and "result" not in s
        # the queue is free again
        r3 = c.post("/api/explain", files=_files(a, b), data={"methods": "xssab", "background": "true"})
        assert r3.status_code == 202
        s = _wait(c, r3.json()["id"], timeout=60)
        assert s["state"] == "done" and s["progress"] == 1.0
        assert s["result"]["original"]["methods"][0]["method"] == "xssab"


def test_registries_schema_and_offline_page(client):
    from xaiface.explain import list_explainers

    names = [e["name"] for e in client.get("/api/explainers").json()["explainers"]]
    assert names == list_explainers()
    modes = {e["name"]: e["mode"] for e in client.get("/api/explainers").json()["explainers"]}
    assert modes["xssab"] == modes["gradient"] == "sync" and modes["corrrise"] == modes["xface1"] == "job"
    models = {m["name"]: m for m in client.get("/api/models").json()["models"]}
    assert models["dlib-resnet"]["available"] is True
    assert models["dlib-resnet"]["operating_points"] == ["eer", "fmr=1e-2", "fmr=1e-3"]
    assert "jpeg" in [f["name"] for f in client.get("/api/factors").json()["factors"]]
    paths = client.get("/openapi.json").json()["paths"]
    for p in ("/api/verify", "/api/explain", "/api/jobs/{job_id}", "/api/models", "/api/explainers", "/api/verify-video"):
        assert p in paths
    assert "delete" in paths["/api/jobs/{job_id}"]
    page = client.get("/")
    assert page.status_code == 200 and "default-src 'self'" in page.headers["content-security-policy"]
    for url in ("/", "/static/app.js", "/static/style.css"):
        text = client.get(url).text
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, url
    assert client.get("/docs").status_code == 404  # Swagger UI would load a CDN's scripts
    legend = np.asarray(Image.open(io.BytesIO(client.get("/api/legend.png").content)).convert("RGB")).astype(int)
    assert legend[8, 0, 0] > legend[8, 0, 1] and legend[8, -1, 1] > legend[8, -1, 0]  # pink left, green right
