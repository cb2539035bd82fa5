"""Reading images from any source into one form: a C-contiguous ``uint8`` RGB array.

Everything that enters the pipeline goes through :func:`load_image`, so the rest of the package
sees a single colour order (RGB), a single layout ``(H, W, 3)`` and a single dtype, with the
EXIF orientation already applied. Bad input of any kind (missing, empty, truncated, not an image,
too small, too large, an unsupported array) is reported as :class:`~xaiface.errors.ImageError`
naming the file and what was expected, never as a traceback from inside Pillow.

Conventions chosen here:

- **Alpha** (RGBA, LA, PA, palette or RGB/L with a transparent colour, ``(H, W, 4)`` arrays) is
  composited onto **white**, not dropped: the colour under a fully transparent pixel is
  arbitrary (often black), and a face cut-out on white is what a viewer shows.
- **16-bit** samples (``uint16`` arrays, ``I;16*`` images such as 16-bit grayscale PNG) keep
  their top byte (``value >> 8``): the full range maps onto 0..255, nothing is clipped. Mode
  ``I`` images are taken as 16-bit samples too (what Pillow gives for 16-bit PNG/PGM), values
  outside 0..65535 clipped.
- Float **arrays** must lie in [0, 1]; float **Pillow images** (mode ``F``) follow Pillow's own
  convention of 0..255 values (rounded and clipped).
- Arrays are taken as RGB(A) already; a BGR array from OpenCV must be flipped by the caller
  (``arr[..., ::-1]``).
- Multi-frame files (GIF, TIFF) give their first frame; ICC colour profiles are not applied.

Limits: an encoded image is refused from its header, before any pixel is decoded, when it has
more than ``max_pixels`` pixels (default :data:`DEFAULT_MAX_PIXELS`, 50 Mpx) or when decoding it
would take more than ``max_bytes`` of memory (default :data:`DEFAULT_MAX_BYTES`, 1 GiB; see
:func:`decoded_bytes`: 16-bit and 32-bit modes count 2 and 4 bytes a sample; only the first
frame of a multi-frame file is decoded, so only it counts). Conversion to RGB works in place or
in row blocks, so the memory a load takes stays close to that estimate.
"""
from __future__ import annotations

import io
import os
import stat
import warnings
from pathlib import Path
from typing import BinaryIO, Union

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import ConfigError, ImageError

DEFAULT_MAX_PIXELS = 50_000_000
"""Largest width x height accepted by default, checked from the header before decoding."""

DEFAULT_MAX_BYTES = 1 << 30
"""Largest estimated memory (bytes) decoding one image may take by default (see :func:`decoded_bytes`)."""

DEFAULT_MIN_SIZE = 16
"""Smallest side (pixels) accepted by default: below this no face can be found."""

ImageSource = Union[str, os.PathLike, bytes, bytearray, memoryview, BinaryIO, np.ndarray, Image.Image]
"""Anything :func:`load_image` accepts."""

_FORMATS = "JPEG, PNG, BMP, GIF, TIFF or WebP"
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def decoded_bytes(width: int, height: int, mode: str) -> int:
    """Estimated peak memory (bytes) of decoding one frame of ``mode`` into the RGB result.

    Pillow's buffer holds 1 byte a pixel for modes ``1``, ``L`` and ``P``, 2 for ``I;16*`` and 4
    for every other mode (``I``, ``F`` and all multi-band modes, ``RGB`` included); the estimate
    is two such buffers (the decoded frame and one converted or re-oriented copy) plus 6 bytes a
    pixel (the ``uint8`` RGB result and its transient copy).
    """
    pb = 1 if mode in ("1", "L", "P") else 2 if mode.startswith("I;16") else 4
    return int(width) * int(height) * (2 * pb + 6)


