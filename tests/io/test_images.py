"""Tests of xaiface.io.images.load_image: every source kind, every conversion, every refusal."""
from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

import xaiface  # noqa: F401  (importing the package must not relax Pillow's truncation check)
from xaiface.config import data_dir
from xaiface.errors import ConfigError, DatasetError, ImageError
from xaiface.io import DEFAULT_MAX_PIXELS, image_shape, load_image

RNG = np.random.default_rng(0)
RED, BLUE = (255, 0, 0), (0, 0, 255)


def _save(tmp_path: Path, img: Image.Image | np.ndarray, file_name: str, **kwargs) -> Path:
    """Write ``img`` (a PIL image or an array Pillow understands) to ``tmp_path / file_name``."""
    path = tmp_path / file_name
    (img if isinstance(img, Image.Image) else Image.fromarray(img)).save(path, **kwargs)
    return path


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _png(width: int, height: int, bit_depth: int, colour_type: int, idat: bytes) -> bytes:
    """A PNG file built by hand: signature, IHDR (with a correct CRC), one IDAT, IEND."""
    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, colour_type, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", idat)
            + _png_chunk(b"IEND", b""))


def _noise(height: int, width: int, channels: int = 3) -> np.ndarray:
    return RNG.integers(0, 256, (height, width, channels), dtype=np.uint8)


def _gray3(gray: np.ndarray) -> np.ndarray:
    """The RGB image whose three channels all equal ``gray``."""
    return np.repeat(gray[:, :, None], 3, axis=2)


# -- sources -------------------------------------------------------------------------------------

def test_png_file_gives_exact_c_contiguous_rgb_uint8(tmp_path):
    pixels = _noise(30, 40)
    out = load_image(_save(tmp_path, pixels, "a.png"))
    assert out.shape == (30, 40, 3) and out.dtype == np.uint8
    assert out.flags.c_contiguous and out.flags.writeable
    np.testing.assert_array_equal(out, pixels)


def test_jpeg_file_is_decoded_to_its_colour(tmp_path):
    path = _save(tmp_path, np.full((24, 32, 3), (200, 100, 50), np.uint8), "a.jpg", quality=100)
    out = load_image(str(path))
    assert out.shape == (24, 32, 3)
    np.testing.assert_allclose(out.reshape(-1, 3).mean(0), (200, 100, 50), atol=2)


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview, io.BytesIO])
def test_encoded_bytes_and_file_objects_equal_the_file(tmp_path, wrap):
    path = _save(tmp_path, _noise(20, 18), "a.png")
    np.testing.assert_array_equal(load_image(wrap(path.read_bytes())), load_image(path))


def test_open_file_and_non_seekable_stream(tmp_path):
    path = _save(tmp_path, _noise(20, 18), "a.png")

    class Stream(io.RawIOBase):  # a pipe-like object: readable, not seekable
        def __init__(self, data: bytes) -> None:
            self._data = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def readinto(self, buffer) -> int:
            return self._data.readinto(buffer)

    with open(path, "rb") as f:
        from_file = load_image(f)
        assert not f.closed  # the caller's file stays the caller's
    np.testing.assert_array_equal(from_file, load_image(path))
    np.testing.assert_array_equal(load_image(Stream(path.read_bytes())), load_image(path))


def test_pil_image_input():
    pixels = _noise(20, 30)
    np.testing.assert_array_equal(load_image(Image.fromarray(pixels)), pixels)
    gray = Image.fromarray(pixels).convert("L")
    np.testing.assert_array_equal(load_image(gray), _gray3(np.asarray(gray)))


def test_real_lfw_image():
    try:
        path = data_dir() / "lfw" / "images" / "Abel_Pacheco" / "Abel_Pacheco_0001.jpg"
    except DatasetError:
        pytest.skip("shared data folder not available")
    if not path.exists():
        pytest.skip(f"{path} not available")
    out = load_image(path)
    assert out.shape == (250, 250, 3) and out.dtype == np.uint8
    assert 20 < out.mean() < 235  # a photo, not a blank


# -- EXIF orientation ----------------------------------------------------------------------------

