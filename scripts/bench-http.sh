#!/usr/bin/env bash
# Benchmarks HTTPServer against nginx on the same fixed JSON answer ({"ok":true}):
#   wrk -t2 -c64 -d10s --latency against each, alternating, ROUNDS times (default 3), then prints
#   every round and the median requests/s and p99 of each server (single runs on a shared 2-core
#   machine vary by 10-20%, so one round is not a measurement).
# HTTPServer: the http-bench target (release build) on 127.0.0.1:18080.
# nginx: 2 workers on 127.0.0.1:18081 from a temporary prefix (not the system service).
# Installs wrk and nginx with apt-get when missing. Stops both servers on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
missing=()
command -v wrk >/dev/null 2>&1 || missing+=(wrk)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || missing+=(nginx)
if [ ${#missing[@]} -gt 0 ]; then
  echo "bench-http: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)

tmp=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT

mkdir -p "$tmp/logs" "$tmp/temp"
cat > "$tmp/nginx.conf" <<CONF
worker_processes 2;
daemon off;
pid $tmp/nginx.pid;
error_log $tmp/logs/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $tmp/temp/body;
    proxy_temp_path $tmp/temp/proxy;
    fastcgi_temp_path $tmp/temp/fastcgi;
    uwsgi_temp_path $tmp/temp/uwsgi;
    scgi_temp_path $tmp/temp/scgi;
    server {
        listen 127.0.0.1:18081;
        location / {
            default_type application/json;
            return 200 '{"ok":true}';
        }
    }
}
CONF
"$nginx_bin" -p "$tmp" -e "$tmp/logs/error.log" -c "$tmp/nginx.conf" &
pids+=($!)

echo "bench-http: building http-bench (release)"
swift build -c release --product http-bench --scratch-path "$root/.build-bench" >/dev/null
bin="$(swift build -c release --product http-bench --scratch-path "$root/.build-bench" --show-bin-path)/http-bench"
HTTP_BENCH_PORT=18080 "$bin" >/dev/null &
pids+=($!)

wait_for() {
  for _ in $(seq 1 100); do
    curl -fsS -o /dev/null "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "bench-http: $1 did not come up" >&2
  return 1
}
wait_for http://127.0.0.1:18080/json
wait_for http://127.0.0.1:18081/json

rounds=${ROUNDS:-3}
declare -A rps_list p99_list
run() {
  local name=$1 url=$2 out rps p99
  echo "bench-http: wrk -t2 -c64 -d10s --latency $url"
  out=$(wrk -t2 -c64 -d10s --latency "$url")
  echo "$out" | sed 's/^/  /'
  rps=$(echo "$out" | awk '/^Requests\/sec:/ {print $2}')
  p99=$(echo "$out" | awk '$1 == "99%" {print $2}')
  # wrk prints p99 with a unit (us/ms/s); keep milliseconds for the median.
  p99=$(echo "$p99" | awk '/us$/ {printf "%.3f", $1/1000; next} /ms$/ {printf "%.3f", $1+0; next} /s$/ {printf "%.3f", $1*1000}')
  rps_list[$name]+="$rps "
  p99_list[$name]+="$p99 "
}
for round in $(seq 1 "$rounds"); do
  echo "bench-http: round $round of $rounds"
  run HTTPServer http://127.0.0.1:18080/json
  run nginx http://127.0.0.1:18081/json
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
echo
printf '%-12s %-40s %14s %12s\n' server "requests/s per round" "median req/s" "median p99"
for name in HTTPServer nginx; do
  printf '%-12s %-40s %14s %9s ms\n' "$name" "${rps_list[$name]}" "$(echo "${rps_list[$name]}" | median)" "$(echo "${p99_list[$name]}" | median)"
done
ours=$(echo "${rps_list[HTTPServer]}" | median)
theirs=$(echo "${rps_list[nginx]}" | median)
awk -v a="$ours" -v b="$theirs" 'BEGIN {printf "HTTPServer / nginx (medians): %.0f%%\n", 100*a/b}'
