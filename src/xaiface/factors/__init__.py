"""Influencing factors (D5.2 §2): image transforms and the study of their effect on recognition
and on its explanations."""
from __future__ import annotations

from .._plugins import lazy_exports

#: public names and the submodule defining each, imported on first use (the command line
#: imports this package for its sub-commands; nothing heavy is loaded until a name is used)
_EXPORTS = {
    "CallableCodec": ".transforms",
    "Codec": ".transforms",
    "CommandCodec": ".transforms",
    "Compose": ".transforms",
    "FactorInfo": ".transforms",
    "Transform": ".transforms",
    "Transformed": ".transforms",
    "factor_info": ".transforms",
    "get_transform": ".transforms",
    "list_factors": ".transforms",
    "parse_spec": ".transforms",
    "psnr": ".transforms",
    "register_codec": ".transforms",
    "register_factor": ".transforms",
    "skin_mask": ".transforms",
    "unregister_factor": ".transforms",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
