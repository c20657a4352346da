#!/usr/bin/env bash
# Fuzzes the HTTP request parser with libFuzzer + AddressSanitizer.
#   bash scripts/fuzz-http-parser.sh            # 600 s
#   SECONDS_TO_RUN=60 bash scripts/fuzz-http-parser.sh
# The parser (HTTPParser.swift + HTTPTypes.swift) is compiled standalone, without swift-log.
# New corpus entries go to .build-fuzz/corpus (git-ignored); the committed seeds in
# Fuzz/corpus/http-parser are only read. Crash inputs land in .build-fuzz/ as crash-*.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .build-fuzz/corpus
# ld.gold warns about every ASan helper symbol ("Cannot export local symbol"): harmless, filtered.
swiftc -sanitize=fuzzer,address -parse-as-library -O \
  Sources/HTTPServer/HTTPParser.swift Sources/HTTPServer/HTTPTypes.swift Sources/HTTPServer/RequestBodyStream.swift Fuzz/HTTPParserFuzz.swift \
  -o .build-fuzz/http-parser-fuzz 2>&1 | { grep -v "Cannot export local symbol" || true; }
[ "${PIPESTATUS[0]}" -eq 0 ] || { echo "fuzz-http-parser: build failed" >&2; exit 1; }
log=.build-fuzz/last-run.log
set +e
.build-fuzz/http-parser-fuzz .build-fuzz/corpus Fuzz/corpus/http-parser \
  -max_total_time="${SECONDS_TO_RUN:-600}" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
  -print_final_stats=1 -artifact_prefix=.build-fuzz/ 2>&1 | tee "$log" | grep -E "^(#[0-9]+ +(INITED|DONE)|Done|==|SUMMARY)" || true
status=${PIPESTATUS[0]}
set -e
runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "$log" | grep -oE '[0-9]+$' || echo "?")
echo "fuzz-http-parser: ${runs} executions, exit status ${status} (full log: ${log})"
exit "$status"
