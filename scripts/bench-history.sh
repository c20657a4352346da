#!/usr/bin/env bash
# What each change gained: builds the given commits (release, each in its own worktree and scratch
# folder under .build-history/), then, for ROUNDS rounds, runs every build's engine benchmark and the
# PyTorch peers alternately, and prints a table of medians (images/s) with ratios to the same-run peers.
#   workloads: inference batch 100 at T = 4, 8, 32 on the committed MNIST fixture images (real spike
#   rates); the STDB fine-tuning step at T = 8, batch 32.
# Usage: bash scripts/bench-history.sh [-r ROUNDS] COMMIT...   (e.g. fac1d82 f4fdfb6 HEAD)
# Commits before f4fdfb6 have the older `bench --model` interface; both are understood.
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=3
[ "${1:-}" = "-r" ] && { ROUNDS=$2; shift 2; }
VENV=${VENV:-$HOME/peers-venv}
PEERS=${PEERS:-../shared/peers}
root=$(pwd)
mkdir -p .build-history
bins=()
for c in "$@"; do
  id=$(git rev-parse --short "$c")
  wt=$root/.build-history/wt-$id
  [ -d "$wt" ] || git worktree add -q --detach "$wt" "$id"
  (cd "$wt" && swift build -c release --product spikeserve --scratch-path "$root/.build-history/build-$id" >"$root/.build-history/build-$id.log" 2>&1) || { cat "$root/.build-history/build-$id.log" >&2; exit 1; }
  bins+=("$id:$root/.build-history/build-$id/release/spikeserve")
done
out=$(mktemp -d)
data=Tests/SNNTests/Fixtures/mnist-small
for r in $(seq "$ROUNDS"); do
  for b in "${bins[@]}"; do
    id=${b%%:*}; bin=${b#*:}
    if "$bin" bench --help 2>/dev/null | grep -q -- '--finetune'; then
      "$bin" bench Models/mnist-cnn --data $data --timesteps 4 8 32 --json > "$out/$id-$r-infer.json"
      "$bin" bench Models/mnist-cnn --data $data --timesteps 8 --finetune --batch 1 --json > "$out/$id-$r-train.json"
    else
      "$bin" bench --model Models/mnist-cnn --data $data > "$out/$id-$r-old.txt"
    fi
  done
  "$VENV/bin/python" "$PEERS/torch_snn_peer.py" Models/mnist-cnn --speed --timesteps 4 8 32 > "$out/peer-$r-tb.json"
  "$VENV/bin/python" "$PEERS/torch_speed.py" 4 8 32 > "$out/peer-$r-ps.json"
  echo "round $r done" >&2
done
python3 - "$out" "$ROUNDS" "${bins[@]}" <<'PY'
import json, os, re, statistics, sys
d, rounds, bins = sys.argv[1], int(sys.argv[2]), [b.split(":")[0] for b in sys.argv[3:]]
def figures(i, r):
    old = f"{d}/{i}-{r}-old.txt"
    if os.path.exists(old):
        t = open(old).read()
        f = {int(m.group(1)): float(m.group(2)) for m in re.finditer(r"T=\s*(\d+) batch 100:\s+([\d.]+) images/s", t)}
        m = re.search(r"fine-tuning step \(stdb\) T=8 batch 32:\s+([\d.]+)", t)
        return {"4": f.get(4), "8": f.get(8), "32": f.get(32), "train": float(m.group(1)) if m else None}
    a = json.load(open(f"{d}/{i}-{r}-infer.json")); b = json.load(open(f"{d}/{i}-{r}-train.json"))
    f = {str(x["timesteps"]): x["imagesPerSecond"] for x in a["inference"]}
    f["train"] = b["finetuning"][0]["imagesPerSecond"]
    return f
med = lambda xs: statistics.median([x for x in xs if x is not None]) if any(x is not None for x in xs) else None
peer = {k: med([json.load(open(f"{d}/peer-{r}-tb.json"))["images_per_second"][k] for r in range(1, rounds + 1)]) for k in ["4", "8", "32"]}
ps = {k: med([json.load(open(f"{d}/peer-{r}-ps.json"))["infer"][k] for r in range(1, rounds + 1)]) for k in ["4", "8", "32"]}
ps["train"] = med([json.load(open(f"{d}/peer-{r}-ps.json"))["train_T8"] for r in range(1, rounds + 1)])
print(f"medians of {rounds} alternating rounds, images/s (ratio to time-batched PyTorch; STDB: to per-step PyTorch)")
print("| build | T = 4 | T = 8 | T = 32 | STDB step T = 8, batch 32 |")
print("| --- | --- | --- | --- | --- |")
fmt = lambda v, p: "—" if v is None else f"{v:,.0f} ({v / p:.1f}×)"
for i in bins:
    rs = [figures(i, r) for r in range(1, rounds + 1)]
    m = {k: med([x.get(k) for x in rs]) for k in ["4", "8", "32", "train"]}
    print(f"| {i} | {fmt(m['4'], peer['4'])} | {fmt(m['8'], peer['8'])} | {fmt(m['32'], peer['32'])} | {fmt(m['train'], ps['train'])} |")
print(f"| PyTorch time-batched | {peer['4']:,.0f} | {peer['8']:,.0f} | {peer['32']:,.0f} | |")
print(f"| PyTorch per-step | {ps['4']:,.0f} | {ps['8']:,.0f} | {ps['32']:,.0f} | {ps['train']:,.0f} |")
PY
rm -rf "$out"
