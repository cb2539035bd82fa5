"""Influencing factors as image transforms: ``get_transform(name, level, **params)(image)``.

Each factor is a deterministic, parameterised function of an RGB uint8 photo, applied *before*
detection (D5.2 §2 places the influencing factors in image acquisition/preprocessing and in
coding/decoding). A factor has one *level* (the parameter a study sweeps: JPEG quality, a scale
factor, a filter strength) and optional fixed parameters; the registry records for each factor
its family, what the level means, which direction degrades, the levels a study sweeps by
default and two levels for a gallery figure.

Families:

* ``codec``: ``jpeg`` (quality), ``jpeg2000`` (compression ratio), ``jpeg2000-psnr`` (PSNR
  target in dB), ``webp`` (quality), ``avif`` (quality), with Pillow's codecs (libjpeg-turbo,
  OpenJPEG, libwebp, libavif). A codec transform's output *is* the decoded bitstream and
  :attr:`Transformed.nbytes` is the bitstream's exact size, so bits per pixel are measured, not
  estimated. Learned codecs (JPEG AI) have no offline weights: :class:`CallableCodec` and
  :class:`CommandCodec` plug a user's codec in (:func:`register_codec`).
* ``resolution``: down-scale by a factor and back to the original size, with a choice of kernels.
* ``enhancement``: ``sharpen`` (unsharp mask), ``contrast``, ``gamma``, ``histeq`` (luma histogram
  equalisation), ``clahe``, ``denoise`` (non-local means).
* ``beautification``: ``smooth-skin`` (edge-preserving bilateral filter inside a feathered skin
  mask from dlib's 68 landmarks), ``brighten``, ``enlarge-eyes`` and ``slim-face`` (local
  landmark-driven warps). They find the face themselves (dlib's HOG detector and 68-point
  predictor, as beauty apps do) and leave a photo without a face unchanged
  (``info["face_found"] = False``).

:class:`Compose` chains transforms; its ``nbytes`` is that of the last codec in the chain.
"""
from __future__ import annotations

import io
import math
import shlex
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import ConfigError, ImageError
from ..registry import Registry

# ---------------------------------------------------------------------------------------------
# the contract


@dataclass
class Transformed:
    """A transformed photo.

    Attributes:
        image: ``(H, W, 3)`` uint8 RGB, the same size as the input.
        nbytes: for codecs, the exact size in bytes of the bitstream ``image`` was decoded from;
            ``None`` for pixel operations.
        info: what the transform measured or decided (e.g. ``face_found`` for beautification).
    """

    image: np.ndarray
    nbytes: int | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def bpp(self) -> float | None:
        """Bits per pixel of the bitstream (``None`` for pixel operations)."""
        if self.nbytes is None:
            return None
        h, w = self.image.shape[:2]
        return 8.0 * self.nbytes / (h * w)


class Transform:
    """A deterministic image transform. Subclasses implement :meth:`apply`.

    Attributes:
        name: the factor's registered name; level: the swept parameter's value;
        params: the other parameters.
    """

    name = "transform"
    family = "other"

    def __init__(self, level: float, **params: Any):
        self.level = level
        self.params = params

    def apply(self, image: np.ndarray) -> Transformed:  # pragma: no cover - abstract
        raise NotImplementedError

    def __call__(self, image: np.ndarray) -> Transformed:
        img = _check_image(image)
        out = self.apply(img)
        if out.image.shape != img.shape or out.image.dtype != np.uint8:
            raise ImageError(f"transform {self.describe()} returned {out.image.shape} {out.image.dtype}, "
                             f"expected {img.shape} uint8")
        return out

    def config(self) -> dict[str, Any]:
        return {"factor": self.name, "level": self.level, "params": dict(sorted(self.params.items()))}

    def describe(self) -> str:
        extra = "".join(f",{k}={v}" for k, v in sorted(self.params.items()))
        return f"{self.name}={self.level}{extra}"

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.describe()}>"


def _check_image(image: Any) -> np.ndarray:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ImageError("transforms take an RGB uint8 array (H, W, 3) (use xaiface.io.load_image); got "
                         f"{type(image).__name__} {getattr(image, 'shape', '')} {getattr(image, 'dtype', '')}")
    return np.ascontiguousarray(image)


