package testenv

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// StopTimeout is how long Stop waits after SIGTERM before it sends SIGKILL.
const StopTimeout = 5 * time.Second

// Process is a child process started in its own process group, so that stopping it also stops its children.
type Process struct {
	Name    string // e.g. "moto"
	PID     int
	LogPath string // the process's stdout and stderr

	cmd      *exec.Cmd
	done     chan struct{} // closed when the process has exited and been reaped
	waitErr  error
	stopOnce sync.Once
	stopErr  error
}

// StartProcess runs path with args in a new process group, stdout and stderr appended to logPath, and the
// current environment plus env. On Linux the child is also killed if this process dies without stopping it.
// The process runs until Stop, independent of any context.
func StartProcess(name, path string, args []string, env []string, logPath string) (*Process, error) {
	if err := os.MkdirAll(filepath.Dir(logPath), 0o755); err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child has its own copy
	fmt.Fprintf(logf, "# testenv: %s %s\n", path, strings.Join(args, " "))
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = append(os.Environ(), env...)
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("testenv: start %s: %w", name, err)
	}
	p := &Process{Name: name, PID: cmd.Process.Pid, LogPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// Done is closed when the process has exited.
func (p *Process) Done() <-chan struct{} { return p.done }

// Exited reports whether the process has exited, and how.
func (p *Process) Exited() (bool, error) {
	select {
	case <-p.done:
		return true, p.waitErr
	default:
		return false, nil
	}
}

// Signal sends sig to the process (not its group).
func (p *Process) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Stop sends SIGTERM to the process group, waits up to StopTimeout for the process to exit, then sends
// SIGKILL to the group; any group member left after the leader exited is killed too. It is idempotent and
// safe for concurrent use. An exit caused by Stop's signals is not an error.
func (p *Process) Stop() error {
	p.stopOnce.Do(func() {
		if exited, err := p.Exited(); exited {
			// It died on its own: report how, and clean up any children it left.
			_ = syscall.Kill(-p.PID, syscall.SIGKILL)
			if err != nil {
				p.stopErr = fmt.Errorf("testenv: %s (pid %d) had exited: %w", p.Name, p.PID, err)
			}
			return
		}
		_ = syscall.Kill(-p.PID, syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(StopTimeout):
			_ = syscall.Kill(-p.PID, syscall.SIGKILL)
			<-p.done
		}
		// Children that ignored SIGTERM or outlived the leader.
		_ = syscall.Kill(-p.PID, syscall.SIGKILL)
	})
	return p.stopErr
}

// LogTail returns up to the last n bytes of the process's log.
func (p *Process) LogTail(n int64) string { return tailFile(p.LogPath, n) }

func tailFile(path string, n int64) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err.Error()
	}
	off := max(fi.Size()-n, 0)
	data, _ := io.ReadAll(io.NewSectionReader(f, off, fi.Size()-off))
	s := string(data)
	if off > 0 {
		s = "...\n" + s
	}
	return s
}

const logTailBytes = 8 << 10

// stopOnCleanup stops p when the test ends and, when the test failed, logs the tail of p's log.
func stopOnCleanup(t testing.TB, p *Process) {
	t.Cleanup(func() {
		err := p.Stop()
		if t.Failed() {
			t.Logf("testenv: %s (pid %d) log %s:\n%s", p.Name, p.PID, p.LogPath, p.LogTail(logTailBytes))
		}
		if err != nil && !t.Failed() {
			t.Logf("%v", err)
		}
	})
}

// errExited is returned by waitReady when the process exits before it is ready.
var errExited = errors.New("exited before it was ready")

// waitReady polls ready every interval until it returns nil, the process exits, or ctx ends. The error names
// the process, the last probe error and the log.
func waitReady(ctx context.Context, p *Process, interval time.Duration, ready func(context.Context) error) error {
	var last error
	for {
		pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		last = ready(pctx)
		cancel()
		if last == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("testenv: %s (pid %d) %w (%v); log %s:\n%s", p.Name, p.PID, errExited, p.waitErr, p.LogPath, p.LogTail(logTailBytes))
		case <-ctx.Done():
			return fmt.Errorf("testenv: %s (pid %d) not ready: %w (last probe: %v); log %s:\n%s", p.Name, p.PID, ctx.Err(), last, p.LogPath, p.LogTail(logTailBytes))
		case <-time.After(interval):
		}
	}
}

// startReady starts a process and waits until ready answers. When the process exits before it is ready
// because an address was in use (a port taken between allocation and bind), it starts again, up to attempts
// times; args is called for each attempt and allocates the ports. On error the process is stopped.
func startReady(ctx context.Context, attempts int, name, path string, env []string, logPath string, interval time.Duration,
	args func() ([]string, func(context.Context) error, error)) (*Process, error) {
	var err error
	for attempt := 1; attempt <= attempts; attempt++ {
		var argv []string
		var ready func(context.Context) error
		argv, ready, err = args()
		if err != nil {
			return nil, err
		}
		var p *Process
		p, err = StartProcess(name, path, argv, env, logPath)
		if err != nil {
			return nil, err
		}
		err = waitReady(ctx, p, interval, ready)
		if err == nil {
			return p, nil
		}
		_ = p.Stop()
		if !errors.Is(err, errExited) || !strings.Contains(strings.ToLower(p.LogTail(logTailBytes)), "address already in use") {
			return nil, err
		}
	}
	return nil, err
}
