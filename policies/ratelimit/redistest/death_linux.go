package redistest

import (
	"os/exec"
	"syscall"
)

// setDeathSignal kills the server if the test process dies first, so that
// a crashed or timed-out test leaves no redis-server behind.
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