@dataclass(frozen=True)
class FactorInfo:
    """Registry metadata of a factor.

    Attributes:
        name, family: the factor and its family (``codec``, ``resolution``, ``enhancement``,
            ``beautification``, ``plugin``).
        level: what the level means (e.g. ``"quality 1-95"``).
        degrade: ``"lower"`` when a lower level degrades more (quality, scale), ``"higher"``
            when a higher one does (compression ratio, strength).
        default_levels: levels a study sweeps by default.
        gallery_levels: a mild and a strong level for figures.
        description: one line.
        factory: ``(level, **params) -> Transform``.
        params: the fixed parameters and their defaults.
    """

    name: str
    family: str
    level: str
    degrade: str
    default_levels: tuple[float, ...]
    gallery_levels: tuple[float, float]
    description: str
    factory: Callable[..., Transform]
    params: dict[str, Any] = field(default_factory=dict)


#: every factor's :class:`FactorInfo` by name (the built-ins are registered below, in this module)
FACTORS: Registry[FactorInfo] = Registry("factor", unknown_error=ConfigError)


def register_factor(name: str, family: str, level: str, degrade: str, default_levels: Sequence[float],
                    gallery_levels: Sequence[float], description: str, params: dict[str, Any] | None = None):
    """Class decorator registering a :class:`Transform` subclass as factor ``name``."""
    if degrade not in ("lower", "higher"):
        raise ConfigError(f"degrade must be 'lower' or 'higher', got {degrade!r}")

    def deco(cls: type) -> type:
        FACTORS.register(name, FactorInfo(name, family, level, degrade, tuple(float(v) for v in default_levels),
                                          (float(gallery_levels[0]), float(gallery_levels[1])), description, cls,
                                          dict(params or {})))
        cls.name = name
        cls.family = family
        return cls

    return deco


def list_factors(family: str | None = None, pattern: str = "*") -> list[str]:
    """Registered factor names (of one ``family``, when given) matching a shell-style wildcard, sorted."""
    return [n for n in FACTORS.list(pattern) if family is None or FACTORS.get(n).family == family]


def factor_info(name: str) -> FactorInfo:
    """A factor's :class:`FactorInfo` (ConfigError naming the registered factors when unknown)."""
    return FACTORS.get(name)


def get_transform(name: str, level: float, **params: Any) -> Transform:
    """The transform of factor ``name`` at ``level`` (unknown parameters are an error)."""
    info = factor_info(name)
    unknown = set(params) - set(info.params)
    if unknown:
        raise ConfigError(f"factor {name!r} takes parameters {sorted(info.params) or 'none'}, got {sorted(unknown)}")
    return info.factory(level, **{**info.params, **params})


def parse_spec(spec: str) -> Transform:
    """``"jpeg=30"`` or ``"resolution=0.25,kernel=bilinear"`` -> a transform.

    Several specs joined by ``+`` compose left to right: ``"resolution=0.5+jpeg=50"``.
    """
    parts = [s.strip() for s in spec.split("+") if s.strip()]
    if not parts:
        raise ConfigError(f"empty transform spec {spec!r}")
    ts = []
    for part in parts:
        items = [x.strip() for x in part.split(",")]
        if "=" not in items[0]:
            raise ConfigError(f"transform spec {part!r} must start with FACTOR=LEVEL (e.g. jpeg=30)")
        name, level = items[0].split("=", 1)
        params = {}
        for it in items[1:]:
            if "=" not in it:
                raise ConfigError(f"transform parameter {it!r} in {part!r} must be NAME=VALUE")
            k, v = it.split("=", 1)
            params[k.strip()] = parse_value(v.strip())
        ts.append(get_transform(name.strip(), _parse_level(level, part), **params))
    return ts[0] if len(ts) == 1 else Compose(ts)


