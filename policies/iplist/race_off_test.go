//go:build !race

package iplist

const raceEnabled = false
