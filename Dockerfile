# syntax=docker/dockerfile:1
#
# vllm-env-guard image: the admission webhook server (and the CLI: lint, explain, audit).
#
#   docker build -t vllm-env-guard .
#   docker run --rm vllm-env-guard explain VLLM_USE_V1=true
#
# Stage 1 builds the wheel from the sources; stage 2 installs it with its dependencies into a
# clean Python image and runs as a non-root user. tests/packaging/test_dockerfile.py lints this
# file and runs both install steps for real.

FROM python:3.12-slim AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /src
# Only what the wheel is built from (.dockerignore keeps the rest out of the context).
# README.m[d]: copied when present, and no error when it is not.
COPY pyproject.toml README.m[d] ./
COPY webhook/ webhook/
RUN pip wheel --no-cache-dir --no-deps -w /dist .


FROM python:3.12-slim

ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="vllm-env-guard" \
      org.opencontainers.image.description="Kubernetes admission webhook and manifest linter that stops broken vLLM deployments: service-link collisions and bad VLLM_* values." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/vllm-env-guard/vllm-env-guard" \
      org.opencontainers.image.url="https://github.com/vllm-env-guard/vllm-env-guard" \
      org.opencontainers.image.documentation="https://github.com/vllm-env-guard/vllm-env-guard/tree/main/docs"

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

# The wheel is bind-mounted from the build stage, so it never lands in a layer.
RUN --mount=type=bind,from=build,source=/dist,target=/dist \
    pip install --no-cache-dir /dist/*.whl

WORKDIR /
# A numeric non-root user (the "nonroot" uid of distroless images), so Kubernetes can verify
# runAsNonRoot without a passwd lookup.
USER 65532:65532

EXPOSE 8443
ENTRYPOINT ["vllm-env-guard"]
CMD ["serve", "--port", "8443", "--tls-cert", "/tls/tls.crt", "--tls-key", "/tls/tls.key"]