def _parse_level(text: str, spec: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ConfigError(f"level {text!r} in {spec!r} is not a number") from None


def parse_value(v: str) -> Any:
    """A parameter's value as written in a spec or on the command line: an int, else a float, else the text."""
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return v


class Compose(Transform):
    """Transforms applied in order; ``nbytes`` is the last codec's, ``info`` merges all."""

    name = "compose"
    family = "compose"

    def __init__(self, transforms: Sequence[Transform]):
        super().__init__(0.0)
        self.transforms = list(transforms)
        if not self.transforms:
            raise ConfigError("Compose needs at least one transform")

    def apply(self, image: np.ndarray) -> Transformed:
        nbytes, info = None, {}
        for t in self.transforms:
            r = t(image)
            image = r.image
            nbytes = r.nbytes if r.nbytes is not None else nbytes
            info.update({f"{t.name}.{k}": v for k, v in r.info.items()})
        return Transformed(image, nbytes, info)

    def config(self) -> dict[str, Any]:
        return {"factor": "compose", "transforms": [t.config() for t in self.transforms]}

    def describe(self) -> str:
        return "+".join(t.describe() for t in self.transforms)


# ---------------------------------------------------------------------------------------------
# codecs


class Codec(Transform):
    """A lossy codec: :meth:`encode` to a bitstream, :meth:`decode` back to pixels.

    The transform's output is ``decode(encode(image))`` and ``nbytes = len(encode(image))``.
    """

    family = "codec"

    def encode(self, image: np.ndarray) -> bytes:  # pragma: no cover - abstract
        raise NotImplementedError

    def decode(self, data: bytes) -> np.ndarray:
        from PIL import Image

        try:
            with Image.open(io.BytesIO(data)) as im:
                return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
        except Exception as e:  # noqa: BLE001 - a codec failure is reported, not a crash
            raise ImageError(f"{self.describe()}: cannot decode its own bitstream ({e})") from None

    def apply(self, image: np.ndarray) -> Transformed:
        data = self.encode(image)
        out = self.decode(data)
        if out.shape != image.shape:
            raise ImageError(f"{self.describe()}: decoded {out.shape}, encoded {image.shape}")
        return Transformed(out, len(data), {})


def _pil_encode(image: np.ndarray, fmt: str, **kwargs: Any) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, fmt, **kwargs)
    return buf.getvalue()


@register_factor("jpeg", "codec", "quality 1-100 (libjpeg scale)", "lower", (90, 70, 50, 30, 10), (30, 5),
                 "JPEG (Pillow / libjpeg-turbo) at a quality; chroma subsampling as libjpeg's default (4:2:0)",
                 {"subsampling": -1})
class JPEG(Codec):
    def __init__(self, level: float, subsampling: int = -1):
        if not 1 <= level <= 100:
            raise ConfigError(f"JPEG quality must be within 1..100, got {level}")
        super().__init__(level, subsampling=int(subsampling))

    def encode(self, image: np.ndarray) -> bytes:
        return _pil_encode(image, "JPEG", quality=int(round(self.level)), subsampling=self.params["subsampling"])


class _OpenJPEG(Codec):
    """JPEG 2000 (OpenJPEG, irreversible 9/7 wavelet), one quality layer of the subclass's mode."""

    mode = "rates"
    minimum, what = 1.0, "compression ratio must be > 1"

    def __init__(self, level: float):
        if not level > self.minimum:
            raise ConfigError(f"JPEG 2000 {self.what}, got {level}")
        super().__init__(level)

    def encode(self, image: np.ndarray) -> bytes:
        return _pil_encode(image, "JPEG2000", quality_mode=self.mode, quality_layers=[float(self.level)], irreversible=True)


@register_factor("jpeg2000", "codec", "compression ratio (uncompressed 24-bit size / bitstream size)", "higher",
                 (10, 25, 50, 100, 200), (50, 200),
                 "JPEG 2000 (OpenJPEG, irreversible 9/7 wavelet) at a compression ratio", {})
class JPEG2000(_OpenJPEG):
    mode = "rates"
    minimum, what = 1.0, "compression ratio must be > 1"


@register_factor("jpeg2000-psnr", "codec", "target PSNR in dB (OpenJPEG rate allocation)", "lower",
                 (45, 40, 35, 30, 25), (35, 25),
                 "JPEG 2000 (OpenJPEG, irreversible) at a PSNR target; OpenJPEG hits it within about 0.3 dB", {})
class JPEG2000PSNR(_OpenJPEG):
    mode = "dB"
    minimum, what = 0.0, "PSNR target must be > 0 dB"


@register_factor("webp", "codec", "quality 0-100", "lower", (90, 70, 50, 30, 10), (30, 5),
                 "WebP (libwebp, lossy, method 4)", {"method": 4})
class WebP(Codec):
    def __init__(self, level: float, method: int = 4):
        if not 0 <= level <= 100:
            raise ConfigError(f"WebP quality must be within 0..100, got {level}")
        super().__init__(level, method=int(method))

    def encode(self, image: np.ndarray) -> bytes:
        return _pil_encode(image, "WEBP", quality=int(round(self.level)), method=self.params["method"])


