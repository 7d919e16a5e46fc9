#!/usr/bin/env bash
# run.sh runs the RFC 9111 conformance suite http-tests/cache-tests
# (https://cache-tests.fyi) against microcache and summarizes the results.
#
#   tools/cachetests/run.sh                        # suite from npm (http-cache-tests 0.4.5)
#   SUITE_DIR=/path/to/cache-tests tools/cachetests/run.sh
#   CLASSES=/work/shared/cache-tests/classes.tsv OUT=/tmp/ct-out tools/cachetests/run.sh
#   TEST_ID=cc-resp-no-cache tools/cachetests/run.sh   # one test, with a request/response dump
#
# The classification of 2026-12-01 used the suite's GitHub commit b55b8bda. To run that one:
#
#   git clone https://github.com/http-tests/cache-tests /tmp/cache-tests   # or a local mirror
#   git -C /tmp/cache-tests checkout b55b8bda
#   SUITE_DIR=/tmp/cache-tests CLASSES=/work/shared/cache-tests/classes.tsv tools/cachetests/run.sh
#
# Environment:
#   SUITE_DIR      a suite checkout: the GitHub layout (test-engine/cli.mjs) or the npm one
#                  (cli.mjs and server/ at the top). `npm i --omit=dev` is run in it when it
#                  has no node_modules. Unset: the npm package http-cache-tests@$SUITE_VERSION
#                  (default 0.4.5; fewer tests than the GitHub commit) is fetched into
#                  $CACHE_DIR (default ${XDG_CACHE_HOME:-~/.cache}/microcache-cachetests).
#   OUT            where results go (default ${TMPDIR:-/tmp}/microcache-cachetests):
#                  results.json (the suite CLI's output), tests.json (test ids and kinds),
#                  summary.txt (passed/total per kind, failures by class), and the logs
#                  origin.log and proxy.log. With TEST_ID: test-<id>.txt instead.
#   CLASSES        a classification TSV (class, result, kind, test, why) to group failures by;
#                  unset or missing: failures are unclassified.
#   TTL            the proxy's Config.TTL (default 30s, as in the classification).
#   TEST_ID        run only this test and keep the suite's dump.
#
# Everything it starts listens on 127.0.0.1 only: the origin (node, its listen patched to
# loopback), and the proxy (go build of this directory). Only fetching the npm package and
# `npm i` use the network. Both servers are stopped by pid when the script exits.
# Requires go, node and npm (on Debian, as root, missing node/npm are installed with apt-get).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
OUT=${OUT:-${TMPDIR:-/tmp}/microcache-cachetests}
TTL=${TTL:-30s}
TEST_ID=${TEST_ID:-}
CLASSES=${CLASSES:-}
SUITE_VERSION=${SUITE_VERSION:-0.4.5}
CACHE_DIR=${CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/microcache-cachetests}

