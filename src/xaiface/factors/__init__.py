"""Influencing factors (D5.2 §2): image transforms and the study of their effect on recognition
and on its explanations."""
from __future__ import annotations

from .._plugins import lazy_exports

#: public names and the submodule defining each, imported on first use (the command line
#: imports this package for its sub-commands; nothing heavy is loaded until a name is used)
_EXPORTS = {
    ".transforms": (
        "CallableCodec", "Codec", "CommandCodec", "Compose", "FactorInfo", "Transform", "Transformed",
        "factor_info", "get_transform", "list_factors", "parse_spec", "psnr", "register_codec",
        "register_factor", "skin_mask", "unregister_factor"
    ),
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
