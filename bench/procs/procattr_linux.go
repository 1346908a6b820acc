package procs

import "syscall"

// procAttr puts a server in its own process group, and kills it if the
// harness dies first (kill -9, a crash), so no server outlives a run.
func procAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
