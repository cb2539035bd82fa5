#!/usr/bin/env bash
# Set up .venv if needed, then explain a real LFW pair with the default model (dlib-resnet):
# the verdict, xSSAB and CorrRISE maps (.npy), figure.png and report.html in runs/demo.
# Data folder: $XAIFACE_DATA or ../shared/data. Extra arguments go to `xaiface explain`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-env.sh
DATA=${XAIFACE_DATA:-../shared/data}
exec .venv/bin/xaiface explain "$DATA/lfw/images/Abel_Pacheco/Abel_Pacheco_0001.jpg" \
  "$DATA/lfw/images/Abel_Pacheco/Abel_Pacheco_0004.jpg" --method xssab --method corrrise --out runs/demo "$@"
