//go:build !race

package ratelimit_test

const raceOn = false
