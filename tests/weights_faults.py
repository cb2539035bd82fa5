"""Weight files with one flipped bit, for the weight-integrity tests (tests/models, tests/cli).

Imported as a plain module (``sys.path`` insert), like ``bad_inputs``.
"""
from __future__ import annotations

from pathlib import Path

from xaiface.models.dlib_resnet import default_weights_path
from xaiface.models.dlib_serialize import DlibReader

#: Bit 30 of a float32 is its exponent's top bit: setting it multiplies a weight of |w| < 2 by
#: 2**128 (~3e38), so the descriptor coordinate it feeds is ~1e37 and the descriptor's float32
#: norm overflows to inf: every L2-normalised embedding becomes the zero vector (similarity 0.0
#: for identical photos), the reliability probe's finding.
EXPONENT_BIT = 30
#: Bit 0 is the mantissa's lowest bit: the weight changes by one ulp, the model stays usable.
MANTISSA_LSB = 0


def dlib_fc_weights_offset(data: bytes) -> int:
    """Byte offset of the first float32 of the fc layer's (256 x 128) weights in dlib's ``.dat``.

    The layer record is the string ``fc_2``, ints ``num_outputs``, ``num_inputs``, then a tensor
    (int version 2, ints ``n, k, nr, nc``, little-endian float32 payload).
    """
    r = DlibReader(data)
    r.pos = data.index(b"fc_2") + 4
    assert (r.int(), r.int()) == (128, 256)
    assert r.int() == 2 and [r.int() for _ in range(4)] == [256, 128, 1, 1]
    return r.pos


def flipped_dlib_weights(dst: Path, bit: int = EXPONENT_BIT, element: int = 0) -> Path:
    """Write the packaged dlib weights to ``dst`` with one bit of fc weight ``element`` flipped."""
    buf = bytearray(default_weights_path().read_bytes())
    byte = dlib_fc_weights_offset(buf) + 4 * element + bit // 8
    buf[byte] ^= 1 << (bit % 8)
    dst.write_bytes(bytes(buf))
    return dst
