#!/usr/bin/env bash
# README's first command: set up the machine, build SpikeServe in release mode and serve the
# shipped models (Models/) and the web page (Public/) on http://127.0.0.1:8080 until Ctrl-C.
# Extra arguments go to `spikeserve serve` (e.g. --port 9000).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
swift build -c release --product spikeserve
bin=$(swift build -c release --show-bin-path)/spikeserve
"$bin" system
exec "$bin" serve --models Models --public Public "$@"
