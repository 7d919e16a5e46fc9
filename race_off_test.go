//go:build !race

package microcache_test

const raceEnabled = false
