# The application image: one image for every service and role; the command picks them.
#
#   web:    gunicorn -c deploy/gunicorn.conf.py 'services.<name>.app:create_app()'   (the default CMD is the gateway)
#   worker: python -m services.<name>.worker
#
# Build (from the repo root, after `pip wheel -r requirements.txt -w build/wheels` on the host):
#   docker build -t crm-app .                                   # python:3.11-slim from a registry
#   podman build --build-arg BASE_IMAGE=localhost/debian-base:bookworm -t localhost/crm-app .   # this machine
#
# BASE_IMAGE may be any Debian bookworm image: without a Python of its own, Debian's python3
# (3.11 in bookworm) is installed.  Debian's packages come over its plain-HTTP mirrors (apt
# checks them against the signed Release files); Python packages come only from the wheelhouse
# build/wheels (pip --no-index), so nothing is fetched over HTTPS inside the build and TLS
# verification is never turned off.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS base
ENV DEBIAN_FRONTEND=noninteractive \
    LANG=C.UTF-8 \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
# The Makefile's DEBIAN_PACKAGES: the PDF renderer's CJK fonts (fonts-wqy-microhei first,
# /usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf as a fallback), poppler-utils for pdftotext.
RUN set -eux; \
    pkgs="fonts-wqy-microhei fonts-droid-fallback poppler-utils"; \
    if ! command -v python3 >/dev/null 2>&1; then pkgs="$pkgs python3 python3-venv"; fi; \
    apt-get update; \
    apt-get install -y --no-install-recommends $pkgs; \
    rm -rf /var/lib/apt/lists/* /var/cache/apt/archives/*.deb; \
    test -f /usr/share/fonts/truetype/wqy/wqy-microhei.ttc; \
    test -f /usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf; \
    python3 -c 'import sys; assert sys.version_info[:2] == (3, 11), sys.version'

# Dependencies in their own stage: the wheelhouse never reaches the final image.
FROM base AS deps
COPY requirements.txt /tmp/requirements.txt
COPY build/wheels/ /tmp/wheels/
RUN set -eux; \
    python3 -m venv /opt/venv; \
    /opt/venv/bin/pip install --no-cache-dir --no-index --find-links /tmp/wheels -r /tmp/requirements.txt; \
    /opt/venv/bin/pip check

# The source tree without the wheelhouse (.dockerignore keeps only build/wheels of build/).
FROM base AS src
COPY . /src
RUN rm -rf /src/build

FROM base
COPY --from=deps /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    CRM_VAR_DIR=/app/var \
    DOCUMENTS_DIR=/data/documents
RUN set -eux; \
    useradd --system --uid 10001 --user-group --home-dir /app --no-create-home crm; \
    mkdir -p /app/var /data/documents /data/mail; \
    chown crm:crm /app/var /data/documents /data/mail
WORKDIR /app
COPY --from=src /src/ /app/
USER crm
EXPOSE 8000 8001 8002 8003 8004
CMD ["gunicorn", "-c", "deploy/gunicorn.conf.py", "services.contracts.app:create_app()"]
