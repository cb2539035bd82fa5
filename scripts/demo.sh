#!/usr/bin/env bash
# Set up .venv if needed, then verify a real LFW pair with the default model (dlib-resnet)
# and print the verdict as JSON. Data folder: $XAIFACE_DATA or ../shared/data.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-env.sh
DATA=${XAIFACE_DATA:-../shared/data}
exec .venv/bin/xaiface verify "$DATA/lfw/images/Abel_Pacheco/Abel_Pacheco_0001.jpg" \
  "$DATA/lfw/images/Abel_Pacheco/Abel_Pacheco_0004.jpg" "$@"