@register_factor("avif", "codec", "quality 0-100", "lower", (90, 70, 50, 30, 10), (30, 5),
                 "AVIF (libavif / AV1 intra) at a quality, speed 6, 4:2:0", {"speed": 6})
class AVIF(Codec):
    def __init__(self, level: float, speed: int = 6):
        if not 0 <= level <= 100:
            raise ConfigError(f"AVIF quality must be within 0..100, got {level}")
        super().__init__(level, speed=int(speed))

    def encode(self, image: np.ndarray) -> bytes:
        return _pil_encode(image, "AVIF", quality=int(round(self.level)), speed=self.params["speed"], subsampling="4:2:0")


class CallableCodec(Codec):
    """A user's codec as two Python callables.

    Args:
        name: the factor name it is registered under.
        encode: ``(image uint8 (H, W, 3), level) -> bytes`` (the bitstream).
        decode: ``(bytes) -> image uint8 (H, W, 3)``.
        level: the codec's level (its meaning is the codec's).
    """

    family = "plugin"

    def __init__(self, level: float, *, name: str, encode: Callable[[np.ndarray, float], bytes],
                 decode: Callable[[bytes], np.ndarray]):
        super().__init__(level)
        self.name = name
        self._enc, self._dec = encode, decode

    def encode(self, image: np.ndarray) -> bytes:
        data = self._enc(image, self.level)
        if not isinstance(data, (bytes, bytearray)):
            raise ImageError(f"codec {self.name}: encode returned {type(data).__name__}, expected bytes")
        return bytes(data)

    def decode(self, data: bytes) -> np.ndarray:
        return _check_image(np.asarray(self._dec(data)))


class CommandCodec(Codec):
    """A user's codec as two external commands (e.g. the JPEG AI reference software).

    Each command is a template with ``{input}``, ``{output}`` and ``{level}`` fields, split like
    a shell line (no shell runs). The encoder reads a lossless PNG ``{input}`` and writes the
    bitstream ``{output}``; the decoder reads that bitstream and writes a PNG (or any image
    Pillow reads). ``nbytes`` is the size of the encoder's output file.

    Example::

        register_codec("jpeg-ai", CommandCodec.factory(
            encode="python -m jpegai.encode --input {input} --output {output} --target-bpp {level}",
            decode="python -m jpegai.decode --input {input} --output {output}"),
            level="target bits per pixel", degrade="lower", default_levels=(0.75, 0.25, 0.12))
    """

    family = "plugin"

    def __init__(self, level: float, *, name: str, encode: str, decode: str, suffix: str = ".bin", timeout: float = 600):
        super().__init__(level)
        self.name = name
        self.encode_cmd, self.decode_cmd, self.suffix, self.timeout = encode, decode, suffix, timeout

    @classmethod
    def factory(cls, encode: str, decode: str, suffix: str = ".bin", timeout: float = 600) -> Callable[..., "CommandCodec"]:
        def make(level: float, *, name: str) -> "CommandCodec":
            return cls(level, name=name, encode=encode, decode=decode, suffix=suffix, timeout=timeout)

        return make

    def _run(self, template: str, src: Path, dst: Path) -> None:
        argv = [a.format(input=str(src), output=str(dst), level=self.level) for a in shlex.split(template)]
        try:
            r = subprocess.run(argv, capture_output=True, text=True, timeout=self.timeout)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise ImageError(f"codec {self.name}: cannot run {argv[0]!r} ({e})") from None
        if r.returncode != 0:
            raise ImageError(f"codec {self.name}: {' '.join(argv)} failed with exit {r.returncode}: {r.stderr.strip()[-500:]}")
        if not dst.is_file():
            raise ImageError(f"codec {self.name}: {' '.join(argv)} wrote no file {dst}")

    def apply(self, image: np.ndarray) -> Transformed:
        from PIL import Image

        with tempfile.TemporaryDirectory(prefix="xaiface-codec-") as d:
            src, bit, dec = Path(d) / "input.png", Path(d) / f"stream{self.suffix}", Path(d) / "decoded.png"
            Image.fromarray(image).save(src)
            self._run(self.encode_cmd, src, bit)
            nbytes = bit.stat().st_size
            self._run(self.decode_cmd, bit, dec)
            try:
                with Image.open(dec) as im:
                    out = np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
            except Exception as e:  # noqa: BLE001
                raise ImageError(f"codec {self.name}: decoder output {dec.name} is not an image ({e})") from None
        if out.shape != image.shape:
            raise ImageError(f"codec {self.name}: decoded {out.shape}, encoded {image.shape}")
        return Transformed(out, nbytes, {})


