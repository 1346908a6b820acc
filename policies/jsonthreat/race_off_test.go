//go:build !race

package jsonthreat

const raceEnabled = false
