//go:build unix && !linux

package testenv

import "syscall"

// sysProcAttr puts the child in its own process group, so that Stop reaches its children.
func sysProcAttr() *syscall.SysProcAttr { return &syscall.SysProcAttr{Setpgid: true} }
