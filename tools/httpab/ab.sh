#!/usr/bin/env bash
# tools/httpab/ab.sh [SIZE] [ROUNDS] [SECONDS]
#
# Builds tools/httpab, runs it on CPU 0 (GOMAXPROCS=1) and wrk on CPU 1,
# and measures bare, headers and cache in turn, ROUNDS times, SECONDS each
# (defaults 1024 bytes, 12 rounds, 3 s). Prints each round and the median
# req/s of each target with the ratios headers/bare, cache/headers and
# cache/bare. Needs wrk and taskset (apt-get install wrk util-linux).
set -euo pipefail
SIZE=${1:-1024} ROUNDS=${2:-12} SECS=${3:-3} PORT=${PORT:-18191}
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
for tool in wrk taskset; do command -v "$tool" >/dev/null || { echo "ab.sh: $tool is not installed" >&2; exit 1; }; done
bin=$(mktemp -d)
trap 'kill "${pid:-}" 2>/dev/null || true; rm -rf "$bin"' EXIT
go build -o "$bin/httpab" ./tools/httpab
GOMAXPROCS=1 taskset -c 0 "$bin/httpab" -size "$SIZE" -port "$PORT" >/dev/null &
pid=$!
for i in 0 1 2; do
  for _ in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$((PORT + i))/" && break; sleep 0.1; done
done
rps() { taskset -c 1 wrk -t1 -c50 -d"${2}s" "http://127.0.0.1:$1/" | awk '/Requests\/sec/ {print $2}'; }
for i in 0 1 2; do rps $((PORT + i)) 1 >/dev/null; done # warm up
echo "round bare headers cache"
for r in $(seq "$ROUNDS"); do
  echo "$r $(rps "$PORT" "$SECS") $(rps $((PORT + 1)) "$SECS") $(rps $((PORT + 2)) "$SECS")"
done | tee "$bin/rounds"
awk 'function median(v, n,   i, j, t) { for (i = 2; i <= n; i++) for (j = i; j > 1 && v[j-1] > v[j]; j--) { t = v[j]; v[j] = v[j-1]; v[j-1] = t }
       return n % 2 ? v[(n+1)/2] : (v[n/2] + v[n/2+1]) / 2 }
     { b[NR] = $2; h[NR] = $3; c[NR] = $4; n = NR }
     END { mb = median(b, n); mh = median(h, n); mc = median(c, n)
           printf "median req/s: bare %.0f, headers %.0f, cache %.0f\n", mb, mh, mc
           printf "headers/bare %.3f  cache/headers %.3f  cache/bare %.3f\n", mh / mb, mc / mh, mc / mb }' "$bin/rounds"
