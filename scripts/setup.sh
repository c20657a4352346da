#!/usr/bin/env bash
# Installs what SpikeServe needs on Debian (run as root, or with sudo available). Idempotent:
# packages already present are not fetched again.
set -euo pipefail
packages=(libopenblas-dev libjpeg-dev libpng-dev pkg-config)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "setup: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
echo "setup: system packages ready"
