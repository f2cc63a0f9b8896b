# syntax=docker/dockerfile:1
#
# The operator's image, also the image of its backup and restore Jobs:
#   docker build -t ghcr.io/milvus-backup-operator/milvus-backup-operator:0.1.0 .
# The operator Deployment runs `milvus-backup-operator run ...`, each Job
# `milvus-backup-operator job backup|restore NAMESPACE/NAME`, the REST server
# `milvus-backup-operator server ...`: one console script, on PATH, as the entrypoint.
#
# Runs as uid 65532 with a read-only root filesystem: nothing is written outside /tmp
# (mount an emptyDir there; the chart does).

# python:3.11.14-slim-bookworm, pinned by digest (bump both together)
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm@sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d

# ---------------------------------------------------------------- builder: the wheel
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator/ operator/
RUN python -m pip wheel --no-deps --wheel-dir /dist .

# ---------------------------------------------------------------- final: the wheel in a venv
FROM ${PYTHON_IMAGE}
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp \
    VIRTUAL_ENV=/opt/milvus-backup-operator \
    PATH=/opt/milvus-backup-operator/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# The wheel is bind-mounted from the builder, never copied into a layer; pip leaves the venv
# once the wheel and its dependencies are in (bytecode is compiled now, at build time).
RUN --mount=type=bind,from=builder,source=/dist,target=/dist \
    python -m venv "$VIRTUAL_ENV" \
 && "$VIRTUAL_ENV/bin/pip" install /dist/milvus_backup_operator-*.whl \
 && "$VIRTUAL_ENV/bin/pip" uninstall --yes pip \
 && groupadd --system --gid 65532 nonroot \
 && useradd --system --uid 65532 --gid 65532 --home-dir /tmp --no-create-home \
        --shell /usr/sbin/nologin nonroot \
 && milvus-backup-operator --help >/dev/null

USER 65532:65532
WORKDIR /tmp
EXPOSE 8080 9443
ENTRYPOINT ["milvus-backup-operator"]
CMD ["--help"]
