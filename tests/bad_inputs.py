"""Files of every bad kind the pipeline must refuse with a clear error (shared by several tests)."""
from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims ``width x height`` (8-bit RGB) but whose IDAT holds a few bytes."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b"\x00" * 16))
            + png_chunk(b"IEND", b""))


def write_bad_files(folder: Path, real_jpeg: Path) -> dict[str, Path]:
    """Write the bad inputs into ``folder``; returns name -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {}
    files["empty"] = folder / "empty.jpg"
    files["empty"].write_bytes(b"")
    data = real_jpeg.read_bytes()
    files["truncated"] = folder / "truncated.jpg"
    files["truncated"].write_bytes(data[: len(data) // 3])
    files["text"] = folder / "notes.jpg"
    files["text"].write_text("this is a text file, not a JPEG\n")
    files["tiny"] = folder / "one_pixel.png"
    Image.new("RGB", (1, 1), (200, 10, 10)).save(files["tiny"])
    files["bomb"] = folder / "huge_header.png"
    files["bomb"].write_bytes(png_header_only(20000, 20000))
    files["noface"] = folder / "no_face.png"
    rng = np.random.default_rng(0)
    smooth = np.kron(rng.integers(0, 256, (12, 12, 3)), np.ones((20, 20, 1))).astype(np.uint8)
    Image.fromarray(smooth).save(files["noface"])
    return files
