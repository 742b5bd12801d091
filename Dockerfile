# syntax=docker/dockerfile:1
# sf-forwarder container image: Debian 12 (bookworm) with its Python 3.11, non-root, read-only-root friendly.
# Build:  docker build -t sf-forwarder .    (behind a TLS-intercepting proxy add
#         --secret id=pip_cert,src=/etc/ssl/certs/ca-certificates.crt; scripts/container-smoke does that)
# Run:    docker run -v sf-state:/var/lib/sf-forwarder -v ./config.yaml:/etc/sf-forwarder/config.yaml:ro \
#           --read-only -p 9108:9108 sf-forwarder           (docs/operations.md)

# Debian packages are not pinned (hadolint DL3008): bookworm's archive replaces a version with each
# security update, so a pin would break the build rather than make it reproducible; Python packages are
# pinned with hashes by uv.lock.

# ---- build: locked dependencies + the project wheel with its compiled extension (gcc) ------------------
FROM debian:bookworm-slim AS build
ENV DEBIAN_FRONTEND=noninteractive \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/opt/sf-forwarder
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv python3-dev gcc libc6-dev ca-certificates \
 && rm -rf /var/lib/apt/lists/*
# uv reads uv.lock; it is installed into a throwaway venv (a build tool, not part of the image).
# Behind a TLS-intercepting proxy the CA bundle comes as the build secret "pip_cert" (never stored).
RUN --mount=type=secret,id=pip_cert \
    if [ -s /run/secrets/pip_cert ]; then export PIP_CERT=/run/secrets/pip_cert; fi \
 && python3 -m venv /opt/uv && /opt/uv/bin/pip install --quiet uv==0.13.9
WORKDIR /src
# Dependencies first, from the lock only, so this layer is cached until uv.lock changes.
COPY pyproject.toml uv.lock ./
RUN --mount=type=secret,id=pip_cert \
    if [ -s /run/secrets/pip_cert ]; then export SSL_CERT_FILE=/run/secrets/pip_cert; fi \
 && /opt/uv/bin/uv sync --frozen --no-dev --no-install-project --python /usr/bin/python3.11
# Then the project itself, built as a wheel (not editable) with the Cython extension compiled by gcc.
# uv.lock does not cover build requirements: they are pinned here (uv build --build-constraint; uv sync
# would ignore one) so the same source builds the same wheel.
COPY README.md setup.py ./
COPY forwarder ./forwarder
COPY sinks ./sinks
# config/ is the package forwarder.bundled in the wheel (pyproject.toml): demo.yaml, example.yaml, the rules
COPY config ./config
RUN --mount=type=secret,id=pip_cert \
    if [ -s /run/secrets/pip_cert ]; then export SSL_CERT_FILE=/run/secrets/pip_cert; fi \
 && printf 'setuptools==84.2.1\nCython==3.3.1\n' > /tmp/build-constraints.txt \
 && /opt/uv/bin/uv build --wheel --build-constraint /tmp/build-constraints.txt --python /usr/bin/python3.11 -o /tmp/dist \
 && /opt/uv/bin/uv pip install --no-deps --python /opt/sf-forwarder/bin/python /tmp/dist/*.whl \
 && /opt/sf-forwarder/bin/python -I -c "from forwarder.normalize import batch; assert batch.native_available()" \
 && /opt/sf-forwarder/bin/python -I -c "from forwarder.packaged import packaged_path as p; assert p('demo.yaml').is_file() and p('rules').is_dir()"

# ---- runtime: Python, CA certificates, the virtualenv; no compiler, no uv, no pip --------------------
FROM debian:bookworm-slim
ARG VERSION=0.1.0
LABEL org.opencontainers.image.title="sf-forwarder" \
      org.opencontainers.image.description="Forwards Salesforce security telemetry (Real-Time Event Monitoring, EventLogFile, SetupAuditTrail) to SIEMs through a durable journal." \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.base.name="debian:bookworm-slim" \
      org.opencontainers.image.documentation="docs/operations.md"
ENV DEBIAN_FRONTEND=noninteractive
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3.11 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --uid 10001 --user-group --no-create-home --home-dir /var/lib/sf-forwarder \
            --shell /usr/sbin/nologin sf-forwarder \
 && mkdir -p /var/lib/sf-forwarder /etc/sf-forwarder \
 && chown 10001:10001 /var/lib/sf-forwarder && chmod 0750 /var/lib/sf-forwarder
COPY --from=build /opt/sf-forwarder /opt/sf-forwarder
# The wheel carries demo.yaml and the default rules (`sf-forwarder demo`, `rules: {builtin: true}`); this
# readable copy of config/ is for operators (example.yaml to start from) and for configs that name
# /usr/share/sf-forwarder/config/rules (docs/operations.md).
COPY config /usr/share/sf-forwarder/config
# Nothing writes outside the state volume and /tmp: no .pyc at run time (all compiled at build time),
# and Python's own temp files go to /tmp (a tmpfs with --read-only).
ENV PATH=/opt/sf-forwarder/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    SF_FORWARDER_HEALTH_URL=http://127.0.0.1:9108/healthz
USER 10001:10001
WORKDIR /var/lib/sf-forwarder
VOLUME ["/var/lib/sf-forwarder"]
EXPOSE 9108
# The daemon drains in-flight batches for up to 20 s after SIGTERM: give `docker stop -t 30`,
# compose stop_grace_period: 30s, Kubernetes terminationGracePeriodSeconds >= 30.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen(os.environ['SF_FORWARDER_HEALTH_URL'], timeout=4)"]
ENTRYPOINT ["sf-forwarder"]
CMD ["run", "-c", "/etc/sf-forwarder/config.yaml"]
