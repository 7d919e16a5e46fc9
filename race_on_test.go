//go:build race

package microcache_test

const raceEnabled = true
