package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/flexgate/flexgate/bench/procs"
)

// ProcUsage is what /proc says about a process and its children.
type ProcUsage struct {
	// CPUSeconds is user+system time consumed since start.
	CPUSeconds float64
	// PeakRSSKiB sums VmHWM over the tree: it over-counts pages shared
	// between nginx's master and workers, which makes nginx look heavier,
	// never lighter.
	PeakRSSKiB int64
	// RSSKiB sums VmRSS over the tree right now.
	RSSKiB int64
}

// treeUsage reads the process pid and its direct children (nginx workers;
// HAProxy, Caddy and flexgate are one process each).
func treeUsage(pid int) (ProcUsage, error) {
	pids := append([]int{pid}, children(pid)...)
	var u ProcUsage
	for i, p := range pids {
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			if i == 0 {
				return u, fmt.Errorf("process %d is gone: %w", pid, err)
			}
			continue // a child may exit between listing and reading
		}
		s, err := procs.ParseStat(stat)
		if err != nil {
			return u, err
		}
		u.CPUSeconds += s.CPUSeconds
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p))
		if err != nil {
			continue
		}
		u.PeakRSSKiB += statusKiB(status, "VmHWM:")
		u.RSSKiB += statusKiB(status, "VmRSS:")
	}
	return u, nil
}

// statusKiB reads one "Key:   123 kB" line of /proc/PID/status.
func statusKiB(b []byte, key string) int64 {
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, key); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n
			}
		}
	}
	return 0
}

// children lists the processes whose parent is pid.
func children(pid int) []int {
	ents, _ := filepath.Glob("/proc/[0-9]*/stat")
	var out []int
	for _, e := range ents {
		b, err := os.ReadFile(e)
		if err != nil {
			continue
		}
		if s, err := procs.ParseStat(b); err == nil && s.PPID == pid {
			if p, err := strconv.Atoi(filepath.Base(filepath.Dir(e))); err == nil {
				out = append(out, p)
			}
		}
	}
	return out
}