def load_image(
    source: ImageSource,
    *,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    min_size: int = DEFAULT_MIN_SIZE,
    max_bytes: int = DEFAULT_MAX_BYTES,
    name: str | None = None,
) -> np.ndarray:
    """Read an image and return it as RGB pixels.

    Args:
        source: a path (``str`` or ``os.PathLike``); encoded file bytes (``bytes``, ``bytearray``,
            ``memoryview``); a binary file object; a ``PIL.Image.Image``; or a numpy array of shape
            ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or ``(H, W, 4)`` taken as gray / RGB / RGBA,
            of dtype ``uint8``, ``uint16`` (top byte kept), ``bool`` or float in [0, 1].
        max_pixels: largest ``width * height`` accepted; for encoded images it is checked from
            the header before any pixel is decoded (Pillow's own decompression-bomb limit,
            about 179 megapixels, applies as well).
        min_size: smallest width and height accepted, in pixels.
        max_bytes: largest estimated decoding memory accepted (:func:`decoded_bytes`), checked
            from the header before decoding, for encoded files and Pillow images (an array is
            already in memory: only ``max_pixels`` applies to it).
        name: how to call the image in error messages (default: the path, ``"<bytes>"``, the file
            object's ``name``, ``"<array>"`` or ``"<PIL image>"``).

    Returns:
        A new, writeable, C-contiguous ``uint8`` array of shape ``(H, W, 3)`` in RGB order, with
        the EXIF orientation applied and alpha composited onto white (see the module docstring).

    Raises:
        ImageError: the source is missing, a directory, empty, not an image, truncated or
            damaged, of an unsupported mode, shape or dtype, smaller than ``min_size`` on a
            side, larger than ``max_pixels`` or would take more than ``max_bytes`` to decode.
        ConfigError: ``max_pixels``, ``min_size`` or ``max_bytes`` is not a positive integer.

    Example:
        >>> import numpy as np
        >>> load_image(np.zeros((32, 48), dtype=bool)).shape
        (32, 48, 3)
    """
    for arg, value in (("max_pixels", max_pixels), ("min_size", min_size), ("max_bytes", max_bytes)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ConfigError(f"load_image: {arg}={value!r}; expected a positive integer")
    limits = (max_pixels, min_size, max_bytes)

    if isinstance(source, np.ndarray):
        return _from_array(source, name or "<array>", max_pixels, min_size)
    if isinstance(source, Image.Image):
        return _from_pil(source, name or getattr(source, "filename", None) or "<PIL image>", *limits)
    if isinstance(source, (bytes, bytearray, memoryview)):
        label = name or "<bytes>"
        if memoryview(source).nbytes == 0:
            raise ImageError(f"{label}: no data (0 bytes); expected an encoded {_FORMATS} image")
        return _decode(io.BytesIO(source), label, *limits)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        label = name or str(path)
        _check_file(path, label)
        return _decode(path, label, *limits)
    if hasattr(source, "read"):
        label = name or str(getattr(source, "name", "<file>"))
        return _decode(_seekable(source, label), label, *limits)
    raise ImageError(
        f"{name or '<source>'}: cannot read an image from an object of type {type(source).__name__}; expected a path, "
        "bytes, a binary file object, a numpy array or a PIL image"
    )


_TRANSPOSING_ORIENTATIONS = (5, 6, 7, 8)  # EXIF orientations that swap width and height


def image_shape(path: str | os.PathLike) -> tuple[int, int]:
    """``(height, width)`` of an image file as :func:`load_image` returns it, from the header only.

    The EXIF orientation is honoured the way :func:`load_image` applies it (``ImageOps.exif_transpose``):
    orientations 5-8 (a quarter turn, with or without a mirror) swap width and height. No pixel is
    decoded.

    Raises:
        ImageError: the file is missing, empty, or not a readable image.
    """
    label = str(path)
    fp = Path(path)
    _check_file(fp, label)
    try:
        with Image.open(fp) as img:
            orientation = img.getexif().get(0x0112, 1)  # 0x0112: the EXIF Orientation tag
            h, w = img.height, img.width
    except UnidentifiedImageError:
        raise ImageError(f"{label}: not a recognised image; expected {_FORMATS} data") from None
    except Exception as exc:  # any parser failure on untrusted bytes is bad input, not a bug
        raise ImageError(f"{label}: cannot read the image header ({exc}); expected {_FORMATS} data") from exc
    return (w, h) if orientation in _TRANSPOSING_ORIENTATIONS else (h, w)


def _check_file(path: Path, label: str) -> None:
    """Fail early, with a plain message, on a path that cannot hold an image."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise ImageError(f"{label}: no such file; expected an image file ({_FORMATS})") from None
    except OSError as exc:
        raise ImageError(f"{label}: cannot access ({exc.strerror or exc}); expected a readable image file") from exc
    if stat.S_ISDIR(st.st_mode):
        raise ImageError(f"{label}: is a directory; expected an image file ({_FORMATS})")
    if not stat.S_ISREG(st.st_mode):
        raise ImageError(f"{label}: is not a regular file; expected an image file ({_FORMATS})")
    if st.st_size == 0:
        raise ImageError(f"{label}: file is empty (0 bytes); expected an image file ({_FORMATS})")


def _seekable(f: BinaryIO, label: str) -> BinaryIO:
    """Return ``f`` if Pillow can seek in it, else its remaining bytes in memory."""
    try:
        if f.seekable():
            return f
    except (AttributeError, OSError, ValueError):
        pass
    try:
        data = f.read()
    except (OSError, ValueError) as exc:
        raise ImageError(f"{label}: cannot read from the file object ({exc}); expected a readable binary file") from exc
    if not isinstance(data, (bytes, bytearray)):
        raise ImageError(f"{label}: file object returned {type(data).__name__}; expected a file opened in binary mode")
    return io.BytesIO(data)


def _decode(fp: Path | BinaryIO, label: str, max_pixels: int, min_size: int, max_bytes: int) -> np.ndarray:
    """Open encoded image data lazily (header only), check its size, then decode it."""
    try:
        with warnings.catch_warnings():
            # Pillow only warns between its two limits; treat that as the refusal it should be
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(fp)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageError(f"{label}: image too large ({exc}); expected at most {max_pixels} pixels") from exc
    except UnidentifiedImageError:
        raise ImageError(f"{label}: not a recognised image; expected {_FORMATS} data") from None
    except OSError as exc:
        raise ImageError(f"{label}: cannot read ({exc}); expected a readable image file") from exc
    except Exception as exc:  # any parser failure on untrusted bytes is bad input, not a bug
        raise ImageError(f"{label}: malformed image header ({exc}); expected {_FORMATS} data") from exc
    with img:
        return _from_pil(img, label, max_pixels, min_size, max_bytes)


def _from_pil(img: Image.Image, label: str, max_pixels: int, min_size: int, max_bytes: int) -> np.ndarray:
    """Check the size and memory (known before decoding), decode, orient and convert a Pillow image."""
    _check_size(img.width, img.height, label, max_pixels, min_size)
    need = decoded_bytes(img.width, img.height, img.mode)
    if need > max_bytes:
        raise ImageError(
            f"{label}: image of {img.width}x{img.height} pixels, mode {img.mode}, would take about "
            f"{need / 2**20:.0f} MiB to decode; expected at most {max_bytes / 2**20:.0f} MiB (max_bytes)"
        )
    try:
        img.load()  # forces decoding: Pillow reports truncated or damaged data only here
        img = ImageOps.exif_transpose(img)
    except Exception as exc:  # decoder errors are OSError, SyntaxError, ValueError, struct.error...
        raise ImageError(
            f"{label}: cannot decode the image data ({exc}); expected a complete, undamaged image file"
        ) from exc
    return np.ascontiguousarray(_pil_to_rgb(img, label))


def _pil_to_rgb(img: Image.Image, label: str) -> np.ndarray:
    """Convert a decoded Pillow image of any mode to a ``uint8`` ``(H, W, 3)`` RGB array."""
    if img.mode in _SIXTEEN_BIT_MODES:  # uint16 (I;16*) or int32 (I) samples, never a wider copy
        samples = np.asarray(img)
        if samples.dtype.kind == "i":
            samples = np.clip(samples, 0, 0xFFFF)
        return _gray_to_rgb((samples >> 8).astype(np.uint8))
    if img.mode == "L" and "transparency" not in img.info:
        return _gray_to_rgb(np.asarray(img))
    if img.mode == "F":
        gray = np.clip(np.rint(np.nan_to_num(np.array(img, dtype=np.float32))), 0, 255).astype(np.uint8)
        return _gray_to_rgb(gray)
    has_alpha = "A" in img.getbands() or "a" in img.getbands() or "transparency" in img.info
    try:
        if has_alpha:
            return _composite_on_white(np.array(img.convert("RGBA")))
        return np.array(img.convert("RGB"))
    except (ValueError, OSError) as exc:
        raise ImageError(
            f"{label}: cannot convert image mode {img.mode} to RGB ({exc}); expected a colour or grayscale image"
        ) from exc


def _from_array(arr: np.ndarray, label: str, max_pixels: int, min_size: int) -> np.ndarray:
    """Convert a gray / RGB / RGBA array (taken as RGB order) to a new ``uint8`` RGB array."""
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 3, 4)):
        raise ImageError(f"{label}: array of shape {arr.shape}; expected (H, W), (H, W, 1), (H, W, 3) or (H, W, 4)")
    _check_size(arr.shape[1], arr.shape[0], label, max_pixels, min_size)
    pixels = _array_to_uint8(arr, label)
    if pixels.ndim == 2 or pixels.shape[2] == 1:
        return _gray_to_rgb(pixels.reshape(pixels.shape[:2]))
    if pixels.shape[2] == 4:
        return _composite_on_white(pixels)
    # the caller keeps its array: never hand back a view of it
    return np.array(pixels, order="C") if pixels is arr else np.ascontiguousarray(pixels)


def _array_to_uint8(arr: np.ndarray, label: str) -> np.ndarray:
    """Map an array's values onto 0..255 according to its dtype (see :func:`load_image`)."""
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * np.uint8(255)
    if arr.dtype == np.uint16:
        return (arr >> 8).astype(np.uint8)
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise ImageError(f"{label}: float array holds NaN or infinite values; expected values in [0, 1]")
        if arr.size and (arr.min() < 0 or arr.max() > 1):
            raise ImageError(
                f"{label}: float array has values in [{arr.min():g}, {arr.max():g}]; expected values in [0, 1] "
                "(divide 0..255 data by 255 or pass it as uint8)"
            )
        return np.rint(arr.astype(np.float64) * 255).astype(np.uint8)
    raise ImageError(f"{label}: array of dtype {arr.dtype}; expected uint8, uint16, bool or float in [0, 1]")


def _check_size(width: int, height: int, label: str, max_pixels: int, min_size: int) -> None:
    """Refuse images too small for a face or too large to decode safely."""
    if width * height > max_pixels:
        raise ImageError(
            f"{label}: image of {width}x{height} = {width * height} pixels; expected at most {max_pixels} pixels"
        )
    if min(width, height) < min_size:
        raise ImageError(f"{label}: image of {width}x{height} pixels; expected at least {min_size} pixels on each side")


def _gray_to_rgb(gray: np.ndarray) -> np.ndarray:
    """Repeat a ``(H, W)`` gray array into three channels."""
    return np.repeat(gray[:, :, None], 3, axis=2)


def _composite_on_white(rgba: np.ndarray, rows: int = 256) -> np.ndarray:
    """Composite a ``uint8`` ``(H, W, 4)`` RGBA array onto white, rounding to nearest.

    Works in ``uint16`` (``rgb * a + 255 * (255 - a) + 127 <= 65152``) on blocks of ``rows``
    rows, so the temporaries stay small beside the result.
    """
    out = np.empty(rgba.shape[:2] + (3,), np.uint8)
    for y in range(0, rgba.shape[0], rows):
        block = rgba[y:y + rows]
        rgb = block[..., :3].astype(np.uint16)
        alpha = block[..., 3:].astype(np.uint16)
        rgb *= alpha
        rgb += 255 * (255 - alpha) + 127
        out[y:y + rows] = rgb // 255
    return out