def register_codec(name: str, factory: Callable[..., Codec], *, level: str = "codec level", degrade: str = "lower",
                   default_levels: Sequence[float] = (), gallery_levels: Sequence[float] | None = None,
                   description: str = "user codec", replace: bool = False) -> None:
    """Register a plug-in codec as a factor (``factory(level, name=...) -> Codec``).

    ``factory`` is typically ``CommandCodec.factory(encode=..., decode=...)`` or a
    ``functools.partial(CallableCodec, encode=..., decode=...)``.

    Raises:
        ConfigError: ``name`` is a registered factor already (unless ``replace``).
    """
    levels = tuple(float(v) for v in default_levels)
    gallery = tuple(gallery_levels) if gallery_levels else ((levels[0], levels[-1]) if levels else (0.0, 0.0))

    def make(lv: float) -> Transform:
        t = factory(lv, name=name)
        if not isinstance(t, Codec):
            raise ConfigError(f"codec factory for {name!r} returned {type(t).__name__}, expected a Codec")
        return t

    FACTORS.register(name, FactorInfo(name, "plugin", level, degrade, levels, (float(gallery[0]), float(gallery[1])),
                                      description, make, {}), replace=replace)


def unregister_factor(name: str) -> None:
    FACTORS.unregister(name)


# ---------------------------------------------------------------------------------------------
# resolution

_KERNELS = {"nearest": 0, "box": 4, "bilinear": 2, "hamming": 5, "bicubic": 3, "lanczos": 1}


@register_factor("resolution", "resolution", "scale factor (0, 1]: down-scale then back to the original size", "lower",
                 (0.5, 0.35, 0.25, 0.18, 0.125), (0.35, 0.125),
                 "down-scale by a factor and up-scale back (Pillow resampling; kernels nearest, box, bilinear, "
                 "hamming, bicubic, lanczos)", {"kernel": "bicubic", "up_kernel": "bicubic"})
class Resolution(Transform):
    """``scale`` < 1 down-scales to ``round(W*scale) x round(H*scale)`` (at least 1 px) with
    ``kernel`` (Pillow's resize, which low-pass filters with the kernel's support, i.e. antialiased),
    then up-scales back with ``up_kernel``; the face keeps its photo coordinates."""

    def __init__(self, level: float, kernel: str = "bicubic", up_kernel: str = "bicubic"):
        if not 0 < level <= 1:
            raise ConfigError(f"resolution scale must be within (0, 1], got {level}")
        for k in (kernel, up_kernel):
            if k not in _KERNELS:
                raise ConfigError(f"unknown resampling kernel {k!r}; known: {', '.join(_KERNELS)}")
        super().__init__(level, kernel=kernel, up_kernel=up_kernel)

    def apply(self, image: np.ndarray) -> Transformed:
        from PIL import Image

        h, w = image.shape[:2]
        sw, sh = max(1, round(w * self.level)), max(1, round(h * self.level))
        small = Image.fromarray(image).resize((sw, sh), _KERNELS[self.params["kernel"]])
        back = small.resize((w, h), _KERNELS[self.params["up_kernel"]])
        return Transformed(np.asarray(back, dtype=np.uint8).copy(), None, {"size": [sw, sh]})


# ---------------------------------------------------------------------------------------------
# enhancement


def _cv2():
    try:
        import cv2
    except ImportError as e:  # pragma: no cover - a declared dependency
        raise ConfigError(f"this transform needs opencv-python-headless ({e})") from None
    return cv2


def _to_u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x), 0, 255).astype(np.uint8)


@register_factor("sharpen", "enhancement", "unsharp-mask amount (0 = none)", "higher", (0.5, 1, 2, 4), (1, 4),
                 "unsharp masking: image + amount * (image - gaussian(image, sigma))", {"sigma": 2.0})
