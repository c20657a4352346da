#!/usr/bin/env bash
# Builds the project's Dockerfile — unchanged but for its two base-image arguments — with buildah
# (no Docker engine needed), runs the image, and checks /healthz, a classify and that the server
# runs as a non-root user. Run as root on Debian: bash scripts/container-test.sh
#
# No image registry is reachable on these machines, so the base images are local stand-ins:
#   localhost/spikeserve-debian:bookworm-slim  Debian bookworm from debootstrap (--variant=minbase)
#   localhost/spikeserve-swift:bookworm        that, plus the Swift toolchain (SWIFT_ROOT, default
#                                              /opt/swift), the packages the official Swift image
#                                              carries, and the local copies of the Swift packages
#                                              the build resolves (SWIFT_PACKAGES, default
#                                              /opt/swift-packages, through git's url.insteadOf)
# Where registries are reachable, build with the defaults instead: docker build -t spikeserve .
set -euo pipefail
cd "$(dirname "$0")/.."
if pgrep -x spikeserve >/dev/null; then echo "stop the spikeserve processes running here first (the check finds the server by name)"; exit 1; fi
work=${WORK:-/var/tmp/spikeserve-container}
swift_root=${SWIFT_ROOT:-/opt/swift}
packages=${SWIFT_PACKAGES:-/opt/swift-packages}
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
port=${PORT:-18080}
export BUILDAH_ISOLATION=chroot
step() { echo "== $*"; }

step "tools"
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq buildah debootstrap curl >/dev/null
mkdir -p "$work"

exists() { buildah inspect --type image "$1" >/dev/null 2>&1; }

if ! exists localhost/spikeserve-debian:bookworm-slim; then
  step "Debian bookworm base (debootstrap)"
  rm -rf "$work/rootfs"
  debootstrap --variant=minbase bookworm "$work/rootfs" "$mirror" >"$work/debootstrap.log"
  rm -rf "$work/rootfs/var/cache/apt/archives/"*.deb "$work/rootfs/var/lib/apt/lists/"*
  tar -C "$work/rootfs" -cf "$work/rootfs.tar" .
  ctr=$(buildah from scratch)
  buildah add "$ctr" "$work/rootfs.tar" / >/dev/null
  buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --cmd /bin/bash "$ctr"
  buildah commit -q "$ctr" localhost/spikeserve-debian:bookworm-slim >/dev/null
  buildah rm "$ctr" >/dev/null
  rm -rf "$work/rootfs" "$work/rootfs.tar"
fi

if ! exists localhost/spikeserve-swift:bookworm; then
  step "Swift build base (toolchain from $swift_root, packages from $packages)"
  ctr=$(buildah from localhost/spikeserve-debian:bookworm-slim)
  # What the official swift:bookworm image installs besides the toolchain.
  buildah run "$ctr" -- sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    binutils git gnupg2 libc6-dev libcurl4-openssl-dev libedit2 libgcc-12-dev libpython3-dev libsqlite3-0 libstdc++-12-dev \
    libxml2-dev libncurses-dev libz3-dev pkg-config tzdata zlib1g-dev ca-certificates >/dev/null && rm -rf /var/lib/apt/lists/*'
  buildah copy "$ctr" "$swift_root" /opt/swift >/dev/null
  buildah copy "$ctr" "$packages" /opt/swift-packages >/dev/null
  buildah run "$ctr" -- git config --system url./opt/swift-packages/.insteadOf https://github.com/
  buildah config --env PATH=/opt/swift/usr/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$ctr"
  buildah commit -q "$ctr" localhost/spikeserve-swift:bookworm >/dev/null
  buildah rm "$ctr" >/dev/null
fi

[ "${BASES_ONLY:-}" = 1 ] && { echo "stand-in base images ready"; exit 0; }

step "build the Dockerfile (docker format, for HEALTHCHECK)"
start=$(date +%s)
buildah bud --isolation chroot --format docker --layers=false \
  --build-arg SWIFT_IMAGE=localhost/spikeserve-swift:bookworm \
  --build-arg RUNTIME_IMAGE=localhost/spikeserve-debian:bookworm-slim \
  -t localhost/spikeserve:test . >"$work/build.log" 2>&1 || { tail -40 "$work/build.log"; exit 1; }
echo "built in $(($(date +%s) - start)) s"
buildah inspect --type image --format '{{.Docker.Config.User}} {{.Docker.Config.Cmd}} {{.Docker.Config.ExposedPorts}} {{.Docker.Config.Healthcheck.Test}} {{.Docker.Config.Volumes}}' localhost/spikeserve:test
buildah images --format '{{.Name}}:{{.Tag}} {{.Size}}' localhost/spikeserve:test

step "run it"
ctr=$(buildah from localhost/spikeserve:test)
server_pid() { pgrep -n -x spikeserve; }
cleanup() {
  # The server runs under buildah in a chroot: stop it by its own pid, then buildah.
  [ -n "$(server_pid)" ] && kill "$(server_pid)" 2>/dev/null || true
  [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null || true
  wait 2>/dev/null || true
  buildah rm "$ctr" >/dev/null 2>&1 || true
}
trap cleanup EXIT
# chroot isolation shares the host's network: the server is reached on 127.0.0.1 from here.
buildah run --isolation chroot --env SPIKESERVE_PORT="$port" "$ctr" -- spikeserve serve >"$work/run.log" 2>&1 &
pid=$!
for _ in $(seq 1 120); do
  curl -fsS "http://127.0.0.1:$port/readyz" >/dev/null 2>&1 && break
  sleep 0.5
done
step "checks"
echo "healthz: $(curl -fsS "http://127.0.0.1:$port/healthz")"
answer=$(curl -fsS --data-binary @Tests/ServingTests/Fixtures/seven.png -H 'Content-Type: image/png' "http://127.0.0.1:$port/v1/models/mnist-cnn/classify")
label=$(printf '%s' "$answer" | python3 -c 'import json, sys; print(json.load(sys.stdin)["results"][0]["predictions"][0]["label"])')
echo "classify seven.png: $label"
# The server itself (the newest process named spikeserve), not buildah, which runs as root.
user=$(ps -o user= -p "$(server_pid)" | tr -d ' ')
echo "server process user: $user (uid $(ps -o uid= -p "$(server_pid)" | tr -d ' '))"
[ "$label" = "7" ] && [ "$user" != "root" ] && echo "container-test: OK"
