//go:build !linux

package redistest

import "os/exec"

// setDeathSignal does nothing where there is no parent-death signal; the
// test's cleanup kills the server.
func setDeathSignal(*exec.Cmd) {}
