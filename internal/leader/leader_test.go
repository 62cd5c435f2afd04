package leader

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/meshd-io/meshd/internal/kubeclient"
	"github.com/meshd-io/meshd/internal/testenv"
)

// TestOneLeaderAndHandover: of two replicas exactly one leads; when it stops, the other takes over.
func TestOneLeaderAndHandover(t *testing.T) {
	etcd := testenv.StartEtcd(t)
	srv := testenv.StartAPIServer(t, etcd.ClientURL, "mgmt")
	client, err := kubeclient.NewForConfig(srv.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	newElector := func(id string) *Elector {
		return &Elector{Client: client, Namespace: "kube-system", Name: "meshd", Identity: id, Log: zap.NewNop(),
			LeaseDuration: 2 * time.Second, RenewDeadline: 1500 * time.Millisecond, RetryPeriod: 200 * time.Millisecond}
	}
	a, b := newElector("a"), newElector("b")
	// b's log says when it has seen a's Lease: from then on it is campaigning against a leader.
	core, logs := observer.New(zap.InfoLevel)
	b.Log = zap.New(core)
	ctxA, stopA := context.WithCancel(context.Background())
	ctxB, stopB := context.WithCancel(context.Background())
	defer stopB()
	doneA, doneB := make(chan struct{}), make(chan struct{})
	go func() { _ = a.Run(ctxA, nil); close(doneA) }()
	waitFor(t, func() bool { return a.IsLeader() }, "a to lead") // a leads before b campaigns
	go func() { _ = b.Run(ctxB, nil); close(doneB) }()
	waitFor(t, func() bool {
		return logs.FilterMessage("following").FilterField(zap.String("leader", "a")).Len() > 0
	}, "b to see a leading")

	// For five retry periods after b has seen a's Lease, b follows and a keeps leading: checked all along.
	for end := time.Now().Add(5 * b.RetryPeriod); time.Now().Before(end); time.Sleep(5 * time.Millisecond) {
		if b.IsLeader() {
			t.Fatal("two leaders at once")
		}
		if !a.IsLeader() {
			t.Fatal("a stopped leading while b campaigned")
		}
	}
	stopA()
	<-doneA
	start := time.Now()
	waitFor(t, func() bool { return b.IsLeader() }, "b to take over")
	t.Logf("handover after %s", time.Since(start))
	if a.IsLeader() {
		t.Error("a still thinks it leads after stopping")
	}
	stopB()
	<-doneB
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestShortLeaseDuration: a lease duration shorter than the default renew deadline (meshd
// --leader-elect-lease-duration=3s with --leader-elect-renew-deadline left at 10s) still elects a leader:
// client-go refuses such timings, and the replica never led, saying nothing.
func TestShortLeaseDuration(t *testing.T) {
	etcd := testenv.StartEtcd(t)
	srv := testenv.StartAPIServer(t, etcd.ClientURL, "mgmt")
	client, err := kubeclient.NewForConfig(srv.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	e := &Elector{Client: client, Namespace: "kube-system", Name: "meshd", Identity: "a", Log: zap.NewNop(),
		LeaseDuration: 3 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx, nil) }()
	waitFor(t, func() bool {
		select {
		case err := <-done:
			t.Fatalf("Run returned before leading: %v", err)
		default:
		}
		return e.IsLeader()
	}, "a to lead with a 3s lease")
	stop()
	if err := <-done; err != nil {
		t.Error(err)
	}
}

// TestTimingsLeaveAMargin: the leader gives up renewing at most two thirds into the lease, so that it stops
// acting before another replica can take over; timings that already do are kept.
func TestTimingsLeaveAMargin(t *testing.T) {
	cases := map[string]struct {
		lease, renew, retry  time.Duration
		wantRenew, wantRetry time.Duration
	}{
		"defaults kept":           {15 * time.Second, 10 * time.Second, 2 * time.Second, 10 * time.Second, 2 * time.Second},
		"deadline past the lease": {3 * time.Second, 10 * time.Second, 2 * time.Second, 2 * time.Second, 400 * time.Millisecond},
		"deadline too close":      {15 * time.Second, 14 * time.Second, 2 * time.Second, 10 * time.Second, 2 * time.Second},
		"long lease kept":         {60 * time.Second, 40 * time.Second, 5 * time.Second, 40 * time.Second, 5 * time.Second},
	}
	for name, c := range cases {
		renew, retry := timings(c.lease, c.renew, c.retry)
		if renew != c.wantRenew || retry != c.wantRetry {
			t.Errorf("%s: timings(%s, %s, %s) = %s, %s; want %s, %s", name, c.lease, c.renew, c.retry, renew, retry, c.wantRenew, c.wantRetry)
		}
	}
}