@pytest.mark.parametrize("orientation", [1, 6])
def test_exif_orientation_is_applied(tmp_path, orientation):
    # 60 wide x 30 tall, blue with a red 15x15 block in the top-left corner
    pixels = np.zeros((30, 60, 3), np.uint8)
    pixels[:] = BLUE
    pixels[:15, :15] = RED
    img = Image.fromarray(pixels)
    exif = img.getexif()
    exif[0x0112] = orientation
    out = load_image(_save(tmp_path, img, "o.jpg", quality=95, exif=exif))
    if orientation == 1:
        assert out.shape == (30, 60, 3)
        red_at, blue_at = (5, 5), (5, 50)
    else:  # 6: displayed after a 90 degree clockwise turn, so top-left goes to top-right
        assert out.shape == (60, 30, 3)
        red_at, blue_at = (5, 25), (5, 5)
    np.testing.assert_allclose(out[red_at], RED, atol=12)
    np.testing.assert_allclose(out[blue_at], BLUE, atol=12)
    np.testing.assert_allclose(out[50 if orientation == 6 else 25, 5], BLUE, atol=12)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_image_shape_agrees_with_load_image_on_rotated_exif(tmp_path, orientation):
    img = Image.fromarray(np.zeros((30, 60, 3), np.uint8))  # 60 wide x 30 tall
    exif = img.getexif()
    exif[0x0112] = orientation
    path = _save(tmp_path, img, "o.jpg", quality=95, exif=exif)
    expected = (60, 30) if orientation in (5, 6, 7, 8) else (30, 60)
    assert image_shape(path) == expected
    assert image_shape(path) == load_image(path).shape[:2]


def test_image_shape_refuses_what_is_not_an_image(tmp_path):
    bad = tmp_path / "not.jpg"
    bad.write_bytes(b"plain text, no image")
    with pytest.raises(ImageError, match="not a recognised image"):
        image_shape(bad)
    with pytest.raises(ImageError, match="no such file"):
        image_shape(tmp_path / "missing.jpg")


# -- modes -----------------------------------------------------------------------------------------

def test_grayscale_l_png(tmp_path):
    gray = RNG.integers(0, 256, (17, 19), dtype=np.uint8)
    np.testing.assert_array_equal(load_image(_save(tmp_path, gray, "g.png")), _gray3(gray))


def test_bilevel_png(tmp_path):
    bits = np.zeros((16, 16), bool)
    bits[:, 8:] = True
    path = _save(tmp_path, Image.fromarray(bits).convert("1"), "b.png")
    assert Image.open(path).mode == "1"
    np.testing.assert_array_equal(load_image(path), _gray3(bits.astype(np.uint8) * 255))


def test_rgba_png_is_composited_onto_white(tmp_path):
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[:, :, :3] = (200, 100, 0)
    rgba[:, :, 3] = 255
    rgba[0, 0, 3] = 0
    rgba[0, 1, 3] = 128
    out = load_image(_save(tmp_path, rgba, "a.png"))
    assert tuple(out[1, 1]) == (200, 100, 0)  # opaque: unchanged
    assert tuple(out[0, 0]) == (255, 255, 255)  # transparent: white
    assert tuple(out[0, 1]) == (227, 177, 127)  # half: round(c * 128/255 + 255 * 127/255)


def test_gray_alpha_png(tmp_path):
    la = np.zeros((16, 16, 2), np.uint8)
    la[..., 0] = 100
    la[..., 1] = 255
    la[0, 0, 1] = 0
    path = _save(tmp_path, Image.fromarray(la, "LA"), "la.png")
    assert Image.open(path).mode == "LA"
    out = load_image(path)
    assert tuple(out[1, 1]) == (100, 100, 100) and tuple(out[0, 0]) == (255, 255, 255)


def test_palette_png_with_and_without_transparency(tmp_path):
    index = np.zeros((16, 16), np.uint8)
    index[:, 5:10] = 1
    index[:, 10:] = 2
    img = Image.fromarray(index, "P")
    img.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255])
    expected = np.array([RED, (0, 255, 0), BLUE], np.uint8)[index]
    np.testing.assert_array_equal(load_image(_save(tmp_path, img, "p.png")), expected)
    expected[:, 5:10] = 255  # index 1 (green) made transparent -> white
    out = load_image(_save(tmp_path, img, "pt.png", transparency=1))
    np.testing.assert_array_equal(out, expected)


