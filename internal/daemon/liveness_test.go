package daemon

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestLivenessIsTheLoopRunning: passes that fail, whatever the reason (a persistent AccessDenied, a member
// cluster that is down), leave /healthz ok as long as they keep being run: restarting meshd would fix
// neither, and would interrupt the leader's applies. The staleness of the last success shows in /readyz
// and meshd_last_success_timestamp_seconds. A loop that stops running (a pass that hangs, or no pass started
// when one was due) fails /healthz.
func TestLivenessIsTheLoopRunning(t *testing.T) {
	r, eng := newReconciler(t)
	eng.planErr = errors.New("api error AccessDenied: not authorized to perform ec2:DescribeVpcs")
	ctl := &Controller{Interval: 10 * time.Millisecond, MinInterval: time.Millisecond, MaxPass: time.Minute, Pass: r.PassFor}
	var clock func() time.Time // nil: the real one
	srv := &Server{Metrics: r.Metrics, Live: ctl.Running, LastSuccess: r.LastSuccess, StaleAfter: time.Millisecond,
		Started: time.Now(), Ready: func() bool { return true }, Now: func() time.Time {
			if clock != nil {
				return clock()
			}
			return time.Now()
		}}
	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		srv.handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec.Code, rec.Body.String()
	}
	failed := func() float64 { return r.Metrics.Value(MetricPasses, Labels{"result": "error"}) }
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
		}
	}

	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { defer close(stopped); ctl.Run(ctx) }()
	defer func() { cancel(); <-stopped }()

	waitFor("3 passes failing on AccessDenied", func() bool { return failed() >= 3 })
	if code, body := get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz with every pass failing on AccessDenied: %d %q, want ok", code, body)
	}
	eng.mu.Lock()
	eng.planErr, eng.unobserved = nil, []string{"c002"}
	eng.mu.Unlock()
	waitFor("3 more passes, failing on an unreachable member", func() bool { return failed() >= 6 })
	if code, body := get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz with a member cluster down: %d %q, want ok", code, body)
	}
	// The failures are visible: no success recorded, /readyz says since when.
	if r.Metrics.Value(MetricLastSuccess, nil) != 0 {
		t.Error("meshd_last_success_timestamp_seconds set by failed passes")
	}
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "no pass has completed successfully") {
		t.Errorf("/readyz with every pass failing: %d %q, want 503 saying no pass succeeded", code, body)
	}

	// A pass that hangs: /healthz fails once it has run for longer than MaxPass.
	hang, hanging := make(chan struct{}), make(chan struct{}, 1)
	eng.mu.Lock()
	eng.hang, eng.hanging = hang, hanging
	eng.mu.Unlock()
	select {
	case <-hanging:
	case <-time.After(30 * time.Second):
		t.Fatal("timed out waiting for a pass to hang")
	}
	if code, body := get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz as a pass starts: %d %q, want ok", code, body)
	}
	clock = func() time.Time { return time.Now().Add(ctl.MaxPass + time.Second) }
	if code, body := get("/healthz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "has been running for") {
		t.Errorf("/healthz with a pass running for longer than MaxPass: %d %q, want 503 saying so", code, body)
	}
	clock = nil
	cancel()
	close(hang)
	<-stopped

	// The loop stopped (Run returned): once the next pass is overdue by MaxPass, /healthz fails.
	if code, body := get("/healthz"); code != http.StatusOK {
		t.Errorf("/healthz right after the last pass: %d %q, want ok", code, body)
	}
	clock = func() time.Time { return time.Now().Add(ctl.Interval*2 + ctl.MaxPass + time.Second) }
	if code, body := get("/healthz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "no pass has started since") {
		t.Errorf("/healthz with no pass started when one was due: %d %q, want 503 saying so", code, body)
	}
}
