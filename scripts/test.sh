#!/usr/bin/env bash
# The whole test suite, from a fresh machine: set-up, lint, types, then every test on the real
# Milvus + RADOS Gateway stack the tests start themselves. Extra arguments go to pytest (and
# then one pytest runs exactly what they name).
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/bootstrap.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/lint-imports   # the layers of pyproject.toml: imports point down

pytest=(.venv/bin/python -m pytest -p no:cacheprovider)
if [ $# -gt 0 ]; then
    exec "${pytest[@]}" "$@"
fi

# Tests that mostly wait (the schedule's real cron minutes, resources going through their
# phases, writers' and readers' silences) use little CPU meanwhile: a second pytest runs them
# beside the rest, on a stack and a cluster of its own. Both must pass (and collect tests:
# pytest's exit code 5 is a failure too). Each prints its slowest tests, to keep this balanced.
MINUTES=(tests/e2e/test_schedule.py tests/e2e/test_lifecycle.py tests/e2e/test_resume.py
         tests/integration/test_in_use.py)
ignored=()
for file in "${MINUTES[@]}"; do ignored+=(--ignore "$file"); done
pytest+=(--durations=15)
base=$(mktemp -d "${TMPDIR:-/tmp}/mbo-tests.XXXXXX")
"${pytest[@]}" --basetemp "$base/minutes" "${MINUTES[@]}" >"$base/minutes.log" 2>&1 &
minutes=$!
trap 'kill "$minutes" 2>/dev/null || true' EXIT
status=0
"${pytest[@]}" --basetemp "$base/rest" "${ignored[@]}" || status=$?
wait "$minutes" || minutes_status=$?
echo "---- ${MINUTES[*]} (run beside the rest; their output) ----"
cat "$base/minutes.log"
if [ "${minutes_status:-0}" -ne 0 ]; then
    echo "${MINUTES[*]} failed (pytest exit code $minutes_status)" >&2
    [ "$status" -ne 0 ] || status=$minutes_status
fi
exit "$status"
