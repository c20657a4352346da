#!/usr/bin/env bash
# Classify latency and throughput of the shipped model under 32 concurrent keep-alive clients:
#   1. wrk -t2 -c32 -d15s POSTing a 28×28 PNG to /v1/models/mnist-cnn/classify (default T)
#   2. 32 Python threads × 25 requests reading the server's own timing breakdown
#      (decode, queue, compute, batch size) from each response
# Usage: bash scripts/bench-classify.sh [EXTRA serve ARGS]
set -euo pipefail
cd "$(dirname "$0")/.."
command -v wrk >/dev/null || { echo "bench-classify: apt-get install wrk" >&2; exit 1; }
swift build -c release --product spikeserve >/dev/null
bin=$(swift build -c release --show-bin-path)/spikeserve
port=18090
"$bin" serve --port $port --models Models --public Public "$@" 2>/dev/null &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null' EXIT
for _ in $(seq 100); do curl -sf http://127.0.0.1:$port/readyz >/dev/null && break; sleep 0.2; done
lua=$(mktemp --suffix=.lua)
cat > "$lua" <<LUA
local f = io.open("Tests/ServingTests/Fixtures/seven.png", "rb")
wrk.method = "POST"
wrk.body = f:read("*all")
wrk.headers["Content-Type"] = "image/png"
f:close()
LUA
echo "== wrk, 32 connections, 15 s"
wrk -t2 -c32 -d15s --latency -s "$lua" "http://127.0.0.1:$port/v1/models/mnist-cnn/classify" | grep -E "Requests/sec|50%|90%|99%|Non-2xx|Socket errors|requests in"
rm -f "$lua"
echo "== per-request breakdown (32 threads × 25 requests)"
python3 - "$port" <<'PY'
import http.client, json, statistics, sys, threading, time
port = int(sys.argv[1])
body = open("Tests/ServingTests/Fixtures/seven.png", "rb").read()
rows, lock = [], threading.Lock()
def client():
    conn = http.client.HTTPConnection("127.0.0.1", port)
    for _ in range(25):
        t0 = time.perf_counter()
        conn.request("POST", "/v1/models/mnist-cnn/classify", body, {"Content-Type": "image/png"})
        r = conn.getresponse(); data = json.loads(r.read()); wall = (time.perf_counter() - t0) * 1e3
        t = data["results"][0]["timings_ms"]
        with lock: rows.append((wall, data["timings_ms"]["total"], t["decode"], t["queue"], t["compute"], t["batch_size"]))
threads = [threading.Thread(target=client) for _ in range(32)]
start = time.perf_counter()
for t in threads: t.start()
for t in threads: t.join()
elapsed = time.perf_counter() - start
def q(i, p): return sorted(r[i] for r in rows)[int(p * (len(rows) - 1))]
print(f"requests {len(rows)}, {len(rows) / elapsed:.0f} requests/s")
print(f"client latency ms: p50 {q(0, .5):.2f}  p99 {q(0, .99):.2f}")
print(f"server handler ms: p50 {q(1, .5):.2f}  p99 {q(1, .99):.2f}")
print(f"  decode ms p50 {q(2, .5):.3f}; queue ms p50 {q(3, .5):.2f} p99 {q(3, .99):.2f}; compute ms p50 {q(4, .5):.2f} p99 {q(4, .99):.2f}")
print(f"  mean batch size {statistics.mean(r[5] for r in rows):.1f}")
print(f"  HTTP + client share of p50: {q(0, .5) - q(1, .5):.2f} ms")
PY
