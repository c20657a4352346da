#!/usr/bin/env bash
# Copies the CIFAR-10 recipe's results (scripts/train-cifar.sh) into Models/cifar10-cnn:
# version 1 converted by threshold balancing, 2 converted from QCFS clips, 3 the hybrid (default).
# Usage: bash scripts/ship-cifar.sh WORK_DIR
set -euo pipefail
cd "$(dirname "$0")/.."
work=${1:?usage: ship-cifar.sh WORK_DIR}
runs=(cifar-snn-qcfs cifar-snn-clip cifar-hybrid-clip)
for run in "${runs[@]}"; do
  [ -f "$work/$run/model.json" ] || { echo "ship-cifar: $work/$run is missing (run scripts/train-cifar.sh)" >&2; exit 1; }
done
[ -f "$work/cifar-hybrid-clip/ann.safetensors" ] || { echo "ship-cifar: the hybrid has no ann.safetensors" >&2; exit 1; }
grep -q "finetune $work/cifar-snn-clip " "$work/cifar-hybrid-clip/model.json" ||
  { echo "ship-cifar: the hybrid was not fine-tuned from $work/cifar-snn-clip" >&2; exit 1; }
rm -rf Models/cifar10-cnn
mkdir -p Models/cifar10-cnn
version=1
for run in "${runs[@]}"; do
  cp -r "$work/$run" "Models/cifar10-cnn/$version"
  # The served name is the directory's; the recipe's run names stay in the provenance.
  python3 - "Models/cifar10-cnn/$version/model.json" <<'PY'
import json, sys
path = sys.argv[1]
model = json.load(open(path))
model["name"] = "cifar10-cnn"
json.dump(model, open(path, "w"), indent=2, sort_keys=True, ensure_ascii=False)
PY
  version=$((version + 1))
done
echo '{"default_version": 3}' > Models/cifar10-cnn/serving.json
du -sh Models/cifar10-cnn/*
