"""Influencing-factor transforms on a real LFW photo: determinism, codec bitstreams, plug-ins."""
from __future__ import annotations

import io
import sys

import numpy as np
import pytest
from PIL import Image

from xaiface.errors import ConfigError, ImageError
from xaiface.factors import (
    CallableCodec, CommandCodec, Compose, factor_info, get_transform, list_factors, parse_spec, psnr, register_codec,
    unregister_factor,
)

BUILTIN = [n for n in list_factors() if factor_info(n).family != "plugin"]


def test_registry_lists_every_family():
    fams = {factor_info(n).family for n in BUILTIN}
    assert {"codec", "resolution", "enhancement", "beautification"} <= fams
    for n in ("jpeg", "jpeg2000", "jpeg2000-psnr", "webp", "avif", "resolution", "sharpen", "contrast", "gamma",
              "histeq", "clahe", "denoise", "smooth-skin", "brighten", "enlarge-eyes", "slim-face"):
        assert n in BUILTIN


@pytest.mark.parametrize("name", BUILTIN)
def test_each_transform_is_deterministic_and_changes_the_photo(name, lfw_photo):
    info = factor_info(name)
    strong = info.gallery_levels[1]
    r1, r2 = get_transform(name, strong)(lfw_photo), get_transform(name, strong)(lfw_photo)
    assert r1.image.shape == lfw_photo.shape and r1.image.dtype == np.uint8
    assert np.array_equal(r1.image, r2.image)
    assert r1.nbytes == r2.nbytes
    assert not np.array_equal(r1.image, lfw_photo)
    assert (r1.nbytes is not None) == (info.family == "codec")


@pytest.mark.parametrize("name", ["jpeg", "jpeg2000", "jpeg2000-psnr", "webp", "avif"])
def test_codec_output_is_the_decoded_bitstream_of_the_stated_size(name, lfw_photo):
    t = get_transform(name, factor_info(name).gallery_levels[0])
    data = t.encode(lfw_photo)
    r = t(lfw_photo)
    assert r.nbytes == len(data)
    assert r.bpp == pytest.approx(8 * len(data) / (250 * 250))
    with Image.open(io.BytesIO(data)) as im:  # an independent decode of the same bytes
        decoded = np.asarray(im.convert("RGB"))
    assert np.array_equal(r.image, decoded)


def test_codec_levels_order_rate_and_quality(lfw_photo):
    hi, lo = get_transform("jpeg", 90)(lfw_photo), get_transform("jpeg", 10)(lfw_photo)
    assert hi.nbytes > lo.nbytes and psnr(lfw_photo, hi.image) > psnr(lfw_photo, lo.image)
    for ratio in (20, 100):  # the stated compression ratio is met (24-bit RGB source)
        r = get_transform("jpeg2000", ratio)(lfw_photo)
        assert 24 / r.bpp == pytest.approx(ratio, rel=0.1)
    for target in (30, 40):
        r = get_transform("jpeg2000-psnr", target)(lfw_photo)
        assert abs(psnr(lfw_photo, r.image) - target) < 1.0


def test_resolution_degrades_monotonically(lfw_photo):
    p = [psnr(lfw_photo, get_transform("resolution", s)(lfw_photo).image) for s in (0.8, 0.5, 0.25, 0.125)]
    assert all(a > b for a, b in zip(p, p[1:]))
    r = get_transform("resolution", 0.25, kernel="nearest")(lfw_photo)
    assert r.info["size"] == [62, 62]
    with pytest.raises(ConfigError, match="kernel"):
        get_transform("resolution", 0.5, kernel="cubic-ish")


def test_beautification_edits_the_face_only(lfw_photo):
    for name in ("smooth-skin", "brighten", "enlarge-eyes", "slim-face"):
        r = get_transform(name, factor_info(name).gallery_levels[1])(lfw_photo)
        assert r.info["face_found"] is True
        diff = np.abs(r.image.astype(int) - lfw_photo.astype(int)).sum(2)
        assert diff[:25, :].max() == 0 and diff[:, :25].max() == 0, name  # photo borders untouched
        assert diff[90:160, 80:170].mean() > 0.5, name  # the face region changed


def test_beautification_leaves_a_photo_without_face_unchanged():
    flat = np.full((120, 120, 3), 128, np.uint8)
    r = get_transform("smooth-skin", 1.0)(flat)
    assert r.info["face_found"] is False and np.array_equal(r.image, flat)


def test_bad_levels_and_inputs_are_clear_errors(lfw_photo):
    with pytest.raises(ConfigError, match="quality"):
        get_transform("jpeg", 0)
    with pytest.raises(ConfigError, match="unknown factor"):
        get_transform("jpeg-xl", 50)
    with pytest.raises(ConfigError, match="parameters"):
        get_transform("jpeg", 50, speed=3)
    with pytest.raises(ImageError, match="uint8"):
        get_transform("jpeg", 50)(lfw_photo.astype(np.float32))


def test_parse_spec_and_compose(lfw_photo):
    t = parse_spec("resolution=0.5,kernel=bilinear+jpeg=40")
    assert isinstance(t, Compose) and t.describe() == "resolution=0.5,kernel=bilinear,up_kernel=bicubic+jpeg=40.0,subsampling=-1"
    r = t(lfw_photo)
    manual = get_transform("jpeg", 40)(get_transform("resolution", 0.5, kernel="bilinear")(lfw_photo).image)
    assert np.array_equal(r.image, manual.image) and r.nbytes == manual.nbytes
    with pytest.raises(ConfigError, match="FACTOR=LEVEL"):
        parse_spec("jpeg")


def test_callable_codec_plugin(lfw_photo):
    def enc(image, level):
        buf = io.BytesIO()
        Image.fromarray(image).save(buf, "JPEG", quality=int(level))
        return buf.getvalue()

    def dec(data):
        return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))

    from functools import partial

    register_codec("my-jpeg", partial(CallableCodec, encode=enc, decode=dec), default_levels=(50, 20))
    try:
        r = get_transform("my-jpeg", 20)(lfw_photo)
        ref = get_transform("jpeg", 20)(lfw_photo)
        assert r.nbytes == ref.nbytes and np.array_equal(r.image, ref.image)
        assert factor_info("my-jpeg").family == "plugin"
    finally:
        unregister_factor("my-jpeg")


def test_command_codec_plugin_reports_the_file_size(lfw_photo, tmp_path):
    py = sys.executable
    enc = (f"{py} -c \"import sys; from PIL import Image; Image.open(sys.argv[1]).save(sys.argv[2], 'JPEG', "
           f"quality=int(float(sys.argv[3])))\" {{input}} {{output}} {{level}}")
    dec = f"{py} -c \"import sys; from PIL import Image; Image.open(sys.argv[1]).save(sys.argv[2])\" {{input}} {{output}}"
    t = CommandCodec(30, name="ext-jpeg", encode=enc, decode=dec, suffix=".jpg")
    r = t(lfw_photo)
    ref = get_transform("jpeg", 30)(lfw_photo)
    assert r.nbytes == ref.nbytes and np.array_equal(r.image, ref.image)
    bad = CommandCodec(30, name="broken", encode=f"{py} -c \"import sys; sys.exit(3)\"", decode=dec)
    with pytest.raises(ImageError, match="broken.*exit 3"):
        bad(lfw_photo)
