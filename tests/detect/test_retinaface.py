"""RetinaFace / SCRFD ONNX detectors (``xaiface.detect.retinaface``) on synthetic network outputs.

No real weights exist here: raw outputs are built by inverting each network's encoding for two
known faces in a non-square photo, then decoded directly and through tiny ONNX graphs that return
them whatever image they are given.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from xaiface.detect import base
from xaiface.detect.retinaface import (
    RETINAFACE_STEPS,
    Letterbox,
    RetinaFaceOnnxDetector,
    _network_input,
    decode_retinaface,
    decode_scrfd,
    nms,
    retinaface_priors,
    scrfd_anchor_centers,
)
from xaiface.errors import ConfigError, ImageError, NumericalError, WeightsError

PHOTO_HW = (301, 487)  # non-square, and the letterbox's x and y scales differ
CANVAS = 160
SCRFD_STRIDES = (8, 16, 32)


@dataclass(frozen=True)
class Face:
    box: np.ndarray  # (4,) photo pixels
    landmarks: np.ndarray  # (5, 2) photo pixels, ArcFace order
    score: float


LARGE = Face(np.array([200.0, 40.0, 420.0, 290.0]),
             np.array([[262.5, 131.0], [357.25, 128.5], [311.0, 186.75], [271.5, 236.0], [351.0, 233.5]]), 0.92)
SMALL = Face(np.array([30.0, 200.0, 62.0, 242.0]),
             np.array([[38.5, 215.0], [53.25, 214.5], [46.0, 224.0], [40.0, 232.5], [52.5, 232.0]]), 0.71)


def _letterbox() -> Letterbox:
    return Letterbox.fit(PHOTO_HW, (CANVAS, CANVAS))


def _to_canvas(xy: np.ndarray, lb: Letterbox) -> np.ndarray:
    xy = np.asarray(xy, dtype=np.float64)
    return xy * np.tile(lb.scale, xy.shape[-1] // 2)


def _assert_faces(found, expected, landmarks: bool = True, detector: str | None = None) -> None:
    assert len(found) == len(expected)
    for f, e in zip(found, expected):
        np.testing.assert_allclose(f.box, e.box, atol=1e-3)
        assert f.score == pytest.approx(e.score, abs=1e-6)
        if landmarks:
            np.testing.assert_allclose(f.landmarks, e.landmarks, atol=1e-3)
        if detector is not None:
            assert f.detector == detector


# ---------------------------------------------------------------------------------------------
# inverse encodings


def encode_scrfd(lb: Letterbox, seed: int = 0, with_kps: bool = True, batched: bool = False) -> list[np.ndarray]:
    """Raw SCRFD outputs in insightface's order (scores, boxes[, kps], each at strides 8, 16, 32).

    LARGE sits at stride 32, SMALL at stride 8, each on the first anchor of the location nearest
    its box centre, with a duplicate (box 1 canvas pixel larger all round, score 0.1 lower) on
    the second anchor there; everything else scores below 0.3.
    """
    rng = np.random.default_rng(seed)
    h, w = lb.canvas_hw
    scores, dists, kps = {}, {}, {}
    for s in SCRFD_STRIDES:
        n = (h // s) * (w // s) * 2
        scores[s] = rng.uniform(0.0, 0.3, (n, 1))
        dists[s] = rng.uniform(0.5, 2.0, (n, 4))
        kps[s] = rng.normal(0.0, 1.0, (n, 10))
    for face, s in ((LARGE, 32), (SMALL, 8)):
        box, lm = _to_canvas(face.box, lb), _to_canvas(face.landmarks.reshape(-1), lb)
        col, row = np.round((box[:2] + box[2:]) / 2 / s).astype(int)
        anchor = np.array([col, row], dtype=np.float64) * s
        i = (row * (w // s) + col) * 2
        for k, (grow, score) in enumerate(((0.0, face.score), (1.0, face.score - 0.1))):
            scores[s][i + k] = score
            dists[s][i + k] = np.concatenate([anchor - box[:2] + grow, box[2:] - anchor + grow]) / s
            kps[s][i + k] = (lm - np.tile(anchor, 5)) / s
    groups = [scores, dists] + ([kps] if with_kps else [])
    out = [g[s].astype(np.float32) for g in groups for s in SCRFD_STRIDES]
    return [o[None] for o in out] if batched else out


def encode_retinaface(lb: Letterbox, seed: int = 0) -> list[np.ndarray]:
    """Raw RetinaFace outputs ``loc (1, N, 4)``, ``conf (1, N, 2)``, ``landms (1, N, 10)``.

    LARGE sits on a 64-pixel prior (level 1), SMALL on a 16-pixel prior (level 0), each with a
    duplicate (1 canvas pixel larger, score 0.1 lower) on the location's second prior; every other
    prior scores below 0.3.
    """
    rng = np.random.default_rng(seed)
    h, w = lb.canvas_hw
    priors = retinaface_priors(h, w)
    n = len(priors)
    loc, landms = rng.normal(0.0, 0.5, (n, 4)), rng.normal(0.0, 1.0, (n, 10))
    face_prob = rng.uniform(0.0, 0.3, n)
    level_sizes = [-(-h // s) * -(-w // s) * 2 for s in RETINAFACE_STEPS]
    starts = np.concatenate([[0], np.cumsum(level_sizes)])
    unit = np.array([w, h], dtype=np.float64)
    for face, level in ((LARGE, 1), (SMALL, 0)):
        step = RETINAFACE_STEPS[level]
        box, lm = _to_canvas(face.box, lb), _to_canvas(face.landmarks.reshape(-1), lb)
        col, row = np.floor((box[:2] + box[2:]) / 2 / step).astype(int)
        i = starts[level] + (row * -(-w // step) + col) * 2
        for k, (grow, score) in enumerate(((0.0, face.score), (1.0, face.score - 0.1))):
            p = priors[i + k]
            b = (box + np.array([-grow, -grow, grow, grow])) / np.tile(unit, 2)
            centre, size = (b[:2] + b[2:]) / 2, b[2:] - b[:2]
            loc[i + k] = np.concatenate([(centre - p[:2]) / (0.1 * p[2:]), np.log(size / p[2:]) / 0.2])
            landms[i + k] = (lm / np.tile(unit, 5) - np.tile(p[:2], 5)) / (0.1 * np.tile(p[2:], 5))
            face_prob[i + k] = score
    conf = np.stack([1.0 - face_prob, face_prob], axis=1)
    return [a[None].astype(np.float32) for a in (loc, conf, landms)]


def constant_model(path: Path, outputs: list[np.ndarray], input_shape: tuple = (1, 3, CANVAS, CANVAS)) -> Path:
    """An ONNX graph image -> fixed outputs: ``ReduceMean(image) * 0 + constant_k``."""
    nodes = [helper.make_node("ReduceMean", ["image"], ["mean"], keepdims=0),
             helper.make_node("Mul", ["mean", "zero"], ["nothing"])]
    initializers = [numpy_helper.from_array(np.zeros((), np.float32), "zero")]
    graph_outputs = []
    for k, value in enumerate(outputs):
        initializers.append(numpy_helper.from_array(np.asarray(value, np.float32), f"constant{k}"))
        nodes.append(helper.make_node("Add", ["nothing", f"constant{k}"], [f"output{k}"]))
        graph_outputs.append(helper.make_tensor_value_info(f"output{k}", TensorProto.FLOAT, list(np.shape(value))))
    graph = helper.make_graph(nodes, "synthetic", [helper.make_tensor_value_info("image", TensorProto.FLOAT, list(input_shape))],
                              graph_outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def _photo(seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*PHOTO_HW, 3), dtype=np.uint8)


# ---------------------------------------------------------------------------------------------
# NMS, anchors, priors, letterbox


@pytest.mark.parametrize("pixel_offset", [0.0, 1.0])
def test_nms_is_greedy_by_score(pixel_offset):
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 5]], dtype=float)
    scores = np.array([0.9, 0.8, 0.7, 0.95])
    # box 3 suppresses box 0 (IoU 0.5 / 0.55); box 1 overlaps box 3 too little (0.32 / 0.36) and survives
    keep = nms(boxes, scores, 0.4, pixel_offset=pixel_offset)
    assert keep.tolist() == [3, 1, 2]
    assert keep.dtype == np.int64


def test_nms_threshold_ties_and_empty():
    boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 5]], dtype=float)  # IoU exactly 0.5 without offset
    assert nms(boxes, [0.5, 0.9], 0.5, pixel_offset=0.0).tolist() == [1, 0]
    assert nms(boxes, [0.5, 0.9], 0.49, pixel_offset=0.0).tolist() == [1]
    assert nms(np.array([[0, 0, 4, 4], [50, 50, 54, 54]]), [0.6, 0.6]).tolist() == [0, 1]
    assert nms(np.zeros((0, 4)), np.zeros(0)).tolist() == []
    with pytest.raises(ConfigError):
        nms(boxes, [0.5])


def test_scrfd_anchor_centers():
    c = scrfd_anchor_centers(32, 48, 16, 2)  # 2 x 3 locations, 2 anchors each
    expected = np.array([[0, 0], [16, 0], [32, 0], [0, 16], [16, 16], [32, 16]], dtype=float).repeat(2, axis=0)
    np.testing.assert_array_equal(c, expected)
    assert scrfd_anchor_centers(640, 640, 8, 2).shape == (12800, 2)
    assert scrfd_anchor_centers(40, 40, 32, 1).tolist() == [[0.0, 0.0]]  # floor, as insightface


def test_retinaface_priors():
    p = retinaface_priors(32, 48)
    assert p.shape == ((4 * 6 + 2 * 3 + 1 * 2) * 2, 4)  # ceil(32/32) x ceil(48/32) at step 32
    np.testing.assert_allclose(p[0], [4 / 48, 4 / 32, 16 / 48, 16 / 32])
    np.testing.assert_allclose(p[1], [4 / 48, 4 / 32, 32 / 48, 32 / 32])
    np.testing.assert_allclose(p[2], [12 / 48, 4 / 32, 16 / 48, 16 / 32])
    np.testing.assert_allclose(p[12], [4 / 48, 12 / 32, 16 / 48, 16 / 32])  # second row
    np.testing.assert_allclose(p[48], [8 / 48, 8 / 32, 64 / 48, 64 / 32])  # first prior of step 16
    np.testing.assert_allclose(p[-1], [48 / 48, 16 / 32, 512 / 48, 512 / 32])
    assert len(retinaface_priors(40, 40)) == (25 + 9 + 4) * 2  # ceil at every level
    assert len(retinaface_priors(640, 640)) == 16800
    assert retinaface_priors(32, 48, clip=True).max() == 1.0


def test_letterbox():
    wide = Letterbox.fit(PHOTO_HW, (CANVAS, CANVAS))
    assert wide.resized_hw == (98, 160)  # int(160 * 301 / 487)
    assert wide.scale == (160 / 487, 98 / 301)
    tall = Letterbox.fit((500, 200), (640, 640))
    assert tall.resized_hw == (640, 256)
    np.testing.assert_allclose(tall.to_photo(np.array([[256.0, 640.0, 128.0, 320.0]])), [[200, 500, 100, 250]])
    canvas = wide.apply(np.full((*PHOTO_HW, 3), 200, np.uint8))
    assert canvas.shape == (160, 160, 3) and canvas.dtype == np.uint8
    assert (canvas[:98] == 200).all() and (canvas[98:] == 0).all()
    same = Letterbox.identity((64, 64))
    assert same.scale == (1.0, 1.0)
    with pytest.raises(ImageError):
        Letterbox.fit((0, 10), (64, 64))


def test_network_input():
    canvas = np.zeros((2, 3, 3), np.uint8)
    canvas[..., 0], canvas[..., 1], canvas[..., 2] = 255, 127, 0  # R, G, B
    x = _network_input(canvas, "scrfd")
    assert x.shape == (1, 3, 2, 3) and x.dtype == np.float32
    np.testing.assert_allclose(x[0, :, 0, 0], [127.5 / 128, -0.5 / 128, -127.5 / 128])  # RGB, (x - 127.5) / 128
    y = _network_input(canvas, "retinaface")
    np.testing.assert_allclose(y[0, :, 0, 0], [0 - 104, 127 - 117, 255 - 123])  # BGR minus (104, 117, 123)


# ---------------------------------------------------------------------------------------------
# decoding synthetic outputs


@pytest.mark.parametrize("batched", [False, True])
@pytest.mark.parametrize("order", ["insightface", "per-stride", "reversed"])
def test_decode_scrfd_recovers_faces(batched, order):
    lb = _letterbox()
    outputs = encode_scrfd(lb, batched=batched)
    if order == "per-stride":  # score, box, kps of stride 8, then of 16, then of 32
        outputs = [outputs[g * 3 + s] for s in range(3) for g in range(3)]
    elif order == "reversed":
        outputs = outputs[::-1]
    faces = decode_scrfd(outputs, lb)
    _assert_faces(faces, [LARGE, SMALL], detector="scrfd-onnx")  # duplicates suppressed
    assert faces[0].landmarks[0, 0] < faces[0].landmarks[1, 0]  # image-left eye first


def test_decode_scrfd_without_keypoints():
    lb = _letterbox()
    faces = decode_scrfd(encode_scrfd(lb, with_kps=False), lb)
    _assert_faces(faces, [LARGE, SMALL], landmarks=False)
    assert all(f.landmarks.shape == (5, 2) and np.isnan(f.landmarks).all() for f in faces)


def test_decode_scrfd_thresholds():
    lb = _letterbox()
    outputs = encode_scrfd(lb)
    _assert_faces(decode_scrfd(outputs, lb, score_threshold=0.8), [LARGE])
    assert decode_scrfd(outputs, lb, score_threshold=0.95) == []
    both = decode_scrfd(outputs, lb, nms_threshold=1.0)  # no suppression: the duplicates come back
    assert [round(f.score, 2) for f in both] == [0.92, 0.82, 0.71, 0.61]
    np.testing.assert_allclose(both[1].box, LARGE.box + np.array([-1, -1, 1, 1]) / np.tile(lb.scale, 2), atol=1e-3)


def test_decode_scrfd_rejects_other_shapes():
    lb = _letterbox()
    outputs = encode_scrfd(lb)
    with pytest.raises(WeightsError, match="6 or 9 outputs"):
        decode_scrfd(outputs[:4], lb)
    with pytest.raises(WeightsError, match=r"for a 320x320 input.*N = \[3200, 800, 200\]"):
        decode_scrfd(outputs, Letterbox.fit(PHOTO_HW, (320, 320)))
    with pytest.raises(WeightsError, match="expected"):
        decode_scrfd([o[:, :1] for o in outputs], lb)


def test_decode_retinaface_recovers_faces():
    lb = _letterbox()
    faces = decode_retinaface(encode_retinaface(lb), lb)
    _assert_faces(faces, [LARGE, SMALL], detector="retinaface-onnx")  # duplicates suppressed
    unbatched = decode_retinaface([o[0] for o in encode_retinaface(lb)][::-1], lb)  # any order
    _assert_faces(unbatched, [LARGE, SMALL])


def test_decode_retinaface_applies_softmax_to_logits():
    lb = _letterbox()
    loc, conf, landms = encode_retinaface(lb)
    logits = np.log(conf) + 3.0  # softmax(logits) == conf, rows far from summing to 1
    _assert_faces(decode_retinaface([loc, logits, landms], lb), [LARGE, SMALL])


def test_decode_retinaface_thresholds():
    lb = _letterbox()
    outputs = encode_retinaface(lb)
    _assert_faces(decode_retinaface(outputs, lb, score_threshold=0.8), [LARGE])
    _assert_faces(decode_retinaface(outputs, lb, top_k=1), [LARGE])
    _assert_faces(decode_retinaface(outputs, lb, keep_top_k=1), [LARGE])
    _assert_faces(decode_retinaface(outputs, lb, confidence_threshold=0.8), [LARGE])
    assert decode_retinaface(outputs, lb, score_threshold=0.95) == []
    both = decode_retinaface(outputs, lb, nms_threshold=1.0)
    assert [round(f.score, 2) for f in both] == [0.92, 0.82, 0.71, 0.61]
    # with a 0 cut-off, background priors (below 0.3) survive NMS behind the faces
    loose = decode_retinaface(outputs, lb, score_threshold=0.0)
    assert len(loose) > 2 and max(f.score for f in loose[2:]) < 0.3


def test_decode_retinaface_rejects_other_shapes():
    lb = _letterbox()
    loc, conf, landms = encode_retinaface(lb)
    with pytest.raises(WeightsError, match=r"loc \(N, 4\), conf \(N, 2\), landms \(N, 10\) with N = 1050"):
        decode_retinaface([loc, conf], lb)
    with pytest.raises(WeightsError, match="N = 4200"):
        decode_retinaface([loc, conf, landms], Letterbox.fit(PHOTO_HW, (320, 320)))


# ---------------------------------------------------------------------------------------------
# end to end through onnxruntime


@pytest.fixture(scope="module")
def scrfd_file(tmp_path_factory) -> Path:
    return constant_model(tmp_path_factory.mktemp("scrfd") / "det_synthetic.onnx", encode_scrfd(_letterbox(), batched=True))


@pytest.fixture(scope="module")
def retinaface_file(tmp_path_factory) -> Path:
    return constant_model(tmp_path_factory.mktemp("retinaface") / "mnet_synthetic.onnx", encode_retinaface(_letterbox()))


def test_scrfd_onnx_end_to_end(scrfd_file):
    det = RetinaFaceOnnxDetector(scrfd_file)
    assert det.kind == "scrfd" and det.name == "scrfd-onnx" and det.input_hw == (CANVAS, CANVAS)
    faces = det(_photo())
    _assert_faces(faces, [LARGE, SMALL], detector="scrfd-onnx")
    assert det.settings() == {
        "name": "scrfd-onnx", "kind": "scrfd", "model_sha256": hashlib.sha256(scrfd_file.read_bytes()).hexdigest(),
        "input_size": [CANVAS, CANVAS], "score_threshold": 0.5, "nms_threshold": 0.4,
    }
    _assert_faces(RetinaFaceOnnxDetector(scrfd_file, score_threshold=0.8).detect(_photo(2)), [LARGE])


def test_retinaface_onnx_end_to_end(retinaface_file):
    det = RetinaFaceOnnxDetector(retinaface_file, kind="retinaface")
    assert det.name == "retinaface-onnx"
    _assert_faces(det(_photo()), [LARGE, SMALL], detector="retinaface-onnx")
    s = det.settings()
    assert s["model_sha256"] == hashlib.sha256(retinaface_file.read_bytes()).hexdigest()
    assert (s["confidence_threshold"], s["top_k"], s["keep_top_k"], s["score_threshold"]) == (0.02, 5000, 750, 0.5)


def test_dynamic_input_uses_input_size(tmp_path):
    path = constant_model(tmp_path / "dynamic.onnx", encode_scrfd(_letterbox()), input_shape=("n", 3, "h", "w"))
    det = RetinaFaceOnnxDetector(path, input_size=CANVAS)
    assert det.input_hw == (CANVAS, CANVAS)
    _assert_faces(det(_photo()), [LARGE, SMALL])
    assert RetinaFaceOnnxDetector(path).input_hw == (640, 640)  # the default canvas
    with pytest.raises(WeightsError, match=r"dynamic\.onnx.*expected.*for a 320x320 input"):
        RetinaFaceOnnxDetector(path, input_size=320).detect(_photo())  # outputs made for 160
    with pytest.raises(ConfigError, match="divisible by 32"):
        RetinaFaceOnnxDetector(path, input_size=100)


def test_fixed_input_rejects_other_input_size(scrfd_file):
    with pytest.raises(ConfigError, match="fixed 160x160 input"):
        RetinaFaceOnnxDetector(scrfd_file, input_size=640)


def test_kind_must_fit_the_outputs(tmp_path, scrfd_file, retinaface_file):
    with pytest.raises(WeightsError, match=r"mnet_synthetic\.onnx.*expected 6 or 9 outputs"):
        RetinaFaceOnnxDetector(retinaface_file, kind="scrfd")
    with pytest.raises(WeightsError, match=r"det_synthetic\.onnx.*expected 3 outputs"):
        RetinaFaceOnnxDetector(scrfd_file, kind="retinaface")
    four = constant_model(tmp_path / "four.onnx", encode_scrfd(_letterbox())[:4])
    with pytest.raises(WeightsError, match=r"four\.onnx.*it has 4 outputs"):
        RetinaFaceOnnxDetector(four)
    widths = constant_model(tmp_path / "widths.onnx", [o[..., :3] for o in encode_retinaface(_letterbox())])
    with pytest.raises(WeightsError, match=r"widths\.onnx.*widths \[2, 4, 10\]"):
        RetinaFaceOnnxDetector(widths)
    with pytest.raises(ConfigError):
        RetinaFaceOnnxDetector(scrfd_file, kind="yolo")
    with pytest.raises(ConfigError):
        RetinaFaceOnnxDetector(scrfd_file, score_threshold=1.5)


def test_non_finite_outputs(tmp_path):
    outputs = encode_scrfd(_letterbox())
    outputs[0][0, 0] = np.nan
    with pytest.raises(NumericalError, match="nan_scores.onnx"):
        RetinaFaceOnnxDetector(constant_model(tmp_path / "nan_scores.onnx", outputs))(_photo())


def test_bad_images(scrfd_file):
    det = RetinaFaceOnnxDetector(scrfd_file)
    for image in (np.zeros((20, 20), np.uint8), np.zeros((20, 20, 3), np.float32), [[0, 0, 0]]):
        with pytest.raises(ImageError):
            det.detect(image)


def test_registered(scrfd_file, retinaface_file):
    assert {"retinaface-onnx", "scrfd-onnx"} <= set(base.list_detectors("*-onnx"))
    assert base.get_detector("retinaface-onnx", model_path=retinaface_file).kind == "retinaface"
    auto = base.get_detector("retinaface-onnx", model_path=scrfd_file, score_threshold=0.8)
    assert auto.kind == "scrfd" and auto.score_threshold == 0.8
    assert base.get_detector("scrfd-onnx", weights=str(scrfd_file)).name == "scrfd-onnx"
    with pytest.raises(WeightsError, match="mnet_synthetic.onnx"):
        base.get_detector("scrfd-onnx", model_path=retinaface_file)
    with pytest.raises(ConfigError, match="model_path"):
        base.get_detector("retinaface-onnx")
    with pytest.raises(ConfigError):
        base.get_detector("scrfd-onnx", model_path=scrfd_file, kind="retinaface")


# ---------------------------------------------------------------------------------------------
# bad files


@pytest.mark.parametrize("content", ["empty", "text", "truncated", "missing", "directory"])
def test_bad_model_files(tmp_path, scrfd_file, content):
    path = tmp_path / f"bad_{content}.onnx"
    if content == "empty":
        path.write_bytes(b"")
    elif content == "text":
        path.write_text("this is not an ONNX model\n")
    elif content == "truncated":
        data = scrfd_file.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif content == "directory":
        path.mkdir()
    with pytest.raises(WeightsError, match=f"bad_{content}.onnx"):
        RetinaFaceOnnxDetector(path)
