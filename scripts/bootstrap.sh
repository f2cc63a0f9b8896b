#!/usr/bin/env bash
# Everything a fresh Debian bookworm machine needs: Ceph's RADOS Gateway (system packages)
# and a virtualenv with the project and its test extra (Milvus 2.3.5 embedded, pymilvus...).
# Idempotent: a second run only checks.
set -euo pipefail
cd "$(dirname "$0")/.."

testbed/stack/install.sh     # Ceph RADOS Gateway (the S3 server)
testbed/browser/install.sh   # Chromium, for the Swagger UI check
testbed/promtool/install.sh   # promtool, for the alerting rules' checks and unit tests
if [ ! -x .venv/bin/python ]; then
    python3 -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e ".[test]"
testbed/helm/install.sh      # a real helm binary, for the chart's tests
.venv/bin/python -m testbed.kube build   # kube-apiserver 1.20 from Debian's sources (cached)
