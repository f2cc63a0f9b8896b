#!/bin/sh
# Install the system packages the browser tests need: Debian's headless-capable Chromium
# (/usr/bin/chromium) and a font, so Swagger UI's text renders in screenshots. Playwright
# (from the project's `test` extra) drives this browser: it never downloads one of its own.
# Idempotent: a no-op when /usr/bin/chromium is present.
set -eu

PACKAGES="chromium fonts-liberation"

if [ -x /usr/bin/chromium ]; then
    echo "install.sh: chromium already installed ($(/usr/bin/chromium --version 2>/dev/null || echo '?'))"
    exit 0
fi
echo "install.sh: /usr/bin/chromium is missing; installing $PACKAGES"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
# shellcheck disable=SC2086
if ! $SUDO apt-get install -y --no-install-recommends $PACKAGES; then
    $SUDO apt-get update
    $SUDO apt-get install -y --no-install-recommends $PACKAGES
fi
