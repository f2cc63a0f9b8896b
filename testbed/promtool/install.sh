#!/bin/sh
# Install Prometheus's promtool (Debian bookworm's `prometheus` package ships it), which checks
# and unit-tests the chart's alerting rules (tests/deploy/test_alerts.py). Idempotent: a no-op
# when promtool is present. The package's service is not started (no init system here; the
# policy below keeps it off where there is one).
set -eu

if command -v promtool >/dev/null 2>&1; then
    echo "testbed/promtool/install.sh: promtool already installed ($(promtool --version 2>&1 | head -n 1))"
    exit 0
fi
echo "testbed/promtool/install.sh: installing prometheus (for promtool)"

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
# never start the Prometheus server the package brings: only its promtool is wanted
policy=/usr/sbin/policy-rc.d
added_policy=""
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
    $SUDO chmod 0755 "$policy"
    added_policy=1
fi
cleanup() { if [ -n "$added_policy" ]; then $SUDO rm -f "$policy"; fi; }
trap cleanup EXIT
if ! $SUDO apt-get install -y --no-install-recommends prometheus; then
    $SUDO apt-get update
    $SUDO apt-get install -y --no-install-recommends prometheus
fi
promtool --version
