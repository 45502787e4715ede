# syntax=docker/dockerfile:1
#
# vllm-env-guard image: the admission webhook server (and the CLI: lint, explain, audit).
#
#   docker build -t vllm-env-guard \
#     --build-arg REVISION="$(git rev-parse HEAD)" --build-arg CREATED="$(date -u +%Y-%m-%dT%H:%M:%SZ)" .
#   docker run --rm vllm-env-guard explain VLLM_USE_V1=true
#
# Stage 1 installs the locked dependencies (requirements/server.txt, sha256-checked; written by
# scripts/lock-requirements) and the package with its [server] extra into a venv that has no pip;
# stage 2 copies that venv into a clean Python image, removes the base image's pip, and runs as a
# non-root user. tests/packaging/test_dockerfile.py runs hadolint on this file and replays both
# stages' install steps for real.

# python:3.12.12-slim-bookworm (multi-arch index), pinned by digest. Both stages must use the same
# image: the venv's python links to the base image's /usr/local/bin/python3.12.
ARG BASE_IMAGE=python:3.12.12-slim-bookworm@sha256:78e702aee4d693e769430f0d7b4f4858d8ea3f1118dc3f57fee3f757d0ca64b1

FROM ${BASE_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
# The locked dependencies first: this layer is reused until requirements/ changes.
COPY requirements/ requirements/
RUN python -m venv --without-pip /opt/venv \
    && pip --python /opt/venv/bin/python install --no-cache-dir --require-hashes --only-binary=:all: \
        -r requirements/server.txt \
    && pip install --no-cache-dir --require-hashes --only-binary=:all: -r requirements/build.txt

# Only what the wheel is built from (.dockerignore keeps the rest out of the context).
# README.m[d]: copied when present, and no error when it is not.
COPY pyproject.toml LICENSE README.m[d] ./
COPY webhook/ webhook/
# The build backend comes from requirements/build.txt (hash-checked), not from an isolated
# download; --no-deps: every dependency is already installed from the lock.
RUN pip wheel --no-cache-dir --no-deps --no-build-isolation -w /dist . \
    && pip --python /opt/venv/bin/python install --no-cache-dir --no-deps /dist/*.whl


FROM ${BASE_IMAGE}

ARG VERSION=0.1.0
# The commit and the build time (RFC 3339), set by the release workflow.
ARG REVISION=""
ARG CREATED=""
LABEL org.opencontainers.image.title="vllm-env-guard" \
      org.opencontainers.image.description="Kubernetes admission webhook and manifest linter that stops broken vLLM deployments: service-link collisions and bad VLLM_* values." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/vllm-env-guard/vllm-env-guard" \
      org.opencontainers.image.url="https://github.com/vllm-env-guard/vllm-env-guard" \
      org.opencontainers.image.documentation="https://github.com/vllm-env-guard/vllm-env-guard/tree/main/docs"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

# No pip at run time: the venv was made without it, and the base image's own pip goes here.
RUN python -m pip uninstall --yes --no-cache-dir pip

COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /
# A numeric non-root user (the "nonroot" uid of distroless images), so Kubernetes can verify
# runAsNonRoot without a passwd lookup.
USER 65532:65532

EXPOSE 8443 8080
ENTRYPOINT ["vllm-env-guard"]
CMD ["serve", "--port", "8443", "--health-port", "8080", "--tls-cert", "/tls/tls.crt", "--tls-key", "/tls/tls.key"]
