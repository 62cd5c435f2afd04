package daemon

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"
)

// loopRecorder records a Controller's passes and background observations.
type loopRecorder struct {
	mu       sync.Mutex
	reasons  []Reason
	observed int
	fail     bool
}

func (l *loopRecorder) pass(_ context.Context, r Reason) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reasons = append(l.reasons, r)
	return nil
}

func (l *loopRecorder) observe(context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.observed++
	if l.fail {
		return errors.New("AWS does not answer")
	}
	return nil
}

// waitFor polls cond until it holds, failing the test after 30 s.
func (l *loopRecorder) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(2 * time.Millisecond) {
		l.mu.Lock()
		ok := cond()
		l.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30 s (passes %+v, observations %d)", what, l.reasons, l.observed)
		}
	}
}

func runController(t *testing.T, ctl *Controller) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { ctl.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// TestWatchPassesAreNotHeldByTheAWSMinInterval: with a minimum interval of an hour between AWS
// observations, passes asked for by watch events still run, one after another; a full pass is held.
func TestWatchPassesAreNotHeldByTheAWSMinInterval(t *testing.T) {
	l := &loopRecorder{}
	ctl := &Controller{Interval: time.Hour, MinInterval: time.Hour, Pass: l.pass, Observe: l.observe}
	runController(t, ctl)
	l.waitFor(t, "the start pass", func() bool { return len(l.reasons) == 1 })
	for i, cluster := range []string{"c1", "c2", "c1"} {
		ctl.TriggerKube(KubeEvent{Cluster: cluster, Why: "coredns changed in " + cluster})
		l.waitFor(t, "the watch-triggered pass", func() bool { return len(l.reasons) == i+2 })
	}
	ctl.Trigger("SIGHUP")
	ctl.TriggerKube(KubeEvent{Cluster: "c2", Why: "coredns changed in c2"})
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range l.reasons[1:] {
		if r.Full || len(r.Kube) != 1 {
			t.Errorf("pass %+v, want one asked for by a watch event alone", r)
		}
	}
}

// TestAWSIsObservedInTheBackground: on the interval AWS is observed outside any pass, and a pass planned
// from it follows (not full: it reads nothing afresh); when it fails, a full pass follows instead (it observes AWS itself).
// ObserveSoon asks for one without waiting for the interval.
func TestAWSIsObservedInTheBackground(t *testing.T) {
	l := &loopRecorder{}
	ctl := &Controller{Interval: 20 * time.Millisecond, MinInterval: time.Millisecond, Pass: l.pass, Observe: l.observe}
	runController(t, ctl)
	l.waitFor(t, "a pass after a background observation", func() bool {
		return l.observed > 0 && slices.ContainsFunc(l.reasons, func(r Reason) bool { return r.Why == "interval" && !r.Full && len(r.Kube) == 0 })
	})
	l.mu.Lock()
	l.fail = true
	n := len(l.reasons)
	l.mu.Unlock()
	l.waitFor(t, "a full pass after a failed background observation", func() bool {
		return slices.ContainsFunc(l.reasons[n:], func(r Reason) bool { return r.Why == "interval" && r.Full })
	})

	soon := &loopRecorder{}
	ctl = &Controller{Interval: time.Hour, MinInterval: time.Millisecond, Pass: soon.pass, Observe: soon.observe}
	runController(t, ctl)
	soon.waitFor(t, "the start pass", func() bool { return len(soon.reasons) == 1 })
	ctl.ObserveSoon()
	soon.waitFor(t, "a background observation and its pass, asked for by ObserveSoon", func() bool {
		return soon.observed == 1 && len(soon.reasons) == 2 && soon.reasons[1].Why == "interval" && !soon.reasons[1].Full
	})
}
