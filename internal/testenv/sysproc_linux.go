package testenv

import "syscall"

// sysProcAttr puts the child in its own process group (so that Stop reaches its children) and has the
// kernel kill it when the thread that started it dies, so that a test binary killed by a timeout does not
// leave servers behind. Go does not end threads it created unless a goroutine locked to one exits, which
// nothing in meshd's tests does.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
