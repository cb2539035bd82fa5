"""A reader for dlib's binary serialisation (``dlib/serialize.h``) and its DNN layer records.

Only reading is supported, and only the primitives and layers that dlib's face-recognition
ResNet (``dlib_face_recognition_resnet_model_v1.dat``) uses. The format:

* integer: a control byte (byte count 1..8 in the low nibble, ``| 0x80`` if negative), then that
  many little-endian magnitude bytes;
* string: integer length then raw bytes; bool: one ASCII byte ``'1'``/``'0'``;
* float/double: integer mantissa then integer exponent, value ``m * 2**e`` (exponents
  32000/32001/32002 mean inf/-inf/NaN);
* tensor: int version 2, ints ``n, k, nr, nc``, then ``n*k*nr*nc`` little-endian float32 (NCHW);
* alias tensor: int version 1, ints ``n, k, nr, nc`` (a shape only).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import WeightsError


class _Truncated(Exception):
    pass


class DlibReader:
    """Sequential reader over the bytes of a dlib-serialised file."""

    def __init__(self, data: bytes, name: str = "<bytes>"):
        self.buf = memoryview(data)
        self.pos = 0
        self.name = name

    def _take(self, n: int) -> memoryview:
        if self.pos + n > len(self.buf):
            raise _Truncated()
        out = self.buf[self.pos : self.pos + n]
        self.pos += n
        return out

    def fail(self, what: str) -> WeightsError:
        return WeightsError(f"{self.name}: not a dlib face-recognition ResNet file: {what} (at byte {self.pos})")

    def int(self) -> int:
        ctrl = self._take(1)[0]
        n = ctrl & 0x0F
        if n == 0 or n > 8 or (ctrl & 0x70):
            raise self.fail(f"bad integer control byte 0x{ctrl:02x}")
        v = int.from_bytes(self._take(n), "little")
        return -v if ctrl & 0x80 else v

    def string(self) -> str:
        n = self.int()
        if n < 0 or n > 1 << 20:
            raise self.fail(f"bad string length {n}")
        return bytes(self._take(n)).decode("latin-1")

    def float(self) -> float:
        m = self.int()
        e = self.int()
        if e == 32000:
            return float("inf")
        if e == 32001:
            return float("-inf")
        if e == 32002:
            return float("nan")
        return float(m) * 2.0**e

    def bool(self) -> bool:
        c = bytes(self._take(1))
        if c not in (b"0", b"1"):
            raise self.fail(f"bad bool byte {c!r}")
        return c == b"1"

    def tensor(self) -> np.ndarray:
        v = self.int()
        if v != 2:
            raise self.fail(f"tensor version {v}, expected 2")
        shape = tuple(self.int() for _ in range(4))
        if min(shape) < 0:
            raise self.fail(f"bad tensor shape {shape}")
        count = int(np.prod(shape))
        raw = self._take(4 * count)
        return np.frombuffer(raw, dtype="<f4").reshape(shape).astype(np.float32)

    def alias(self) -> tuple[int, int, int, int]:
        v = self.int()
        if v != 1:
            raise self.fail(f"alias tensor version {v}, expected 1")
        return tuple(self.int() for _ in range(4))  # type: ignore[return-value]


@dataclass
class LayerRecord:
    """One computational layer as stored: its kind and fields."""

    kind: str
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass
class DlibNet:
    """What a dlib metric-learning network file holds."""

    loss: str
    margin: float
    distance_threshold: float
    wrapper_versions: list[int]
    input_kind: str
    input_means: tuple[float, float, float]
    input_size: tuple[int, int]
    layers: list[LayerRecord]


def _read_layer(r: DlibReader, kind: str) -> LayerRecord:
    f: dict[str, Any] = {}
    if kind == "con_4":
        f["params"] = r.tensor()
        f["num_filters"] = r.int()
        f["nr"], f["nc"] = r.int(), r.int()
        f["stride_y"], f["stride_x"] = r.int(), r.int()
        f["pad_y"], f["pad_x"] = r.int(), r.int()
        f["filters_shape"] = r.alias()
        f["biases_shape"] = r.alias()
        f["multipliers"] = [r.float() for _ in range(4)]
    elif kind == "affine_":
        f["params"] = r.tensor()
        f["gamma_shape"] = r.alias()
        f["beta_shape"] = r.alias()
        f["mode"] = r.int()
    elif kind in ("relu_", "add_prev_"):
        pass
    elif kind in ("max_pool_2", "avg_pool_2"):
        f["nr"], f["nc"] = r.int(), r.int()
        f["stride_y"], f["stride_x"] = r.int(), r.int()
        f["pad_y"], f["pad_x"] = r.int(), r.int()
    elif kind == "fc_2":
        f["num_outputs"] = r.int()
        f["num_inputs"] = r.int()
        f["params"] = r.tensor()
        f["weights_shape"] = r.alias()
        f["biases_shape"] = r.alias()
        f["bias_mode"] = r.int()
        f["multipliers"] = [r.float() for _ in range(4)]
    else:
        raise r.fail(f"unsupported layer kind {kind!r}")
    return LayerRecord(kind, f)


def read_dlib_net(data: bytes, name: str = "<bytes>") -> DlibNet:
    """Parse a dlib ``loss_metric`` network file (the face-recognition ResNet's format).

    Raises:
        WeightsError: truncated file, or any structure other than the expected one.
    """
    r = DlibReader(data, name)
    try:
        if len(data) == 0:
            raise r.fail("the file is empty")
        if r.int() != 1:
            raise r.fail("loss layer version is not 1")
        loss = r.string()
        if not loss.startswith("loss_metric"):
            raise r.fail(f"loss layer {loss!r}, expected loss_metric_*")
        margin, dist = r.float(), r.float()
        versions: list[int] = []
        while True:
            v = r.int()
            versions.append(v)
            if v == 3:  # the innermost add_layer holding the input layer
                break
            if v not in (1, 2) or len(versions) > 10_000:
                raise r.fail(f"unexpected wrapper version {v}")
        input_kind = r.string()
        if input_kind != "input_rgb_image_sized":
            raise r.fail(f"input layer {input_kind!r}, expected input_rgb_image_sized")
        means = (r.float(), r.float(), r.float())
        size = (r.int(), r.int())
        n_layers = sum(1 for v in versions if v in (2, 3))
        layers: list[LayerRecord] = []
        for i in range(n_layers):
            kind = r.string()
            layers.append(_read_layer(r, kind))
            for _ in range(3):
                r.bool()
            for _ in range(3):
                r.tensor()
            if i == 0:
                r.int()  # the input layer's sample expansion factor
        if r.pos != len(data):
            raise r.fail(f"{len(data) - r.pos} unexpected bytes after the last layer")
        return DlibNet(loss, margin, dist, versions, input_kind, means, size, layers)
    except _Truncated:
        raise WeightsError(
            f"{name}: truncated dlib network file ({len(data)} bytes; ended at byte {r.pos} while reading)"
        ) from None