log() { printf 'run.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# The suite and the proxy talk to 127.0.0.1 directly, never through a proxy.
unset http_proxy HTTP_PROXY https_proxy HTTPS_PROXY all_proxy ALL_PROXY
export NO_PROXY=127.0.0.1,localhost no_proxy=127.0.0.1,localhost

pids=()
work=
cleanup() {
	local pid
	for pid in "${pids[@]}"; do
		kill -TERM "$pid" 2>/dev/null || true
	done
	for pid in "${pids[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	if [[ -n $work ]]; then
		rm -rf "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
	if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
		log "installing nodejs and npm with apt-get"
		apt-get update -qq && apt-get install -y -qq nodejs npm >/dev/null
	else
		die "node and npm are needed (apt-get install nodejs npm)"
	fi
fi
command -v go >/dev/null || die "go is needed"

# The suite.
if [[ -n ${SUITE_DIR:-} ]]; then
	suite=$(cd "$SUITE_DIR" && pwd)
else
	suite=$CACHE_DIR/http-cache-tests-$SUITE_VERSION
	if [[ ! -f $suite/package.json ]]; then
		log "fetching http-cache-tests@$SUITE_VERSION from npm into $CACHE_DIR"
		mkdir -p "$CACHE_DIR"
		tgz=$(cd "$CACHE_DIR" && npm pack --silent "http-cache-tests@$SUITE_VERSION" | tail -n 1)
		rm -rf "$suite.tmp" && mkdir -p "$suite.tmp"
		tar -xzf "$CACHE_DIR/$tgz" -C "$suite.tmp" --strip-components=1
		rm -f "$CACHE_DIR/$tgz"
		mv "$suite.tmp" "$suite"
	fi
fi
if [[ -f $suite/test-engine/cli.mjs ]]; then
	engine=$suite/test-engine # GitHub layout
elif [[ -f $suite/cli.mjs && -f $suite/server/server.mjs ]]; then
	engine=$suite # npm package 0.4.x
else
	die "$suite: neither test-engine/cli.mjs nor cli.mjs with server/ found"
fi
if [[ ! -d $suite/node_modules ]]; then
	log "npm i --omit=dev in $suite"
	(cd "$suite" && npm i --omit=dev --no-audit --no-fund --silent)
fi

mkdir -p "$OUT"
work=$(mktemp -d "${TMPDIR:-/tmp}/cachetests.XXXXXX")

# The proxy.
log "building tools/cachetests"
(cd "$root" && go build -o "$work/cachetests" ./tools/cachetests)

# wait_addr FILE PID PATTERN: print the first host:port that follows
# PATTERN in FILE, once the process PID has written it.
wait_addr() {
	local i addr
	for ((i = 0; i < 300; i++)); do
		addr=$(sed -n "s|^$3\\(127\\.0\\.0\\.1:[0-9]*\\).*|\\1|p" "$1" | head -n 1)
		if [[ -n $addr ]]; then
			printf '%s\n' "$addr"
			return 0
		fi
		kill -0 "$2" 2>/dev/null || break
		sleep 0.1
	done
	log "no address in $1:"
	cat "$1" >&2
	return 1
}

# The origin. Its server listens on all interfaces on the port given; the
# preloaded module makes every port-only listen() bind 127.0.0.1.
cat >"$work/loopback.mjs" <<'EOF'
import net from 'node:net'
const listen = net.Server.prototype.listen
net.Server.prototype.listen = function (port, ...rest) {
  if (typeof port === 'number' || (typeof port === 'string' && /^[0-9]+$/.test(port))) {
    return listen.call(this, Number(port), '127.0.0.1', ...rest.filter(a => typeof a === 'function'))
  }
  return listen.call(this, port, ...rest)
}
EOF
(cd "$suite" && exec env npm_config_port=0 npm_config_protocol=http \
	npm_config_pidfile="$work/origin.pid" \
	node --import "$work/loopback.mjs" "$engine/server/server.mjs") >"$OUT/origin.log" 2>&1 &
pids+=($!)
origin=$(wait_addr "$OUT/origin.log" "${pids[-1]}" 'Listening on http://')
log "origin on $origin"

"$work/cachetests" serve -addr 127.0.0.1:0 -origin "http://$origin" -ttl "$TTL" >"$OUT/proxy.log" 2>&1 &
pids+=($!)
proxy=$(wait_addr "$OUT/proxy.log" "${pids[-1]}" 'listening on http://')
log "proxy on $proxy"

# The client. npm_package_config_id is what the CLI falls back to when
# npm_config_id is empty; both must be set or it looks for test "undefined".
cli() {
	(cd "$suite" && exec env npm_config_base="http://$proxy" npm_config_id="$TEST_ID" \
		npm_package_config_id="" node --no-warnings "$engine/cli.mjs") &
	pids+=($!)
	wait "${pids[-1]}"
}
if [[ -n $TEST_ID ]]; then
	log "running $TEST_ID"
	cli >"$OUT/test-$TEST_ID.txt"
	cat "$OUT/test-$TEST_ID.txt"
	exit 0
fi
log "running the suite (a few minutes)"
cli >"$OUT/results.json"

# The tests and their kinds, as the CLI ran them: tests/index.mjs, plus
# the surrogate-control tests that the npm package's CLI adds.
# shellcheck disable=SC2016 # the single-quoted text is JavaScript
(cd "$suite" && node --input-type=module -e '
import fs from "node:fs"
import { pathToFileURL } from "node:url"
const [suite, cli] = process.argv.slice(1)
const load = async f => (await import(pathToFileURL(`${suite}/tests/${f}`))).default
const suites = await load("index.mjs")
if (/surrogate-control\.mjs/.test(fs.readFileSync(cli, "utf8"))) suites.push(await load("surrogate-control.mjs"))
const tests = suites.flatMap(s => s.tests.map(t => ({ id: t.id, kind: t.kind || "required" })))
process.stdout.write(JSON.stringify(tests, null, 1) + "\n")
' "$suite" "$engine/cli.mjs") >"$OUT/tests.json"

report=(-results "$OUT/results.json" -tests "$OUT/tests.json")
if [[ -n $CLASSES ]]; then
	report+=(-classes "$CLASSES")
fi
"$work/cachetests" report "${report[@]}" >"$OUT/summary.txt"
cat "$OUT/summary.txt"
log "results in $OUT"
