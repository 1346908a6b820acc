//go:build race

package specvalidation_test

// raceEnabled: the race detector makes sync.Pool drop items at random, so
// allocation counts of code that pools mean nothing under it.
const raceEnabled = true
