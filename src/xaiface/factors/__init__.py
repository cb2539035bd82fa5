"""Influencing factors (D5.2 §2): image transforms and the study of their effect on recognition
and on its explanations."""
from .transforms import (  # noqa: F401
    CallableCodec, Codec, CommandCodec, Compose, FactorInfo, Transform, Transformed, factor_info, get_transform,
    list_factors, parse_spec, psnr, register_codec, register_factor, skin_mask, unregister_factor,
)
