#!/usr/bin/env bash
# Opt-in (not part of CI): build the image for real and run it, with no registry at hand.
#
#   sudo bash scripts/image-smoke.sh
#
# 1. a Debian bookworm base image (python3 + venv) made with debootstrap and `docker import`;
# 2. Debian's dockerd started by hand on a private socket and data root (no bridge, no iptables:
#    builds and containers use the host network, everything on 127.0.0.1);
# 3. `docker build --build-arg BASE_IMAGE=...`, then the image runs the simulator and, with a
#    read-only root filesystem, a tmpfs /tmp and a state volume, the exporter polling it;
# 4. /healthz, /readyz and /metrics are checked, the uid and the Docker health status reported.
# Everything it started is stopped and removed on exit. Needs root, apt and about 1 GB of disk.
set -euo pipefail
cd "$(dirname "$0")/.."

WORK=${WORK:-/var/tmp/agent-runs-exporter-smoke}
SOCK="unix://$WORK/docker.sock"
BASE=agent-runs-exporter-base:bookworm
IMAGE=agent-runs-exporter:smoke
SIM_PORT=${SIM_PORT:-18080}
PORT=9464  # the HEALTHCHECK's port
MIRROR=${MIRROR:-http://deb.debian.org/debian}

log() { printf '== %s\n' "$*" >&2; }
docker_() { docker --host "$SOCK" "$@"; }

cleanup() {
    set +e
    if [ -S "$WORK/docker.sock" ]; then
        docker_ rm -f are-smoke-exporter are-smoke-simulator >/dev/null 2>&1
        docker_ volume rm are-smoke-state >/dev/null 2>&1
    fi
    if [ -n "${DOCKERD_PID:-}" ]; then
        kill "$DOCKERD_PID" 2>/dev/null
        for _ in $(seq 1 30); do [ -e "/proc/$DOCKERD_PID" ] || break; sleep 1; done
    fi
}
trap cleanup EXIT

if ! command -v dockerd >/dev/null || ! command -v debootstrap >/dev/null; then
    log "installing docker.io and debootstrap from Debian"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        docker.io debootstrap >/dev/null
fi
mkdir -p "$WORK"

if [ ! -x "$WORK/rootfs/usr/bin/python3" ]; then
    log "debootstrap bookworm (python3, python3-venv) into $WORK/rootfs"
    rm -rf "$WORK/rootfs"
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
        bookworm "$WORK/rootfs" "$MIRROR" >"$WORK/debootstrap.log" 2>&1
    rm -rf "$WORK/rootfs/var/cache/apt/archives/"*.deb "$WORK/rootfs/var/lib/apt/lists/"*
fi
# The build's pip must trust what this host trusts (a TLS-inspecting proxy's CA, for example).
cp /etc/ssl/certs/ca-certificates.crt "$WORK/rootfs/etc/ssl/certs/ca-certificates.crt"
printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' >"$WORK/rootfs/etc/pip.conf"
tar -C "$WORK/rootfs" -cf "$WORK/rootfs.tar" .

log "starting dockerd on $SOCK"
dockerd --host "$SOCK" --data-root "$WORK/data" --exec-root "$WORK/exec" \
    --pidfile "$WORK/dockerd.pid" --bridge none --iptables=false --ip-masq=false \
    >"$WORK/dockerd.log" 2>&1 &
DOCKERD_PID=$!
for _ in $(seq 1 60); do docker_ info >/dev/null 2>&1 && break; sleep 1; done
docker_ info --format 'dockerd {{.ServerVersion}}, storage driver {{.Driver}}' >&2

log "importing the base image $BASE"
docker_ import "$WORK/rootfs.tar" "$BASE" >/dev/null

log "building $IMAGE"
started=$(date +%s)
docker_ build --network host --build-arg "BASE_IMAGE=$BASE" -t "$IMAGE" . >"$WORK/build.log" 2>&1 \
    || { tail -30 "$WORK/build.log" >&2; exit 1; }
log "built in $(( $(date +%s) - started )) s, $(docker_ image inspect "$IMAGE" --format '{{.Size}}') bytes"

log "running the simulator from the image on 127.0.0.1:$SIM_PORT"
docker_ run -d --name are-smoke-simulator --network host --read-only "$IMAGE" \
    simulate --host 127.0.0.1 --port "$SIM_PORT" --seed 3 --rate-limit 0 >/dev/null
agents_of() {
    python3 -c 'import json, sys, urllib.request
with urllib.request.urlopen(f"http://127.0.0.1:{sys.argv[1]}/v1/agents", timeout=2) as answer:
    print(json.dumps([agent["id"] for agent in json.load(answer)["data"]]))' "$1"
}
for _ in $(seq 1 30); do
    agents=$(agents_of "$SIM_PORT" 2>/dev/null) && break
    sleep 1
done
[ -n "${agents:-}" ] || { docker_ logs are-smoke-simulator >&2; exit 1; }

cat >"$WORK/config.yaml" <<EOF
listen: "127.0.0.1:$PORT"
poll_interval: 2s
traces: {exporter: none}
sources:
  - {name: smoke, platform: conduit, base_url: "http://127.0.0.1:$SIM_PORT", agents: $agents}
EOF
chmod 0644 "$WORK/config.yaml"

log "running the exporter: read-only root, tmpfs /tmp, state volume"
docker_ run -d --name are-smoke-exporter --network host --read-only --tmpfs /tmp \
    -v are-smoke-state:/var/lib/agent-runs-exporter \
    -v "$WORK/config.yaml:/etc/agent-runs-exporter/config.yaml:ro" "$IMAGE" >/dev/null

get() { python3 -c "import sys, urllib.request; print(urllib.request.urlopen(sys.argv[1], timeout=3).read().decode())" "$1"; }
for _ in $(seq 1 60); do get "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break; sleep 1; done
echo "healthz: $(get "http://127.0.0.1:$PORT/healthz")"
echo "readyz: $(get "http://127.0.0.1:$PORT/readyz")"
get "http://127.0.0.1:$PORT/metrics" | grep -c '^agent_runs_total{' | sed 's/^/agent_runs_total series: /'
echo "uid in the container: $(docker_ exec are-smoke-exporter python3 -c 'import os; print(os.getuid())')"
echo "state files: $(docker_ exec are-smoke-exporter ls /var/lib/agent-runs-exporter | tr '\n' ' ')"
if docker_ exec are-smoke-exporter touch /opt/venv/x 2>/dev/null; then
    echo "root filesystem is writable" >&2; exit 1
fi
for _ in $(seq 1 24); do
    health=$(docker_ inspect --format '{{.State.Health.Status}}' are-smoke-exporter)
    [ "$health" = starting ] || break
    sleep 5
done
echo "docker health: $health"
[ "$health" = healthy ]
log "image smoke test passed"
