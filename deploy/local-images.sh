#!/usr/bin/env bash
# Set up this machine to build and run the compose stack with podman, and build the images.
# Idempotent: every step is skipped when its result is already there.
#
#   deploy/local-images.sh            # set up + build crm-app, crm-postgres, crm-rabbitmq
#   CRM_SKIP_APT=1 deploy/local-images.sh   # don't touch apt (already installed)
#
# Why (issue 8): Docker's engine doesn't run here but podman does; crun fails on this host's
# hybrid cgroups and on setrlimit, so runc with no default ulimits; no image registry is
# reachable, so the base image is made with debootstrap; HTTPS from inside a container fails
# certificate checks (the host trusts an extra CA the image lacks), so Python packages come
# from a wheelhouse built on the host.
set -euo pipefail
cd "$(dirname "$0")/.."

BASE_IMAGE=${CRM_BASE_IMAGE:-localhost/debian-base:bookworm}
MIRROR=${CRM_DEBIAN_MIRROR:-http://deb.debian.org/debian}
ROOTFS=build/debian-rootfs
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] && PYTHON=.venv/bin/python

stamp() { date +%s; }
took() { echo "== $1: $(( $(stamp) - $2 ))s"; }

# 1. packages
t=$(stamp)
if [ -z "${CRM_SKIP_APT:-}" ]; then
    missing=
    for p in podman podman-compose debootstrap runc; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"
    done
    if [ -n "$missing" ]; then
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing
    fi
fi
took "packages" "$t"

# 2. containers.conf: runc, no default ulimits, no pids limit (a drop-in, merged with any containers.conf)
conf=/etc/containers/containers.conf.d/50-crm-local.conf
want='# written by deploy/local-images.sh (crm): crun fails on this host (hybrid cgroups, setrlimit)
[containers]
default_ulimits = []
pids_limit = 0

[engine]
runtime = "runc"'
if [ "$(cat "$conf" 2>/dev/null)" != "$want" ]; then
    mkdir -p "$(dirname "$conf")"
    printf '%s\n' "$want" > "$conf"
fi
[ "$(podman info --format '{{.Host.OCIRuntime.Name}}')" = runc ] || { echo "podman does not use runc" >&2; exit 1; }

# 3. the base image, made once with debootstrap
t=$(stamp)
if ! podman image exists "$BASE_IMAGE"; then
    if [ ! -f "$ROOTFS/.complete" ]; then
        rm -rf "$ROOTFS"
        mkdir -p build
        debootstrap --variant=minbase bookworm "$ROOTFS" "$MIRROR"
        touch "$ROOTFS/.complete"
    fi
    rm -rf "$ROOTFS"/var/cache/apt/archives/*.deb "$ROOTFS"/var/lib/apt/lists/*
    tar -C "$ROOTFS" --exclude=./.complete -c . | podman import --change 'CMD ["/bin/bash"]' - "$BASE_IMAGE"
    rm -rf "$ROOTFS"
fi
took "base image $BASE_IMAGE" "$t"

# 4. the wheelhouse, on the host (its pip reaches PyPI with the host's CA bundle)
t=$(stamp)
# offline first: nothing to fetch when the wheelhouse already holds every pinned requirement
"$PYTHON" -m pip wheel -q --no-index --find-links build/wheels -r requirements.txt -w build/wheels 2>/dev/null \
    || "$PYTHON" -m pip wheel -q -r requirements.txt -w build/wheels
took "wheelhouse build/wheels" "$t"

# 5. the images (podman's layer cache makes a rebuild with no change quick)
build() {
    local tag=$1 file=$2 t
    t=$(stamp)
    podman build --format docker --build-arg BASE_IMAGE="$BASE_IMAGE" -t "$tag" -f "$file" .
    took "image $tag" "$t"
}
build crm-postgres:latest deploy/postgres.Dockerfile
build crm-rabbitmq:latest deploy/rabbitmq.Dockerfile
build crm-app:latest Dockerfile
