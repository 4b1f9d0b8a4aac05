#!/usr/bin/env bash
# The full test suite (unit + system + lint). pytest's exit code 5 ("no tests collected") is a
# failure here: a suite that silently collects nothing must not pass.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mkdir -p out
python -m pytest "$@"
rc=$?
if [ "$rc" = 5 ]; then
  echo "run_tests: pytest collected no tests" >&2
  exit 1
fi
exit "$rc"
