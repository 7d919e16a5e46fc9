#!/usr/bin/env bash
# Vets and tests the nested modules that the root module's ./... does not
# reach: the framework examples (examples/chi, gin, echo, fiber, each with
# its own go.mod) and acceptlang. Each runs go vet ./... and
# go test -race -count=1 ./... in its own directory, then checks that its
# go.mod and go.sum are tidy (they list the core's dependencies too, through
# the replace directive, so a change of the core's can leave them stale).
# The first failure stops the script, naming the module. Needs Go (and
# gcc, for -race); the modules' dependencies are downloaded on first use.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

modules=(examples/chi examples/gin examples/echo examples/fiber acceptlang)

for m in "${modules[@]}"; do
	echo "== $m"
	if ! (cd "$m" && go vet ./... && go test -race -count=1 ./...); then
		echo "smoke_frameworks: $m FAILED" >&2
		exit 1
	fi
	if ! (cd "$m" && go mod tidy -diff); then
		echo "smoke_frameworks: $m: go.mod or go.sum is not tidy: run go mod tidy in $m" >&2
		exit 1
	fi
done
echo "smoke_frameworks: ${#modules[@]} modules ok"