def test_cmyk_tiff(tmp_path):
    cmyk = np.zeros((16, 16, 4), np.uint8)
    cmyk[:, 4:8, 0] = 255  # cyan
    cmyk[:, 8:12, 3] = 255  # black
    out = load_image(_save(tmp_path, Image.fromarray(cmyk, "CMYK"), "c.tif"))
    assert tuple(out[0, 0]) == (255, 255, 255)
    assert tuple(out[0, 5]) == (0, 255, 255)
    assert tuple(out[0, 9]) == (0, 0, 0)


def test_16_bit_grayscale_png_is_scaled_not_clipped(tmp_path):
    values = np.array([0, 255, 256, 0x1234, 0x8000, 0xFFFF], np.uint16)
    path = _save(tmp_path, np.tile(values, (16, 3)), "g16.png")
    assert Image.open(path).mode.startswith("I")  # really a 16-bit file
    out = load_image(path)
    np.testing.assert_array_equal(out[0, :6, 0], [0, 0, 1, 0x12, 0x80, 0xFF])
    np.testing.assert_array_equal(out[..., 0], out[..., 2])


def test_16_bit_rgb_png(tmp_path):
    row = np.tile(np.array([0x1234, 0x00FF, 0xFFFF], ">u2"), 16).tobytes()
    path = tmp_path / "rgb16.png"
    path.write_bytes(_png(16, 16, 16, 2, zlib.compress((b"\x00" + row) * 16)))
    out = load_image(path)
    assert out.shape == (16, 16, 3)
    assert (out == np.array([0x12, 0x00, 0xFF], np.uint8)).all()


def test_pil_int32_and_float_modes():
    ints = np.tile(np.array([0, 0x1234, 70_000, -5], np.int32), (16, 4))
    out = load_image(Image.fromarray(ints, "I"))
    np.testing.assert_array_equal(out[0, :4, 1], [0, 0x12, 0xFF, 0])
    floats = np.tile(np.array([0.4, 254.6, 300.0, -3.0], np.float32), (16, 4))
    out = load_image(Image.fromarray(floats, "F"))
    np.testing.assert_array_equal(out[0, :4, 1], [0, 255, 255, 0])


# -- arrays ----------------------------------------------------------------------------------------

def test_rgb_array_is_copied_and_made_contiguous():
    pixels = _noise(20, 30)
    out = load_image(pixels)
    np.testing.assert_array_equal(out, pixels)
    assert not np.shares_memory(out, pixels)
    flipped = pixels[:, ::-1]
    out = load_image(flipped)
    assert out.flags.c_contiguous
    np.testing.assert_array_equal(out, flipped)


@pytest.mark.parametrize(
    ("array", "expected"),
    [
        (np.full((16, 16), 7, np.uint8), 7),
        (np.full((16, 16, 1), 7, np.uint8), 7),
        (np.full((16, 16), 0x1234, np.uint16), 0x12),
        (np.full((16, 16, 3), 0xFFFF, np.uint16), 255),
        (np.ones((16, 16), bool), 255),
        (np.full((16, 16, 3), 0.2, np.float32), 51),
        (np.ones((16, 16), np.float64), 255),
        (np.zeros((16, 16, 3), np.float16), 0),
    ],
)
def test_array_dtypes_and_shapes(array, expected):
    out = load_image(array)
    assert out.shape == (16, 16, 3) and out.dtype == np.uint8
    assert (out == expected).all()


def test_rgba_array_is_composited_onto_white():
    rgba = np.zeros((16, 16, 4), np.uint8)
    rgba[..., :3] = (10, 20, 30)
    rgba[:8, :, 3] = 255
    out = load_image(rgba)
    assert tuple(out[0, 0]) == (10, 20, 30) and tuple(out[15, 0]) == (255, 255, 255)


