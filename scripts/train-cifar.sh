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
#    30 epochs with ReLU (87.12% on the validation split), then 20 more with the clip-floor-shift
#    activation (QCFS, Bu et al. 2022; 8 levels, the T the model is shipped for) from those weights,
#    lr 0.01 decayed the same way: the network the SNN is converted from.
train() { # OUT EPOCHS ARGS...
  local out=$1 epochs=$2
  shift 2
  [ -f "$work/$out/model.json" ] && return
  local resume=""
  [ -d "$work/$out.checkpoint" ] && resume="--resume"
  run train --arch cifar-vgg --data "$data" --epochs "$epochs" --batch-norm --crop-padding 4 --flip \
    --out "$work/$out" $resume "$@"
}
train cifar-vgg-ann 30 --lr 0.05
train cifar-vgg-qcfs8 20 --lr 0.01 --qcfs-levels 8 --initialize-from "$work/cifar-vgg-ann"
ann="$work/cifar-vgg-qcfs8"

# 2. Conversion. Version 1: the paper's threshold balancing (max current × 0.7, membranes from 0),
#    the baseline. Version 2: thresholds from the trained clips, membranes from θ/2 (QCFS).
[ -f "$work/cifar-snn-qcfs/model.json" ] || run convert "$ann" --data "$data" --out "$work/cifar-snn-qcfs" \
  --scale 0.7 --calibration-images 512 --calibration-timesteps 64 --encoding direct --default-timesteps 32 \
  --evaluate-timesteps 8 32 128 --evaluate-limit 1000 --exit-budget 0
[ -f "$work/cifar-snn-clip/model.json" ] || run convert "$ann" --data "$data" --out "$work/cifar-snn-clip" \
  --thresholds clip --encoding direct --default-timesteps 8 --evaluate-timesteps 4 8 16 --evaluate-limit 1000 \
  --exit-budget 0

# 3. Version 3, the hybrid: spike-based fine-tuning of version 2 at T = 8 (the budget it is shipped
#    for; linear surrogate, Adam lr 1e-4: on 3,000 images it gained more than 3e-5), then the
#    exit policy calibrated at T = 16.
if [ ! -f "$work/cifar-hybrid-clip/model.json" ]; then
  resume=""
  [ -d "$work/cifar-hybrid-clip.checkpoint" ] && resume="--resume"
  run finetune "$work/cifar-snn-clip" --data "$data" --timesteps 8 --epochs "${FINETUNE_EPOCHS:-2}" --batch-size 32 \
    --lr 1e-4 --surrogate linear --alpha 0.3 --seed 1 --exit-budget 16 --out "$work/cifar-hybrid-clip" $resume
fi

# 4. Measurements on the validation split.
run evaluate "$ann" --data "$data" --split validation --ann --json
for t in 2 4 8 16; do run evaluate "$work/cifar-hybrid-clip" --data "$data" --split validation --timesteps $t --json; done
echo "to ship: bash scripts/ship-cifar.sh $work"
