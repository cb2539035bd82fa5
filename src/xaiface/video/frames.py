"""Reading the frames of a clip, and making test clips from still photos.

Frames are decoded with OpenCV's ``VideoCapture`` (its FFmpeg back-end: MP4, AVI, MKV/WebM,
MOV...), converted from OpenCV's BGR to the package's RGB and checked by
:func:`xaiface.io.load_image` like any photo. A file is first **sniffed** by its magic bytes
(:func:`sniff_container`), never trusted by its name, so a text file or a JPEG renamed ``.mp4``
is refused with a :class:`VideoError` naming it before FFmpeg sees it.

No face video is shared with the project, so :func:`make_clip` builds test clips from real LFW
photos: the photo moves along a smooth path over a plain background, is scaled up and down, and
each frame is JPEG-compressed at a quality that varies along the clip (the registered ``jpeg``
factor), then written with OpenCV's ``VideoWriter`` (MPEG-4 Part 2, ``mp4v``).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from ..errors import ConfigError, ImageError

__all__ = ["Frame", "VideoError", "frame_count", "make_clip", "read_frames", "sniff_container"]


class VideoError(ImageError):
    """A clip could not be read: missing, empty, not a video container, undecodable, or without frames."""


@dataclass(frozen=True)
class Frame:
    """One decoded frame: ``index`` in the clip, ``time`` in seconds, ``image`` ``(H, W, 3)`` uint8 RGB."""

    index: int
    time: float
    image: np.ndarray


#: container magic bytes: (offset, bytes, name)
_MAGIC = ((4, b"ftyp", "MP4/MOV"), (0, b"RIFF", "AVI"), (0, b"\x1a\x45\xdf\xa3", "Matroska/WebM"),
          (0, b"\x00\x00\x01\xba", "MPEG-PS"), (0, b"\x00\x00\x01\xb3", "MPEG-1/2"), (0, b"OggS", "Ogg"))


def sniff_container(head: bytes, name: str = "<clip>") -> str:
    """The container named by a file's first bytes (``"MP4/MOV"``, ``"AVI"``, ...); VideoError if none fits."""
    for off, magic, kind in _MAGIC:
        if head[off:off + len(magic)] == magic:
            if kind == "AVI" and head[8:12] != b"AVI ":
                continue
            return kind
    if not head:
        raise VideoError(f"{name}: empty file; expected a video (MP4, AVI, MKV/WebM, MOV, MPEG or Ogg)")
    raise VideoError(f"{name}: not a video container (its first bytes match none of MP4, AVI, MKV/WebM, MOV, "
                     "MPEG or Ogg)")


def read_frames(path: str | os.PathLike, stride: int = 1, max_frames: int = 300,
                name: str | None = None) -> Iterator[Frame]:
    """The frames of a clip, every ``stride``-th, at most ``max_frames`` of them.

    Raises:
        VideoError: the file is missing, not a video container, or FFmpeg decodes no frame from it.
        ConfigError: ``stride`` or ``max_frames`` below 1.
    """
    import cv2

    from ..io import load_image

    label = name or str(path)
    if stride < 1 or max_frames < 1:
        raise ConfigError(f"stride and max_frames must be >= 1, got {stride}, {max_frames}")
    p = Path(path)
    if not p.is_file():
        raise VideoError(f"{label}: no such file")
    with open(p, "rb") as f:
        sniff_container(f.read(16), label)
    cap = cv2.VideoCapture(str(p))
    try:
        if not cap.isOpened():
            raise VideoError(f"{label}: OpenCV/FFmpeg cannot open this video")
        fps = float(cap.get(cv2.CAP_PROP_FPS)) or 25.0
        i = kept = 0
        while kept < max_frames:
            ok, bgr = cap.read()
            if not ok:
                break
            if i % stride == 0:
                yield Frame(i, i / fps, load_image(np.ascontiguousarray(bgr[..., ::-1]), name=f"{label} frame {i}"))
                kept += 1
            i += 1
        if i == 0:
            raise VideoError(f"{label}: no frame could be decoded (damaged, or a codec FFmpeg lacks)")
    finally:
        cap.release()


def frame_count(path: str | os.PathLike) -> int | None:
    """The number of frames the container declares (``None`` when it declares none; an estimate for some formats)."""
    import cv2

    cap = cv2.VideoCapture(str(path))
    try:
        n = int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) if cap.isOpened() else 0
    finally:
        cap.release()
    return n if n > 0 else None


def make_clip(photos: Sequence[np.ndarray], path: str | os.PathLike, n_frames: int = 40, size: tuple[int, int] = (320, 240),
              fps: float = 10.0, scale: tuple[float, float] = (0.7, 1.15), quality: tuple[int, int] = (90, 12),
              seed: int = 0) -> Path:
    """Write a test clip of real photos moving, scaling and JPEG-compressed, with OpenCV's ``VideoWriter``.

    Args:
        photos: ``(H, W, 3)`` uint8 RGB photos, shown one after the other (equal segments).
        path: the ``.mp4`` file to write.
        n_frames, size ``(width, height)``, fps: the clip.
        scale: the photo's smallest and largest scale (relative to fitting the frame's height);
            it follows a sine along the clip.
        quality: JPEG quality of the first and the middle frame (it goes down, then up again).
        seed: the background's noise.
    Returns:
        ``path``.
    """
    import cv2

    from ..factors.transforms import get_transform

    if not photos or n_frames < 1:
        raise ConfigError("make_clip needs at least one photo and one frame")
    w, h = size
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    bg = (90 + 60 * xx / w + 20 * yy / h)[..., None] + rng.normal(0, 4, (h, w, 1))
    bg = np.clip(np.repeat(bg, 3, axis=2) * np.array([1.0, 0.95, 0.9]), 0, 255).astype(np.uint8)
    out = Path(path)
    writer = cv2.VideoWriter(str(out), cv2.VideoWriter_fourcc(*"mp4v"), float(fps), (w, h))
    if not writer.isOpened():
        raise VideoError(f"{out}: OpenCV cannot write an mp4v clip here")
    try:
        for t in range(n_frames):
            u = t / max(1, n_frames - 1)
            photo = photos[min(len(photos) - 1, int(u * len(photos)))]
            s = scale[0] + (scale[1] - scale[0]) * 0.5 * (1 - math.cos(2 * math.pi * u))
            side = max(16, int(round(h * s)))
            ph = cv2.resize(photo, (side, int(round(side * photo.shape[0] / photo.shape[1]))), interpolation=cv2.INTER_AREA)
            cx = w / 2 + 0.25 * w * math.sin(2 * math.pi * u)
            cy = h / 2 + 0.12 * h * math.sin(4 * math.pi * u)
            frame = bg.copy()
            _paste(frame, ph, int(round(cx - ph.shape[1] / 2)), int(round(cy - ph.shape[0] / 2)))
            q = int(round(quality[0] + (quality[1] - quality[0]) * math.sin(math.pi * u)))
            frame = get_transform("jpeg", q)(frame).image
            writer.write(np.ascontiguousarray(frame[..., ::-1]))
    finally:
        writer.release()
    return out


def _paste(canvas: np.ndarray, img: np.ndarray, x: int, y: int) -> None:
    """Copy ``img`` into ``canvas`` with its top-left corner at ``(x, y)``, clipped to the canvas."""
    H, W = canvas.shape[:2]
    x0, y0, x1, y1 = max(0, x), max(0, y), min(W, x + img.shape[1]), min(H, y + img.shape[0])
    if x1 > x0 and y1 > y0:
        canvas[y0:y1, x0:x1] = img[y0 - y:y1 - y, x0 - x:x1 - x]