@pytest.mark.parametrize(
    ("array", "expected"),
    [
        (np.zeros((16, 16, 2), np.uint8), "(H, W, 3)"),
        (np.zeros((2, 16, 16, 3), np.uint8), "(H, W, 3)"),
        (np.zeros(16, np.uint8), "(H, W, 3)"),
        (np.zeros((16, 16), np.int64), "uint8, uint16, bool or float"),
        (np.full((16, 16), 255.0), "[0, 1]"),
        (np.full((16, 16), -0.5), "[0, 1]"),
        (np.full((16, 16), np.nan), "[0, 1]"),
        (np.zeros((16, 8, 3), np.uint8), "at least 16 pixels"),
    ],
)
def test_unsupported_arrays(array, expected):
    with pytest.raises(ImageError, match=r"^<array>: ") as info:
        load_image(array)
    assert expected in str(info.value)


# -- refusals ----------------------------------------------------------------------------------

def _refused(source, *fragments: str, **kwargs) -> str:
    """Load ``source`` expecting an ImageError whose message holds every fragment."""
    with pytest.raises(ImageError) as info:
        load_image(source, **kwargs)
    message = str(info.value)
    assert "expected" in message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_missing_file_and_directory(tmp_path):
    _refused(tmp_path / "nope.jpg", str(tmp_path / "nope.jpg"), "no such file")
    _refused(tmp_path, str(tmp_path), "is a directory")


def test_empty_file_and_empty_bytes(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    _refused(tmp_path / "empty.jpg", "empty.jpg", "empty")
    _refused(b"", "<bytes>", "0 bytes")


def test_text_file_named_jpg(tmp_path):
    (tmp_path / "notes.jpg").write_text("this is not a picture\n")
    _refused(tmp_path / "notes.jpg", "notes.jpg", "not a recognised image")


def test_truncated_jpeg_is_refused(tmp_path):
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    full = _save(tmp_path, _noise(64, 64), "full.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(full[: len(full) // 2])
    _refused(tmp_path / "cut.jpg", "cut.jpg", "cannot decode", "truncated")
    _refused(full[:-20], "<bytes>", "truncated")


def test_too_small_image(tmp_path):
    _refused(_save(tmp_path, _noise(1, 1), "dot.png"), "dot.png", "1x1", "at least 16")
    assert load_image(_save(tmp_path, _noise(1, 1), "dot.png"), min_size=1).shape == (1, 1, 3)


@pytest.mark.parametrize(
    ("side", "max_pixels", "fragment"),
    [
        (20_000, DEFAULT_MAX_PIXELS, "too large"),  # beyond Pillow's own hard limit
        (10_000, 200_000_000, "too large"),  # in Pillow's warning band: refused, not warned
        (8_000, DEFAULT_MAX_PIXELS, "8000x8000"),  # under Pillow's limits: refused by ours
    ],
)
def test_decompression_bomb_refused_from_the_header(tmp_path, recwarn, side, max_pixels, fragment):
    # only the header claims the size: an IDAT of a few bytes, nowhere near side*side pixels;
    # decoding it would fail as truncated, so a size message shows the check came first
    path = tmp_path / "bomb.png"
    path.write_bytes(_png(side, side, 8, 2, zlib.compress(b"\x00" * 64)))
    assert path.stat().st_size < 200
    _refused(path, "bomb.png", fragment, max_pixels=max_pixels)
    assert not recwarn.list


def test_max_pixels_on_a_real_image(tmp_path):
    path = _save(tmp_path, _noise(100, 100), "a.png")
    _refused(path, "10000 pixels", "at most 5000", max_pixels=5000)
    _refused(_noise(100, 100), "<array>", "at most 5000", max_pixels=5000)


def test_name_labels_the_errors():
    _refused(b"GIF89a garbage", "upload.gif", name="upload.gif")
    _refused(io.BytesIO(b"junk"), "camera-7", name="camera-7")


def test_unsupported_source_type():
    _refused(12345, "int")


@pytest.mark.parametrize("kwargs", [{"max_pixels": 0}, {"min_size": -1}, {"min_size": 2.5}, {"max_pixels": True}])
def test_invalid_limits(kwargs):
    with pytest.raises(ConfigError, match=next(iter(kwargs))):
        load_image(np.zeros((16, 16), np.uint8), **kwargs)
