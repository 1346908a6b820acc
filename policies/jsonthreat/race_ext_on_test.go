//go:build race

package jsonthreat_test

// raceOn: allocation counts mean nothing under the race detector.
const raceOn = true
