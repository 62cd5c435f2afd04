//go:build unix

package state

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestMain lets the test binary act as a second process holding the lock (see TestLockAcrossProcesses).
func TestMain(m *testing.M) {
	if path := os.Getenv("MESHD_STATE_TEST_HOLD_LOCK"); path != "" {
		os.Exit(holdLock(path))
	}
	os.Exit(m.Run())
}

func holdLock(path string) int {
	unlock, err := NewLocal(path).Lock(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("locked")
	// Hold the lock until the parent closes stdin.
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n')
	if err := unlock(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func TestLockContentionInProcess(t *testing.T) {
	l := NewLocal(filepath.Join(t.TempDir(), "state.json"))
	unlock, err := l.Lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// A second Lock opens its own file description, so it conflicts even in the same process.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = l.Lock(ctx)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("second lock: %v, want ErrLocked", err)
	}
	var le *LockedError
	if !errors.As(err, &le) || le.Holder == nil || le.Holder.PID != os.Getpid() {
		t.Fatalf("second lock error %#v does not name this process", err)
	}
	for _, want := range []string{fmt.Sprintf("held by pid %d on host ", os.Getpid()), " since ", "wait for it to finish"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not contain %q", err, want)
		}
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	if err := unlock(); err != nil { // idempotent
		t.Fatal(err)
	}
	if data, _ := os.ReadFile(l.LockPath()); len(data) != 0 {
		t.Fatalf("lock info left after unlock: %s", data)
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), time.Second)
	defer cancel2()
	unlock, err = l.Lock(ctx2)
	if err != nil {
		t.Fatalf("lock after unlock: %v", err)
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
}

func TestLockWaitsForRelease(t *testing.T) {
	l := NewLocal(filepath.Join(t.TempDir(), "state.json"))
	unlock, err := l.Lock(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(150 * time.Millisecond)
		_ = unlock()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	unlock2, err := l.Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer unlock2()
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Fatalf("second lock returned after %v, before the first was released", d)
	}
}

func TestLockAcrossProcesses(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "MESHD_STATE_TEST_HOLD_LOCK="+path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("child: %q %v; stderr: %s", line, err, stderr.String())
	}

	l := NewLocal(path)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = l.Lock(ctx)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("lock held by the child: %v, want ErrLocked", err)
	}
	if want := fmt.Sprintf("held by pid %d ", cmd.Process.Pid); !strings.Contains(err.Error(), want) {
		t.Fatalf("error %q does not contain %q", err, want)
	}
	t.Log(err)

	// The child releases the lock when its stdin closes.
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("child: %v; stderr: %s", err, stderr.String())
	}
	ctx2, cancel2 := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel2()
	unlock, err := l.Lock(ctx2)
	if err != nil {
		t.Fatalf("lock after the child released it: %v", err)
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
}

func TestLockReleasedWhenHolderDies(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "MESHD_STATE_TEST_HOLD_LOCK="+path)
	if _, err := cmd.StdinPipe(); err != nil { // kept open: the child holds the lock until killed
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "locked\n" {
		t.Fatalf("child: %q %v", line, err)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	// The kernel drops a flock when its holder dies; the stale info in the lock file does not block.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	unlock, err := NewLocal(path).Lock(ctx)
	if err != nil {
		t.Fatalf("lock after the holder died: %v", err)
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentWritersUnderLock(t *testing.T) {
	const writers, rounds = 8, 5
	path := filepath.Join(t.TempDir(), "state.json")
	var wg sync.WaitGroup
	errs := make(chan error, writers*rounds)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := NewLocal(path) // each goroutine its own backend value, like separate processes
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			for i := range rounds {
				unlock, err := l.Lock(ctx)
				if err != nil {
					errs <- err
					return
				}
				s, err := l.Read(ctx)
				if err == nil {
					s.Mesh = "m"
					s.AddRoute(RouteRecord{Region: "r", RouteTableID: fmt.Sprintf("rtb-%d", w), DestinationCIDR: fmt.Sprintf("10.%d.0.0/16", i)})
					err = l.Write(ctx, s)
				}
				if uerr := unlock(); err == nil {
					err = uerr
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	s, err := NewLocal(path).Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if s.Serial != writers*rounds || len(s.Routes) != writers*rounds {
		t.Fatalf("serial %d, %d routes; want %d of each (lost updates)", s.Serial, len(s.Routes), writers*rounds)
	}
}
