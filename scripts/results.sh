#!/usr/bin/env bash
# Regenerates docs/results.md and its figures from the shipped models (issue 15's table in miniature).
# Usage: bash scripts/results.sh [MNIST_DIR] [CIFAR_DIR]
#   MNIST_DIR / CIFAR_DIR: extracted ImageFolders (default: extracted from ../shared/datasets into
#   /tmp/spikeserve-data). A model is measured only if its folder exists under Models/.
set -euo pipefail
cd "$(dirname "$0")/.."
data=/tmp/spikeserve-data
mkdir -p "$data"
mnist=${1:-$data/mnist-train}
cifar=${2:-$data/cifar10-train}
[ -d "$mnist" ] || tar -xzf ../shared/datasets/mnist-train.tar.gz -C "$data"
swift build -c release --product spikeserve >/dev/null
bin=$(swift build -c release --show-bin-path)/spikeserve
venv=.build-venv-results
[ -x $venv/bin/python ] || python3 -m venv $venv
$venv/bin/python -c "import matplotlib" 2>/dev/null || $venv/bin/pip install -q --disable-pip-version-check matplotlib
default() { python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['default_version'])" "$1/serving.json"; }
models=("mnist-cnn=Models/mnist-cnn:$mnist:1:$(default Models/mnist-cnn)")
if [ -d Models/cifar10-cnn ]; then
  [ -d "$cifar" ] || tar -xzf ../shared/datasets/cifar10-train.tar.gz -C "$data"
  # SNN rows on 2,000 of the 5,000 validation images: the converted model at T = 256 runs ~15 images/s.
  # Version 2: converted from the ANN's QCFS clips, the hybrid's starting point.
  models+=("cifar10-cnn=Models/cifar10-cnn:$cifar:1:$(default Models/cifar10-cnn):${CIFAR_LIMIT:-2000}:2")
fi
$venv/bin/python scripts/results.py "$bin" "${models[@]}"
