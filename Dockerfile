# syntax=docker/dockerfile:1
# The aftershock operator image. Two stages: the builder makes a virtualenv and installs the
# project into it; the final stage copies only that virtualenv onto the same slim base, so no
# compiler, pip cache or source tree ships. Build: docker build -t aftershock:0.1.0 .

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
RUN python -m venv /opt/aftershock
COPY pyproject.toml README.md ./
COPY operator/ ./operator/
RUN /opt/aftershock/bin/pip install --no-cache-dir . \
    && /opt/aftershock/bin/python -m compileall -q /opt/aftershock/lib

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="aftershock" \
      org.opencontainers.image.description="Continuous chaos engineering operator for Kubernetes" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/aftershock/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
COPY --from=builder /opt/aftershock /opt/aftershock
USER 65532:65532
EXPOSE 8080 8081 9443
ENTRYPOINT ["/opt/aftershock/bin/aftershock", "run"]
