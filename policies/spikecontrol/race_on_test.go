//go:build race

package spikecontrol

// raceEnabled: the race detector's instrumentation allocates, and keeps
// what it allocates for every goroutine it has seen.
const raceEnabled = true
