#!/bin/sh
# Install the system packages the test stack needs (Ceph's mon, OSD and RADOS Gateway, from
# Debian bookworm). Idempotent: a no-op when they are present. Python packages (milvus==2.3.5,
# pymilvus, minio) come from the project's `test` extra instead.
set -eu

PACKAGES="radosgw ceph-mon ceph-osd"
TOOLS="radosgw radosgw-admin ceph-mon ceph-osd ceph ceph-authtool monmaptool"

missing=""
for tool in $TOOLS; do
    command -v "$tool" >/dev/null 2>&1 || missing="$missing $tool"
done
if [ -z "$missing" ]; then
    echo "install.sh: ceph tools already installed ($(ceph --version 2>/dev/null || echo '?'))"
    exit 0
fi
echo "install.sh: missing:$missing; installing $PACKAGES"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086
if ! $SUDO apt-get install -y $PACKAGES; then
    $SUDO apt-get update
    $SUDO apt-get install -y $PACKAGES
fi
