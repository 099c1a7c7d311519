# agent-runs-exporter: a small image with the wheel in a virtualenv, run as a fixed non-root user.
#
#   docker build -t agent-runs-exporter .
#   docker run --read-only --tmpfs /tmp -v are-state:/var/lib/agent-runs-exporter \
#     -v $PWD/config.yaml:/etc/agent-runs-exporter/config.yaml:ro -p 9464:9464 agent-runs-exporter
#
# The HEALTHCHECK speaks plain HTTP on 9464: with TLS (web.config_file) or another port, give
# `docker run --health-cmd ...` or --no-healthcheck.
# BASE_IMAGE must provide python3 (>= 3.11) with the venv module; both stages use it, so the
# virtualenv's interpreter path is the same in the final image.
ARG BASE_IMAGE=python:3.12-slim-bookworm

FROM ${BASE_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY exporter ./exporter
RUN python3 -m venv /opt/build \
    && /opt/build/bin/pip wheel --no-deps --wheel-dir /wheels . \
    && python3 -m venv /opt/venv \
    && /opt/venv/bin/pip install /wheels/*.whl \
    && find /opt/venv -name __pycache__ -prune -exec rm -rf {} +

FROM ${BASE_IMAGE}
ARG UID=10001
ARG GID=10001
RUN groupadd --system --gid "${GID}" exporter \
    && useradd --system --uid "${UID}" --gid exporter --no-create-home \
        --home-dir /var/lib/agent-runs-exporter --shell /usr/sbin/nologin exporter \
    && mkdir -p /var/lib/agent-runs-exporter /etc/agent-runs-exporter \
    && chown "${UID}:${GID}" /var/lib/agent-runs-exporter
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# The state file lives on this volume; the root filesystem can be read-only (add a tmpfs /tmp).
VOLUME ["/var/lib/agent-runs-exporter"]
WORKDIR /var/lib/agent-runs-exporter
USER ${UID}:${GID}
EXPOSE 9464
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python3", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:9464/healthz', timeout=4).status != 200)"]
ENTRYPOINT ["agent-runs-exporter"]
CMD ["run", "--config", "/etc/agent-runs-exporter/config.yaml"]
