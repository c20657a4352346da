#!/usr/bin/env bash
# The CIFAR-10 recipe (issue 15): ANN → conversion → spike-based fine-tuning → exit calibration.
# Usage: bash scripts/train-cifar.sh [DATA_DIR] [WORK_DIR]
#   DATA_DIR: the extracted cifar10-train ImageFolder (default: extracts ../shared/datasets/cifar10-train.tar.gz)
# Every stage checkpoints each epoch and resumes: re-running the script picks up where it stopped
# (a session that ends mid-epoch loses only that epoch). Runs on one core (taskset -c 0) so that a
# second core stays free for other work; set CORES="0,1" to use both.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-}
work=${2:-/tmp/spikeserve-cifar}
cores=${CORES:-0}
mkdir -p "$work"
if [ -z "$data" ]; then
  data="$work/cifar10-train"
  [ -d "$data" ] || tar -xzf ../shared/datasets/cifar10-train.tar.gz -C "$work"
fi
# SPIKESERVE_BIN: a prebuilt binary to run instead of building this checkout.
bin=${SPIKESERVE_BIN:-}
if [ -z "$bin" ]; then
  swift build -c release --product spikeserve
  bin=$(swift build -c release --show-bin-path)/spikeserve
fi
run() { taskset -c "$cores" "$bin" "$@"; }

# 1. ANN: cifar-vgg (48-48-96-96-192-192 convolutions, average pooling, batch norm folded at
#    conversion, dropout), SGD momentum 0.9, lr 0.05 decayed ×0.1 at 50% and 75%, weight decay 5e-4,
#    random crops padded by 4 and horizontal flips; 10% of the images held out (seeded split).
if [ ! -f "$work/cifar-vgg-ann/model.json" ]; then
  resume=""
  [ -d "$work/cifar-vgg-ann.checkpoint" ] && resume="--resume"
  run train --arch cifar-vgg --data "$data" --epochs 30 --lr 0.05 --batch-norm --crop-padding 4 --flip \
    --out "$work/cifar-vgg-ann" $resume
fi

# 2. Conversion: threshold balancing (the paper's), membranes from 0 — the baseline — and from θ/2.
[ -f "$work/cifar-snn/model.json" ] || run convert "$work/cifar-vgg-ann" --data "$data" --out "$work/cifar-snn" \
  --scale 0.7 --calibration-images 512 --calibration-timesteps 64 --encoding direct --default-timesteps 32 \
  --evaluate-timesteps 8 32 128 --evaluate-limit 1000 --exit-budget 0
[ -f "$work/cifar-snn-half/model.json" ] || run convert "$work/cifar-vgg-ann" --data "$data" --out "$work/cifar-snn-half" \
  --scale 0.7 --calibration-images 512 --calibration-timesteps 64 --encoding direct --initial-membrane 0.5 \
  --default-timesteps 8 --evaluate-timesteps 4 8 16 --evaluate-limit 1000 --exit-budget 0

# 3. Hybrid: spike-based fine-tuning of the θ/2 conversion at T = 8 (the budget it is shipped for;
#    probes on a 10-epoch ANN: 3,000 images lift T = 8 from 64% to 73% at lr 1e-4, and training T = 4
#    alongside halves the T = 8 updates per epoch), then the exit policy calibrated at T = 16.
if [ ! -f "$work/cifar-hybrid/model.json" ]; then
  resume=""
  [ -d "$work/cifar-hybrid.checkpoint" ] && resume="--resume"
  run finetune "$work/cifar-snn-half" --data "$data" --timesteps 8 --epochs 2 --batch-size 32 \
    --lr 1e-4 --surrogate linear --alpha 0.3 --seed 1 --exit-budget 16 --out "$work/cifar-hybrid" $resume
fi

# 4. Measurements on the validation split.
run evaluate "$work/cifar-vgg-ann" --data "$data" --split validation --ann --json
for t in 2 4 8 16; do run evaluate "$work/cifar-hybrid" --data "$data" --split validation --timesteps $t --json; done
echo "to ship: mkdir -p Models/cifar10-cnn && cp -r $work/cifar-snn Models/cifar10-cnn/1 && cp -r $work/cifar-hybrid Models/cifar10-cnn/2 && echo '{\"default_version\": 2}' > Models/cifar10-cnn/serving.json"
