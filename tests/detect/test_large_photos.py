"""Large photos: decoding bounded by memory, detection on a reduced copy mapped back to full resolution."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from PIL import Image

from xaiface.errors import ImageError
from xaiface.io import load_image


@pytest.fixture(scope="module")
def black_png(tmp_path_factory):
    """A 7000x7000 all-black grayscale PNG (49 Mpx, under the 50 Mpx limit; ~50 KB on disk)."""
    path = tmp_path_factory.mktemp("large") / "black-7000.png"
    Image.new("L", (7000, 7000)).save(path)
    return path


def test_large_black_png_no_face_bounded_memory(black_png):
    """No face in a 49 Mpx black PNG: NoFaceError, and the whole load + detect stays well under
    the 2.6 GB it took when the detector ran on the full photo (upsampled twice)."""
    code = textwrap.dedent(f"""
        import json, resource
        from xaiface.errors import NoFaceError
        from xaiface.pipeline import FacePipeline
        pipe = FacePipeline()
        base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        try:
            pipe.align({str(black_png)!r})
            msg = None
        except NoFaceError as e:
            msg = str(e)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        print(json.dumps({{"error": msg, "delta_mb": (peak - base) / 1024}}))
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout.strip().splitlines()[-1])
    assert got["error"] is not None and got["error"].startswith(f"no face found in {black_png}")
    # the RGB photo itself is 147 MB; the detector's reduced copy at most 1280x1280
    assert got["delta_mb"] < 800, got


def test_decode_refused_from_header_over_memory_budget(black_png):
    from xaiface.io.images import decoded_bytes

    assert decoded_bytes(7000, 7000, "L") == 49_000_000 * 8
    assert decoded_bytes(100, 100, "I;16") == 10_000 * 10 and decoded_bytes(100, 100, "RGB") == 10_000 * 14
    with pytest.raises(ImageError, match=r"7000x7000 pixels, mode L, would take about 374 MiB.*at most 100 MiB"):
        load_image(black_png, max_bytes=100 * 2**20)
    assert load_image(black_png).shape == (7000, 7000, 3)  # the default budget (1 GiB) takes it


def test_sixteen_bit_budget_counts_two_bytes_a_sample(tmp_path):
    path = tmp_path / "g16.png"
    Image.fromarray(np.full((400, 500), 0x1234, np.uint16)).save(path)
    need = 400 * 500 * (2 * 2 + 6)
    with pytest.raises(ImageError, match="mode I"):
        load_image(path, max_bytes=need - 1)
    assert (load_image(path, max_bytes=need) == 0x12).all()


def test_upscaled_lfw_photo_detected_in_full_coordinates(lfw, hog):
    photo = load_image(lfw.image_path("Abel_Pacheco", 1))
    ref = hog.detect(photo)
    assert len(ref) == 1
    k = 6
    big = np.ascontiguousarray(np.repeat(np.repeat(photo, k, axis=0), k, axis=1))  # 1500x1500
    assert max(big.shape[:2]) > hog.max_side  # detected on the reduced copy
    got = hog.detect(big)
    assert len(got) == 1
    # the box is the reduced copy's detection mapped back: its edges times 1500/1280, to a pixel
    from xaiface.detect.dlib_detectors import _reduced

    small, (sx, sy) = _reduced(big, hog.max_side)
    assert small.shape == (1280, 1280, 3) and sx == sy == 1500 / 1280
    rects, _, _ = hog._det.run(small, hog.upsample, hog.adjust_threshold)
    r = rects[0]
    np.testing.assert_allclose(got[0].box, np.array([r.left(), r.top(), r.right() + 1, r.bottom() + 1]) * sx, atol=1)
    # the landmarks come from the full-resolution photo: where the original's are, times k
    # (pixel centres: x' = (x + 0.5) k - 0.5), to two original pixels
    np.testing.assert_allclose(got[0].landmarks, (ref[0].landmarks + 0.5) * k - 0.5, atol=2 * k)
    np.testing.assert_allclose(got[0].center, (ref[0].center + 0.5) * k - 0.5, atol=12 * k)