class Sharpen(Transform):
    def __init__(self, level: float, sigma: float = 2.0):
        if level < 0 or sigma <= 0:
            raise ConfigError(f"sharpen takes amount >= 0 and sigma > 0, got {level}, {sigma}")
        super().__init__(level, sigma=float(sigma))

    def apply(self, image: np.ndarray) -> Transformed:
        cv2 = _cv2()
        x = image.astype(np.float32)
        blur = cv2.GaussianBlur(x, (0, 0), self.params["sigma"])
        return Transformed(_to_u8(x + self.level * (x - blur)))


@register_factor("contrast", "enhancement", "contrast factor (1 = unchanged)", "higher", (1.25, 1.5, 2, 3), (1.5, 3),
                 "contrast stretch about the mean luma: mean + factor * (pixel - mean)", {})
class Contrast(Transform):
    def __init__(self, level: float):
        if level < 0:
            raise ConfigError(f"contrast factor must be >= 0, got {level}")
        super().__init__(level)

    def apply(self, image: np.ndarray) -> Transformed:
        x = image.astype(np.float32)
        mean = float((x @ np.array([0.299, 0.587, 0.114], np.float32)).mean())
        return Transformed(_to_u8(mean + self.level * (x - mean)))


@register_factor("gamma", "enhancement", "gamma (1 = unchanged; out = 255 * (in/255)^gamma)", "higher",
                 (0.4, 0.7, 1.5, 2.5), (0.5, 2.5), "gamma curve on each channel", {})
class Gamma(Transform):
    def __init__(self, level: float):
        if level <= 0:
            raise ConfigError(f"gamma must be > 0, got {level}")
        super().__init__(level)

    def apply(self, image: np.ndarray) -> Transformed:
        lut = _to_u8(255.0 * (np.arange(256) / 255.0) ** self.level)
        return Transformed(lut[image])


