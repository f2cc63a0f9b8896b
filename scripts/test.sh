#!/usr/bin/env bash
# The whole test suite, from a fresh machine: set-up, lint, types, then every test on the real
# Milvus + RADOS Gateway stack the tests start themselves. Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/bootstrap.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy
.venv/bin/lint-imports   # the layers of pyproject.toml: imports point down
exec .venv/bin/python -m pytest -p no:cacheprovider "$@"
