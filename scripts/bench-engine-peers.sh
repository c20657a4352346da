#!/usr/bin/env bash
# SpikeServe's engine against the PyTorch peers in ../shared/peers (see their README), same run,
# alternating, ROUNDS rounds (default 3); prints every round and the medians with ratios.
#   SpikeServe: spikeserve bench Models/mnist-cnn (version 2), batch 100, T = 4, 8, 32, on the committed
#               MNIST fixture images (real spike rates), and the STDB step at T = 8, batch 32
#   time-batched peer: torch_snn_peer.py --speed (same model files, 2 threads)
#   per-step peer: torch_speed.py (the reference code's loop; inference at batch 100 and STDB training, T = 8, batch 32)
# Usage: bash scripts/bench-engine-peers.sh [ROUNDS]   env: VENV (default $HOME/peers-venv), PEERS (../shared/peers)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
VENV=${VENV:-$HOME/peers-venv}
PEERS=${PEERS:-../shared/peers}
[ -x "$VENV/bin/python" ] || { echo "bench-engine-peers: install the peers first (see $PEERS/README.md)" >&2; exit 1; }
swift build -c release --product spikeserve >/dev/null
bin=$(swift build -c release --show-bin-path)/spikeserve
out=$(mktemp -d)
for r in $(seq "$ROUNDS"); do
  "$bin" bench Models/mnist-cnn --data Tests/SNNTests/Fixtures/mnist-small --timesteps 4 8 32 --json > "$out/ss-$r.json"
  "$bin" bench Models/mnist-cnn --data Tests/SNNTests/Fixtures/mnist-small --timesteps 8 --finetune --json > "$out/ssft-$r.json"
  "$VENV/bin/python" "$PEERS/torch_snn_peer.py" Models/mnist-cnn --speed --timesteps 4 8 32 > "$out/tb-$r.json"
  "$VENV/bin/python" "$PEERS/torch_speed.py" 4 8 32 > "$out/ps-$r.json"
  echo "round $r done" >&2
done
python3 - "$out" "$ROUNDS" <<'PY'
import json, statistics, sys
d, rounds = sys.argv[1], int(sys.argv[2])
rows = {}
def add(key, v): rows.setdefault(key, []).append(v)
for r in range(1, rounds + 1):
    ss = json.load(open(f"{d}/ss-{r}.json")); ft = json.load(open(f"{d}/ssft-{r}.json"))
    tb = json.load(open(f"{d}/tb-{r}.json")); ps = json.load(open(f"{d}/ps-{r}.json"))
    for i in ss["inference"]:
        t = i["timesteps"]
        add(("infer", t, "spikeserve"), i["imagesPerSecond"])
        add(("infer", t, "torch time-batched"), tb["images_per_second"][str(t)])
        add(("infer", t, "torch per-step"), ps["infer"][str(t)])
    add(("train", 8, "spikeserve"), ft["finetuning"][0]["imagesPerSecond"])
    add(("train", 8, "torch per-step"), ps["train_T8"])
print("| workload | SpikeServe (rounds) | median | time-batched PyTorch median | per-step PyTorch median | ratio to time-batched | ratio to per-step |")
print("| --- | --- | --- | --- | --- | --- | --- |")
for kind, t in [("infer", 4), ("infer", 8), ("infer", 32), ("train", 8)]:
    s = rows[(kind, t, "spikeserve")]; m = statistics.median(s)
    tbm = statistics.median(rows[(kind, t, "torch time-batched")]) if (kind, t, "torch time-batched") in rows else None
    psm = statistics.median(rows[(kind, t, "torch per-step")])
    name = f"inference T={t}, batch 100" if kind == "infer" else f"STDB step T={t}, batch 32"
    print(f"| {name} | {' / '.join(f'{v:,.0f}' for v in s)} | {m:,.0f} | {'' if tbm is None else f'{tbm:,.0f}'} | {psm:,.0f} | "
          f"{'' if tbm is None else f'{m / tbm:.1f}×'} | {m / psm:.1f}× |")
PY
rm -rf "$out"
