//go:build !race

package chain

const raceOn = false
