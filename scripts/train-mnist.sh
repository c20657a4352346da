#!/usr/bin/env bash
# Reproduces the shipped Models/mnist-cnn: ANN training, conversion, and the accuracy table.
# Usage: bash scripts/train-mnist.sh [DATA_DIR] [WORK_DIR]
#   DATA_DIR: the extracted mnist-train ImageFolder (default: extracts ../shared/datasets/mnist-train.tar.gz)
# Every stage checkpoints; re-running the script resumes where it stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
data=${1:-}
work=${2:-/tmp/spikeserve-mnist}
mkdir -p "$work"
if [ -z "$data" ]; then
  data="$work/mnist-train"
  [ -d "$data" ] || tar -xzf ../shared/datasets/mnist-train.tar.gz -C "$work"
fi
swift build -c release --product spikeserve
bin=$(swift build -c release --show-bin-path)/spikeserve

# 1. ANN: SGD, momentum 0.9, weight decay 5e-4, lr 0.01 decayed ×0.1 at 50% and 75%, crops padded by 2.
if [ ! -f "$work/ann/model.json" ]; then
  resume=""
  [ -d "$work/ann.checkpoint" ] && resume="--resume"
  "$bin" train --arch mnist-cnn --data "$data" --epochs 15 --batch-size 64 --lr 0.01 --crop-padding 2 \
    --seed 1 --out "$work/ann" $resume
fi

# 2. Conversion: threshold balancing at scale 0.7 on 512 training images over 64 steps, for both
#    input encodings (the table in README compares them; the shipped model uses direct input).
for enc in poisson direct; do
  [ -f "$work/snn-$enc/model.json" ] || "$bin" convert "$work/ann" --data "$data" --out "$work/snn-$enc" --scale 0.7 \
    --calibration-images 512 --calibration-timesteps 64 --default-timesteps 32 --encoding $enc \
    --evaluate-timesteps 4 8 16 32 64
done

# 3. Spike-based fine-tuning of the direct-input SNN for budgets T=4 and T=8 at once (batches alternate),
#    with the piecewise-linear surrogate (more stable than STDB on this network, see README), Adam
#    (AMSGrad), lr 1e-4 halved at 60% and 80% of the epochs.
if [ ! -f "$work/hybrid/model.json" ]; then
  resume=""
  [ -d "$work/hybrid.checkpoint" ] && resume="--resume"
  "$bin" finetune "$work/snn-direct" --data "$data" --timesteps 4 --also-timesteps 8 --epochs 7 --batch-size 32 --lr 1e-4 \
    --surrogate linear --alpha 0.3 --seed 1 --out "$work/hybrid" $resume
fi

# 4. Version 3, for small budgets: conversion with every membrane starting at θ/2, fine-tuned for
#    T = 2, 4 and 8 at once, then the exit policy of adaptive time steps calibrated at T = 16.
[ -f "$work/snn-half/model.json" ] || "$bin" convert "$work/ann" --data "$data" --out "$work/snn-half" --scale 0.7 \
  --calibration-images 512 --calibration-timesteps 64 --default-timesteps 4 --encoding direct --initial-membrane 0.5 \
  --evaluate-timesteps 1 2 4 8 16
if [ ! -f "$work/hybrid-half/model.json" ]; then
  resume=""
  [ -d "$work/hybrid-half.checkpoint" ] && resume="--resume"
  "$bin" finetune "$work/snn-half" --data "$data" --timesteps 2 --also-timesteps 4 8 --epochs 7 --batch-size 32 --lr 1e-4 \
    --surrogate linear --alpha 0.3 --seed 1 --out "$work/hybrid-half" $resume
fi
[ -f "$work/hybrid-half-calibrated/model.json" ] || "$bin" calibrate-exit "$work/hybrid-half" --data "$data" --timesteps 16 \
  --rule margin --out "$work/hybrid-half-calibrated"

# 5. The accuracy table (validation split) for README, and the shipped copy.
for model in hybrid hybrid-half; do
  for t in 1 2 4 8 16 32; do
    "$bin" evaluate "$work/$model" --data "$data" --split validation --timesteps $t --json
  done
done
# Shipped layout: version 1 = the converted SNN (direct input), version 2 = the hybrid, version 3 =
# the small-budget hybrid with its exit policy (its default_timesteps set to 4), the default.
echo "to ship: rm -rf Models/mnist-cnn/1 Models/mnist-cnn/2 Models/mnist-cnn/3 && cp -r $work/snn-direct Models/mnist-cnn/1 && cp -r $work/hybrid Models/mnist-cnn/2 && cp -r $work/hybrid-half-calibrated Models/mnist-cnn/3"
