#!/usr/bin/env bash
# The full test suite (unit + system + lint). pytest's exit code 5 ("no tests collected") is a
# failure here: a suite that silently collects nothing must not pass.
set -uo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
mkdir -p out
python -m pytest "$@"
rc=$?
# Safety net: no node started from this checkout may outlive the suite (an orphan holding the
# output pipe would keep CI waiting). Tests stop their own processes; this only catches a bug.
leftover=$(pgrep -f "$PWD/ros2_ws/install/.*/lib/" || true)
if [ -n "$leftover" ]; then
  echo "run_tests: stopping $(echo "$leftover" | wc -w) leftover node process(es)" >&2
  kill $leftover 2>/dev/null || true
fi
if [ "$rc" = 5 ]; then
  echo "run_tests: pytest collected no tests" >&2
  exit 1
fi
exit "$rc"
