package leader

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap"

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
	ctxA, stopA := context.WithCancel(context.Background())
	ctxB, stopB := context.WithCancel(context.Background())
	defer stopB()
	doneA, doneB := make(chan struct{}), make(chan struct{})
	go func() { _ = a.Run(ctxA, nil); close(doneA) }()
	time.Sleep(500 * time.Millisecond) // a campaigns first
	go func() { _ = b.Run(ctxB, nil); close(doneB) }()

	waitFor(t, func() bool { return a.IsLeader() }, "a to lead")
	// For a few renewal periods, b follows.
	for i := 0; i < 10; i++ {
		if b.IsLeader() {
			t.Fatal("two leaders at once")
		}
		time.Sleep(100 * time.Millisecond)
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
