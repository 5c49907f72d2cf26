# syntax=docker/dockerfile:1.7
# One image, two entry points (the Deployments in manifests/ pick one):
#   python -m extender --config /etc/jitnode/config.yaml   kube-scheduler extender + webhook
#   python -m launcher --config /etc/jitnode/config.yaml   EC2 launcher
# Runs as a non-root user (65532) on a read-only root filesystem: bytecode is compiled at build
# time and nothing is written at runtime except to the /tmp emptyDir the manifests mount.

ARG PYTHON_VERSION=3.11

# --- build: wheels for jitnode and every dependency (numpy, highspy, orjson are binary wheels)
FROM python:${PYTHON_VERSION}-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY extender ./extender
COPY launcher ./launcher
COPY localcluster ./localcluster
COPY cli ./cli
RUN pip wheel --wheel-dir /wheels .

# --- runtime: only the installed wheels, no compilers, no pip cache
FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="jitnode" \
      org.opencontainers.image.description="Just-in-time node autoscaler for Kubernetes on AWS" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LOG_FORMAT=json
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels jitnode \
 && python -m compileall -q "$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \
 && groupadd --system --gid 65532 jitnode \
 && useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin jitnode
USER 65532:65532
WORKDIR /tmp
EXPOSE 8443
ENTRYPOINT ["python", "-m"]
CMD ["extender", "--help"]
