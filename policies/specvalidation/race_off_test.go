//go:build !race

package specvalidation_test

const raceEnabled = false
