//go:build !race

package spikecontrol

const raceEnabled = false
