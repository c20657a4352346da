#!/usr/bin/env bash
# README's first command: set up the machine, build SpikeServe in release mode and run it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
swift build -c release --product spikeserve
bin=$(swift build -c release --show-bin-path)/spikeserve
"$bin" system
"$bin" bench
