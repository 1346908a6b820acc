//go:build race

package ratelimit

// raceEnabled: the race detector makes sync.Pool drop items at random, so
// allocation counts of the Redis client mean nothing under it.
const raceEnabled = true
