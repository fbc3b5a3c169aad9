//go:build linux

package main

import (
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// dieWithParent asks the kernel to send SIGTERM to this process when the
// process that started it exits, so a crashed test run leaves no server behind.
func dieWithParent() {
	ppid := os.Getppid()
	_ = unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGTERM), 0, 0, 0)
	if os.Getppid() != ppid { // the parent exited before the call took effect
		_ = syscall.Kill(os.Getpid(), syscall.SIGTERM)
	}
}
