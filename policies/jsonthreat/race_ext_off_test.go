//go:build !race

package jsonthreat_test

const raceOn = false
