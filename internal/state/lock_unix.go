//go:build unix

package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// LockInfo describes the holder of a state lock; it is written into the lock file while the lock is held.
type LockInfo struct {
	PID      int       `json:"pid"`
	Hostname string    `json:"hostname"`
	Time     time.Time `json:"time"`
	Command  string    `json:"command"`
}

// LockedError is returned by Local.Lock when another holder keeps the lock until the context is done.
// It wraps ErrLocked.
type LockedError struct {
	LockPath string
	Holder   *LockInfo // nil when the lock file holds no (readable) information
}

func (e *LockedError) Error() string {
	var b strings.Builder
	b.WriteString(ErrLocked.Error())
	if h := e.Holder; h != nil {
		fmt.Fprintf(&b, ": held by pid %d on host %s since %s", h.PID, h.Hostname, h.Time.Format(time.RFC3339))
		if h.Command != "" {
			fmt.Fprintf(&b, " (%s)", h.Command)
		}
	} else {
		b.WriteString(": held by another process")
	}
	// No advice to remove the lock file: the kernel releases a dead holder's flock, so the holder is alive;
	// removing the file would let the next process lock a new inode beside it.
	b.WriteString("; wait for it to finish")
	return b.String()
}

func (e *LockedError) Unwrap() error { return ErrLocked }

const (
	lockPollMin = 5 * time.Millisecond
	lockPollMax = 200 * time.Millisecond
	maxCommand  = 256
)

// Lock takes an exclusive advisory lock (flock) on <path>.lock, polling until ctx is done. Locks conflict
// between processes and between Lock calls of the same process. While held, the lock file names the holder.
// When ctx ends first, the error is a *LockedError (wrapping ErrLocked) that says who holds the lock.
func (l *Local) Lock(ctx context.Context) (func() error, error) {
	lockPath := l.LockPath()
	if err := os.MkdirAll(filepath.Dir(lockPath), 0o700); err != nil {
		return nil, fmt.Errorf("lock state: %w", err)
	}
	// The lock file is never removed by meshd: removing it while another process waits on the old inode
	// would let two processes hold "the" lock at once.
	f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("lock state: %w", err)
	}
	delay := lockPollMin
	for {
		err := flock(f, syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("lock state: flock %s: %w", lockPath, err)
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, &LockedError{LockPath: lockPath, Holder: readLockInfo(lockPath)}
		case <-time.After(delay):
		}
		delay = min(delay*2, lockPollMax)
	}
	if err := writeLockInfo(f); err != nil {
		_ = flock(f, syscall.LOCK_UN)
		f.Close()
		return nil, fmt.Errorf("lock state: write %s: %w", lockPath, err)
	}
	var once sync.Once
	var unlockErr error
	unlock := func() error {
		once.Do(func() {
			errs := []error{f.Truncate(0)}
			if err := flock(f, syscall.LOCK_UN); err != nil {
				errs = append(errs, fmt.Errorf("unlock %s: %w", lockPath, err))
			}
			errs = append(errs, f.Close())
			unlockErr = errors.Join(errs...)
		})
		return unlockErr
	}
	return unlock, nil
}

func flock(f *os.File, how int) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) { ferr = syscall.Flock(int(fd), how) }); err != nil {
		return err
	}
	return ferr
}

func writeLockInfo(f *os.File) error {
	host, _ := os.Hostname()
	cmd := strings.Join(os.Args, " ")
	if len(cmd) > maxCommand {
		cmd = cmd[:maxCommand] + "..."
	}
	data, err := json.Marshal(LockInfo{PID: os.Getpid(), Hostname: host, Time: time.Now().UTC().Truncate(time.Second), Command: cmd})
	if err != nil {
		return err
	}
	if err := f.Truncate(0); err != nil {
		return err
	}
	if _, err := f.WriteAt(append(data, '\n'), 0); err != nil {
		return err
	}
	return f.Sync()
}

func readLockInfo(path string) *LockInfo {
	data, err := os.ReadFile(path)
	if err != nil || len(strings.TrimSpace(string(data))) == 0 {
		return nil
	}
	var info LockInfo
	if err := json.Unmarshal(data, &info); err != nil || info.PID == 0 {
		return nil
	}
	return &info
}
