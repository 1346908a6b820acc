//go:build race

package httpcache_test

// raceEnabled: the race detector's instrumentation allocates.
const raceEnabled = true
