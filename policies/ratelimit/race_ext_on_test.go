//go:build race

package ratelimit_test

// raceOn: under the race detector every request runs several times slower,
// so the measured windows say more about the detector than about the limit.
const raceOn = true
