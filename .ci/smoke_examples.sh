#!/usr/bin/env bash
# Smoke test for the example servers: builds examples/basic and
# examples/failover, starts each on a free loopback port and checks that the
# same URL is answered MISS then HIT, and that SIGINT shuts it down cleanly
# (exit status 0; for basic, the final Monitor report is logged).
# Needs Go and curl.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

if ! command -v curl >/dev/null 2>&1; then
	echo "smoke: curl not found, installing it" >&2
	apt-get update -qq && apt-get install -y -qq curl >/dev/null
fi

tmp=$(mktemp -d)
pid=""
cleanup() {
	if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

log=""
name=""
fail() {
	echo "smoke: $name FAILED: $*" >&2
	if [[ -n $log && -f $log ]]; then
		echo "---- $name server log ----" >&2
		cat "$log" >&2
		echo "---- end of log ----" >&2
	fi
	exit 1
}

# status URL: the value of the Microcache response header of a GET of URL.
status() {
	curl -sS --max-time 10 -o /dev/null -D - "$1" |
		tr -d '\r' | awk 'tolower($1) == "microcache:" { print $2 }'
}

# start NAME: runs the NAME binary on 127.0.0.1:0 (a free port), waits for
# it to print its URL and to answer, and sets pid, log and url.
start() {
	name=$1
	log="$tmp/$name.log"
	"$tmp/$name" -addr 127.0.0.1:0 >"$log" 2>&1 &
	pid=$!
	url=""
	for _ in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || fail "exited before answering"
		url=$(grep -o -m1 'http://127\.0\.0\.1:[0-9]*/' "$log" || true)
		if [[ -n $url ]] && curl -s -o /dev/null --max-time 1 "${url}smoke-ready"; then
			return
		fi
		sleep 0.1
	done
	fail "did not answer within 10s (url: '${url}')"
}

# expect_miss_hit PATH: GET PATH twice, expecting MISS then HIT.
expect_miss_hit() {
	local first second
	first=$(status "$url$1") || fail "GET /$1 failed"
	second=$(status "$url$1") || fail "GET /$1 failed"
	[[ $first == MISS && $second == HIT ]] ||
		fail "GET /$1 twice: Microcache headers '$first' then '$second', want MISS then HIT"
}

# stop: SIGINT, then wait up to 10s for exit status 0.
stop() {
	kill -INT "$pid"
	for _ in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$pid" 2>/dev/null && fail "still running 10s after SIGINT"
	local rc=0
	wait "$pid" || rc=$?
	pid=""
	[[ $rc == 0 ]] || fail "exit status $rc after SIGINT, want 0"
}

go build -o "$tmp/basic" ./examples/basic
go build -o "$tmp/failover" ./examples/failover

start basic
expect_miss_hit "smoke?q=1"
stop
grep -q 'Hits' "$log" || fail "no final Monitor report (Hits) in the log"
echo "smoke: basic ok"

start failover
expect_miss_hit "smoke"
code=$(curl -sS --max-time 10 -o /dev/null -w '%{http_code}' "${url}toggle") || fail "GET /toggle failed"
[[ $code == 200 ]] || fail "GET /toggle: status $code, want 200"
stop
echo "smoke: failover ok"
