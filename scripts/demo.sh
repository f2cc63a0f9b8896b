#!/usr/bin/env bash
# The main job on the embedded default: start a real Milvus 2.3.5 and a real S3 server (Ceph
# RADOS Gateway), create sample collections, back them up, restore them with a suffix, check
# that the restored rows equal the originals, and stop everything.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/bootstrap.sh
exec .venv/bin/python -m scripts.demo "$@"
