//go:build race

package chain

// raceOn: the race detector makes sync.Pool drop items at random (see
// raceEnabled in the external tests).
const raceOn = true