def _luma_op(image: np.ndarray, op: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
    """Apply ``op`` to the L channel of CIE Lab (OpenCV's 8-bit Lab) and convert back."""
    cv2 = _cv2()
    lab = cv2.cvtColor(image, cv2.COLOR_RGB2LAB)
    lab[:, :, 0] = op(lab[:, :, 0])
    return cv2.cvtColor(lab, cv2.COLOR_LAB2RGB)


@register_factor("histeq", "enhancement", "strength 0-1 (blend of the equalised and the original luma)", "higher",
                 (0.25, 0.5, 0.75, 1.0), (0.5, 1.0), "global histogram equalisation of the Lab lightness", {})
class HistEq(Transform):
    def __init__(self, level: float):
        if not 0 <= level <= 1:
            raise ConfigError(f"histeq strength must be within 0..1, got {level}")
        super().__init__(level)

    def apply(self, image: np.ndarray) -> Transformed:
        cv2 = _cv2()
        a = self.level
        return Transformed(_luma_op(image, lambda L: _to_u8((1 - a) * L.astype(np.float32) + a * cv2.equalizeHist(L))))


@register_factor("clahe", "enhancement", "clip limit (OpenCV's units; higher = stronger)", "higher", (1, 2, 4, 8, 16),
                 (2, 16), "contrast-limited adaptive histogram equalisation of the Lab lightness (OpenCV)",
                 {"tiles": 8})
class CLAHE(Transform):
    def __init__(self, level: float, tiles: int = 8):
        if level <= 0 or int(tiles) < 1:
            raise ConfigError(f"clahe takes clip limit > 0 and tiles >= 1, got {level}, {tiles}")
        super().__init__(level, tiles=int(tiles))

    def apply(self, image: np.ndarray) -> Transformed:
        cv2 = _cv2()
        t = self.params["tiles"]
        clahe = cv2.createCLAHE(clipLimit=float(self.level), tileGridSize=(t, t))
        return Transformed(_luma_op(image, clahe.apply))


@register_factor("denoise", "enhancement", "filter strength h (OpenCV non-local means)", "higher", (3, 6, 10, 15, 25),
                 (6, 25), "non-local means denoising (OpenCV fastNlMeansDenoisingColored, 7x7 patches, 21x21 search)", {})
class Denoise(Transform):
    def __init__(self, level: float):
        if level <= 0:
            raise ConfigError(f"denoise strength must be > 0, got {level}")
        super().__init__(level)

    def apply(self, image: np.ndarray) -> Transformed:
        cv2 = _cv2()
        return Transformed(cv2.fastNlMeansDenoisingColored(image, None, float(self.level), float(self.level), 7, 21))


# ---------------------------------------------------------------------------------------------
# beautification (landmark-driven)


def _face_landmarks(image: np.ndarray) -> np.ndarray | None:
    """dlib's 68 landmarks of the face nearest the photo centre, or ``None``."""
    from ..detect.base import select_faces
    from ..detect.dlib_detectors import landmarks68
    from ..errors import NoFaceError

    try:
        face = select_faces(_hog().detect(image), image.shape, "center")[0]
    except NoFaceError:
        return None
    return landmarks68(image, face.box)


_HOG: list[Any] = []


def _hog():
    if not _HOG:
        from ..detect.base import get_detector

        # only the box is used (the 68 points follow once, in landmarks68): skip the detector's own
        # 68-point pass
        _HOG.append(get_detector("dlib-hog", landmarks="5"))
    return _HOG[0]


class _Beautify(Transform):
    family = "beautification"

    def apply(self, image: np.ndarray) -> Transformed:
        pts = _face_landmarks(image)
        if pts is None:
            return Transformed(image.copy(), None, {"face_found": False})
        return Transformed(self._edit(image, pts), None, {"face_found": True})

    def _edit(self, image: np.ndarray, pts: np.ndarray) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError


def skin_mask(shape: tuple[int, ...], pts: np.ndarray, feather: float | None = None) -> np.ndarray:
    """Float mask in [0, 1] of the face's skin: the hull of the jaw line and the brows (raised by a
    fifth of the face height to take the forehead), minus the eyes, brows and mouth, feathered."""
    cv2 = _cv2()
    h, w = shape[:2]
    face_h = float(pts[8, 1] - pts[19:25, 1].mean())
    brows = pts[17:27].copy()
    brows[:, 1] -= 0.2 * face_h
    hull = cv2.convexHull(np.concatenate([pts[0:17], brows]).astype(np.int32))
    m = np.zeros((h, w), np.uint8)
    cv2.fillConvexPoly(m, hull, 255)
    for idx in (range(36, 42), range(42, 48), range(48, 60), range(17, 22), range(22, 27)):
        part = cv2.convexHull(pts[list(idx)].astype(np.int32))
        cv2.fillConvexPoly(m, part, 0)
        cv2.polylines(m, [part], True, 0, thickness=max(2, int(0.03 * face_h)))
    sigma = feather if feather is not None else max(1.0, 0.03 * face_h)
    return np.clip(cv2.GaussianBlur(m.astype(np.float32) / 255.0, (0, 0), sigma), 0, 1)


@register_factor("smooth-skin", "beautification", "strength 0-1 (blend of the filtered skin)", "higher",
                 (0.25, 0.5, 0.75, 1.0), (0.5, 1.0),
                 "skin smoothing: edge-preserving bilateral filter (OpenCV, 2 passes) blended into a feathered skin mask",
                 {"diameter": 9, "sigma_color": 40.0, "passes": 2})
class SmoothSkin(_Beautify):
    def __init__(self, level: float, diameter: int = 9, sigma_color: float = 40.0, passes: int = 2):
        if not 0 <= level <= 1:
            raise ConfigError(f"smooth-skin strength must be within 0..1, got {level}")
        super().__init__(level, diameter=int(diameter), sigma_color=float(sigma_color), passes=int(passes))

    def _edit(self, image: np.ndarray, pts: np.ndarray) -> np.ndarray:
        cv2 = _cv2()
        p = self.params
        smooth = image
        for _ in range(p["passes"]):
            smooth = cv2.bilateralFilter(smooth, p["diameter"], p["sigma_color"], p["diameter"] / 2.0)
        a = (self.level * skin_mask(image.shape, pts))[:, :, None]
        return _to_u8((1 - a) * image.astype(np.float32) + a * smooth.astype(np.float32))


@register_factor("brighten", "beautification", "strength (lightness curve exponent 1/(1+s))", "higher",
                 (0.1, 0.25, 0.5, 1.0), (0.25, 1.0),
                 "skin brightening: a lightness lift L' = 100 (L/100)^(1/(1+s)) on the feathered skin mask", {})
class Brighten(_Beautify):
    def __init__(self, level: float):
        if level < 0:
            raise ConfigError(f"brighten strength must be >= 0, got {level}")
        super().__init__(level)

    def _edit(self, image: np.ndarray, pts: np.ndarray) -> np.ndarray:
        lut = _to_u8(255.0 * (np.arange(256) / 255.0) ** (1.0 / (1.0 + self.level)))
        bright = _luma_op(image, lambda L: lut[L])
        a = skin_mask(image.shape, pts)[:, :, None]
        return _to_u8((1 - a) * image.astype(np.float32) + a * bright.astype(np.float32))


def _remap(image: np.ndarray, map_x: np.ndarray, map_y: np.ndarray) -> np.ndarray:
    cv2 = _cv2()
    return cv2.remap(image, map_x.astype(np.float32), map_y.astype(np.float32), cv2.INTER_LINEAR,
                     borderMode=cv2.BORDER_REFLECT101)


@register_factor("enlarge-eyes", "beautification", "strength 0-0.9 (centre magnification 1/(1-s))", "higher",
                 (0.1, 0.2, 0.3, 0.45), (0.2, 0.45),
                 "eye enlargement: a radial bulge warp about each eye centre, radius = eye width", {"radius": 1.0})
class EnlargeEyes(_Beautify):
    """Inside radius ``R`` of an eye centre ``c`` the pixel at ``p`` samples the source at
    ``c + (p - c) (1 - s (1 - |p-c|^2 / R^2))``: magnified ``1/(1-s)`` at the centre, continuous
    (unchanged) at ``R``; ``R`` is ``radius`` x the eye's corner-to-corner width."""

    def __init__(self, level: float, radius: float = 1.0):
        if not 0 <= level < 0.9 or radius <= 0:
            raise ConfigError(f"enlarge-eyes takes strength within [0, 0.9) and radius > 0, got {level}, {radius}")
        super().__init__(level, radius=float(radius))

    def _edit(self, image: np.ndarray, pts: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
        mx, my = xx.copy(), yy.copy()
        for idx, (c1, c2) in ((range(36, 42), (36, 39)), (range(42, 48), (42, 45))):
            c = pts[list(idx)].mean(0)
            r = self.params["radius"] * float(np.linalg.norm(pts[c1] - pts[c2]))
            dx, dy = xx - c[0], yy - c[1]
            d2 = (dx * dx + dy * dy) / (r * r)
            k = np.where(d2 < 1, 1 - self.level * (1 - d2), 1.0)
            mx = np.where(d2 < 1, c[0] + dx * k, mx)
            my = np.where(d2 < 1, c[1] + dy * k, my)
        return _remap(image, mx, my)


@register_factor("slim-face", "beautification", "strength 0-1 (cheek shift as a fraction of the jaw-to-nose distance)",
                 "higher", (0.05, 0.1, 0.15, 0.25), (0.1, 0.25),
                 "face slimming: local translation warps (Gustafsson 1993) pulling both cheeks toward the nose", {})
class SlimFace(_Beautify):
    """For each cheek the warp centre ``c`` is jaw point 4 (left) or 12 (right), the radius ``R`` is
    the distance from ``c`` to jaw point 6 (10), and the translation ``m - c`` is ``s`` x the vector
    from ``c`` to the nose tip (point 30). A pixel ``x`` within ``R`` samples the source at
    ``x - ((R^2 - |x-c|^2) / (R^2 - |x-c|^2 + |m-c|^2))^2 (m - c)``."""

    def __init__(self, level: float):
        if not 0 <= level <= 1:
            raise ConfigError(f"slim-face strength must be within 0..1, got {level}")
        super().__init__(level)

    def _edit(self, image: np.ndarray, pts: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
        out = image
        for ci, ri in ((4, 6), (12, 10)):
            c, nose = pts[ci], pts[30]
            radius = float(np.linalg.norm(pts[ri] - c))
            shift = self.level * (nose - c)
            dx, dy = xx - c[0], yy - c[1]
            d2 = dx * dx + dy * dy
            r2 = radius * radius
            inside = d2 < r2
            ratio = np.where(inside, (r2 - d2) / (r2 - d2 + float(shift @ shift) + 1e-12), 0.0) ** 2
            out = _remap(out, xx - ratio * shift[0], yy - ratio * shift[1])
        return out


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 images (``inf`` when identical)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(255.0 ** 2 / mse)


__all__ = [
    "Transformed", "Transform", "FactorInfo", "Compose", "Codec", "CallableCodec", "CommandCodec", "register_factor",
    "register_codec", "unregister_factor", "list_factors", "factor_info", "get_transform", "parse_spec", "skin_mask",
    "psnr",
]
