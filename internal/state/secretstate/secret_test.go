package secretstate_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshd-io/meshd/internal/kubeclient"
	"github.com/meshd-io/meshd/internal/state"
	"github.com/meshd-io/meshd/internal/state/secretstate"
	"github.com/meshd-io/meshd/internal/testenv"
)

func apiClient(t *testing.T) kubeclient.Interface {
	t.Helper()
	etcd := testenv.StartEtcd(t)
	srv := testenv.StartAPIServer(t, etcd.ClientURL, "mgmt")
	c, err := kubeclient.NewForConfig(srv.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestSecretBackend runs the Secret backend against a real kube-apiserver: round trip, serials, a state of
// 30,000 routes that fits only because it is compressed, the lock between two holders, and a stale writer
// refused.
func TestSecretBackend(t *testing.T) {
	c := apiClient(t)
	ctx := context.Background()
	b := secretstate.NewSecret(c, "kube-system", "meshd-state", "replica-a")

	st, err := b.Read(ctx)
	if err != nil || st.Serial != 0 {
		t.Fatalf("empty read: %v %+v", err, st)
	}
	st.Mesh = "tidb"
	for i := 0; i < 30000; i++ {
		st.Routes = append(st.Routes, state.RouteRecord{Region: "us-west-1", VPCID: "vpc-0123456789abcdef0",
			RouteTableID: fmt.Sprintf("rtb-%017x", i/99), DestinationCIDR: fmt.Sprintf("10.%d.%d.0/24", i/256%256, i%256), PeeringID: fmt.Sprintf("pcx-%017x", i%99)})
	}
	if err := b.Write(ctx, st); err != nil {
		t.Fatal(err)
	}
	got, err := secretstate.NewSecret(c, "kube-system", "meshd-state", "replica-b").Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.Serial != 1 || got.Lineage == "" || len(got.Routes) != 30000 || got.Mesh != "tidb" {
		t.Errorf("read back serial %d lineage %q routes %d mesh %q", got.Serial, got.Lineage, len(got.Routes), got.Mesh)
	}

	// A writer that read before someone else wrote is refused, not silently overwriting.
	stale := secretstate.NewSecret(c, "kube-system", "meshd-state", "replica-c")
	old, _ := stale.Read(ctx)
	if err := b.Write(ctx, st); err != nil {
		t.Fatal(err)
	}
	if err := stale.Write(ctx, old); err == nil {
		t.Error("a stale writer overwrote the state")
	}

	// The lock: b holds it, a second holder waits and is told who holds it.
	unlock, err := b.Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	other := secretstate.NewSecret(c, "kube-system", "meshd-state", "replica-b")
	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	_, err = other.Lock(short)
	cancel()
	if !errors.Is(err, state.ErrLocked) || !strings.Contains(err.Error(), "replica-a") {
		t.Errorf("second lock: %v, want ErrLocked naming replica-a", err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	var waited error
	go func() {
		defer wg.Done()
		u, err := other.Lock(ctx)
		waited = err
		if err == nil {
			_ = u()
		}
	}()
	time.Sleep(200 * time.Millisecond)
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if waited != nil {
		t.Errorf("waiting lock after release: %v", waited)
	}

	// A holder keeps the lock past its lease duration by renewing it...
	live := secretstate.NewSecret(c, "kube-system", "meshd-state", "replica-live")
	live.LeaseDuration = 2 * time.Second
	unlockLive, err := live.Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	short, cancel = context.WithTimeout(ctx, 5*time.Second)
	_, err = other.Lock(short)
	cancel()
	if !errors.Is(err, state.ErrLocked) {
		t.Errorf("took a lock its holder keeps renewing: %v", err)
	}
	select {
	case <-live.Lost():
		t.Error("a lock renewed all along was reported lost")
	default:
	}
	if err := unlockLive(); err != nil {
		t.Fatal(err)
	}

	// ...and a lease whose holder died (no renewal, no release) is free after its duration.
	leases := c.CoordinationV1().Leases("kube-system")
	l, err := leases.Get(ctx, "meshd-state-lock", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	holder, seconds, now := "replica-dead", int32(1), metav1.NewMicroTime(time.Now())
	l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds, l.Spec.RenewTime, l.Spec.AcquireTime = &holder, &seconds, &now, &now
	if _, err := leases.Update(ctx, l, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	u, err := other.Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_ = u()
	if d := time.Since(start); d < 500*time.Millisecond {
		t.Errorf("took a live lease after %s", d)
	}

}

// TestLockLostWhenTakenOver: when the Lease names another holder (it took the lock after this holder's
// renewals failed), Lost is closed, so the pass under way stops; releasing afterwards leaves the new
// holder's lock alone.
func TestLockLostWhenTakenOver(t *testing.T) {
	c := apiClient(t)
	ctx := context.Background()
	b := secretstate.NewSecret(c, "kube-system", "meshd-state", "replica-a")
	b.LeaseDuration = 3 * time.Second
	unlock, err := b.Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	leases := c.CoordinationV1().Leases("kube-system")
	l, err := leases.Get(ctx, "meshd-state-lock", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	intruder := "replica-b"
	l.Spec.HolderIdentity = &intruder
	if _, err := leases.Update(ctx, l, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-b.Lost():
	case <-time.After(5 * time.Second):
		t.Fatal("Lost not closed 5s after another process took the lock (renewal every 1s)")
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	l, err = leases.Get(ctx, "meshd-state-lock", metav1.GetOptions{})
	if err != nil || l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != intruder {
		t.Errorf("after releasing a lost lock the Lease is held by %v (err %v), want %s", l.Spec.HolderIdentity, err, intruder)
	}
}

// TestReadLimitsExpansion: a Secret whose 1 MB of gzip expands to 960 MiB (a gzip bomb: 960 members of 1 MiB
// of zeros each, as much as a Secret holds) is refused with an error saying so, after reading a bounded amount, instead of being
// decompressed whole (which kills a pod with a 256 MiB limit at every pass).
func TestReadLimitsExpansion(t *testing.T) {
	c := apiClient(t)
	ctx := context.Background()
	var member bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&member, gzip.BestCompression)
	if _, err := zw.Write(make([]byte, 1<<20)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	bomb := bytes.Repeat(member.Bytes(), 960) // gzip.Reader reads concatenated members as one stream
	t.Logf("bomb: %d bytes of gzip for 960 MiB", len(bomb))
	_, err := c.CoreV1().Secrets("kube-system").Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "meshd-state", Namespace: "kube-system"},
		Data:       map[string][]byte{"state.json.gz": bomb},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}

	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err = secretstate.NewSecret(c, "kube-system", "meshd-state", "replica-a").Read(ctx)
	runtime.ReadMemStats(&after)
	if err == nil || !strings.Contains(err.Error(), "expands to more than 64 MiB") {
		t.Errorf("read of a gzip bomb: %v, want an error naming the 64 MiB limit", err)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 512<<20 {
		t.Errorf("reading the gzip bomb allocated %d MiB, want it bounded by the limit", alloc>>20)
	}
}
