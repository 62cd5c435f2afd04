//go:build unix

package sandbox

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockAddressSet takes an exclusive, non-blocking lock on a file named after a set of loopback addresses,
// held until release is called or the process ends. CoreDNS binds with SO_REUSEPORT, so two sandboxes of
// two test processes (go test runs packages in parallel) that both found a set free could both bind it and
// then share its queries: the lock makes the check and the bind one step across processes.
func lockAddressSet(set string) (release func(), err error) {
	path := filepath.Join(os.TempDir(), fmt.Sprintf("meshd-sandbox-dns-%x.lock", set))
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("addresses %s are another sandbox's: %w", set, err)
	}
	return func() { f.Close() }, nil // closing the file releases the lock
}
