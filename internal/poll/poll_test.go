package poll

import (
	"context"
	"errors"
	"testing"
	"time"
)

var fast = Options{Interval: 5 * time.Millisecond, Timeout: 300 * time.Millisecond, ProgressEvery: 40 * time.Millisecond}

func TestUntilDone(t *testing.T) {
	calls := 0
	err := Until(context.Background(), fast, func(context.Context) (bool, error) {
		calls++
		return calls == 3, nil
	}, func(time.Duration) {})
	if err != nil || calls != 3 {
		t.Errorf("err %v after %d checks, want nil after 3", err, calls)
	}
}

// A check's own error comes back as it is, even a context error, and is not taken for the wait's end.
func TestUntilCheckError(t *testing.T) {
	err := Until(context.Background(), fast, func(context.Context) (bool, error) {
		return false, context.DeadlineExceeded
	}, func(time.Duration) {})
	if _, ended := errors.AsType[*Ended](err); ended || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("err %v, want the check's error as it is", err)
	}
}

func TestUntilTimeoutReportsProgress(t *testing.T) {
	reports := 0
	err := Until(context.Background(), fast, func(context.Context) (bool, error) { return false, nil },
		func(time.Duration) { reports++ })
	ended, ok := errors.AsType[*Ended](err)
	if !ok || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err %v, want *Ended with context.DeadlineExceeded", err)
	}
	if ended.Waited != 0 { // 300ms, rounded to the second
		t.Errorf("waited %s, want 0s (rounded)", ended.Waited)
	}
	if reports < 3 {
		t.Errorf("%d progress reports over 300ms every 40ms, want at least 3", reports)
	}
}

func TestUntilCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := Until(ctx, fast, func(context.Context) (bool, error) { return false, nil }, func(time.Duration) {})
	if _, ok := errors.AsType[*Ended](err); !ok || !errors.Is(err, context.Canceled) {
		t.Errorf("err %v, want *Ended with context.Canceled", err)
	}
}
