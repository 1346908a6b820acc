// Package loadtest holds the k6 scripts users run against their own
// deployment (smoke, load, stress, spike, soak, rate-limit). Its Go tests
// check that every script parses as an ES module and play the scenarios the
// scripts encode against a real flexgate on 127.0.0.1, so that a change to
// the gateway that would fail a user's k6 run fails here first.
package loadtest
