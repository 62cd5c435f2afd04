package secretstate_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
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

// leaseGets is an http.RoundTripper that counts the answers to GETs of the lock's Lease: how often a waiting
// Lock has looked.
type leaseGets struct {
	next http.RoundTripper
	n    *atomic.Int32
}

func (g leaseGets) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := g.next.RoundTrip(r)
	if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/leases/meshd-state-lock") {
		g.n.Add(1)
	}
	return resp, err
}

// TestSecretBackend runs the Secret backend against a real kube-apiserver: round trip, serials, a state of
// 30,000 routes that fits only because it is compressed, the lock between two holders, and a stale writer
// refused.
func TestSecretBackend(t *testing.T) {
	etcd := testenv.StartEtcd(t)
	srv := testenv.StartAPIServer(t, etcd.ClientURL, "mgmt")
	c, err := kubeclient.NewForConfig(srv.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	// The second holder's client counts its looks at the Lease.
	var looks atomic.Int32
	cfg := srv.RESTConfig()
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { return leaseGets{rt, &looks} }
	counted, err := kubeclient.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
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
	other := secretstate.NewSecret(counted, "kube-system", "meshd-state", "replica-b")
	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	_, err = other.Lock(short)
	cancel()
	if !errors.Is(err, state.ErrLocked) || !strings.Contains(err.Error(), "replica-a") {
		t.Errorf("second lock: %v, want ErrLocked naming replica-a", err)
	}
	// A Lock without a deadline waits: it has not returned at any moment while b holds the lock, a window
	// that lasts until it has been told three times that the Lease is held (its retries back off from 50 ms),
	// and it returns once b releases.
	acquired := make(chan error, 1)
	before := looks.Load()
	go func() {
		u, err := other.Lock(ctx)
		if err == nil {
			err = u()
		}
		acquired <- err
	}()
	for deadline := time.Now().Add(30 * time.Second); looks.Load() < before+3; {
		select {
		case err := <-acquired:
			t.Fatalf("the second Lock returned (%v) after %d looks at the Lease, while b held the lock", err, looks.Load()-before)
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("the second Lock looked at the Lease %d times in 30 s, want 3", looks.Load()-before)
		}
	}
	select {
	case err := <-acquired:
		t.Fatalf("the second Lock returned (%v) while b held the lock", err)
	default:
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-acquired:
		if err != nil {
			t.Errorf("waiting lock after release: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the waiting Lock did not get the lock within 30 s of its release")
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

// crashedLease writes the state Lease as a holder that then died (SIGKILL: no renewal, no release) leaves
// it, recording a lease of the given seconds.
func crashedLease(t *testing.T, c kubeclient.Interface, holder string, seconds int32) {
	t.Helper()
	ctx := context.Background()
	now := metav1.NewMicroTime(time.Now())
	_, err := c.CoordinationV1().Leases("kube-system").Create(ctx, &coordinationv1.Lease{
		ObjectMeta: metav1.ObjectMeta{Name: "meshd-state-lock", Namespace: "kube-system"},
		Spec:       coordinationv1.LeaseSpec{HolderIdentity: &holder, LeaseDurationSeconds: &seconds, AcquireTime: &now, RenewTime: &now},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
}

// TestLockTakesCrashedHoldersLease: the Lease of a holder that crashed is taken once it has expired, by the
// duration the Lease records, however short the waiter's own wait: a daemon whose passes each wait less than
// the lease (meshd's 30 s against --leader-elect-lease-duration=60s) takes it after a few passes, and
// meshctl, which gives a live holder 10 s, waits a 15 s lease out. A holder seen renewing is still given up
// on after Wait.
func TestLockTakesCrashedHoldersLease(t *testing.T) {
	c := apiClient(t)
	ctx := context.Background()
	const leaseSeconds = 3
	crashedLease(t, c, "meshd-0", leaseSeconds)

	// The daemon: each pass's Lock gives up after a second; the same backend's next pass goes on watching.
	daemon := secretstate.NewSecret(c, "kube-system", "meshd-state", "meshd-1")
	start := time.Now()
	var unlock func() error
	for pass := 1; unlock == nil; pass++ {
		if pass > 60 {
			t.Fatalf("the crashed holder's Lease was not taken in %d passes of 1 s (lease %ds)", pass-1, leaseSeconds)
		}
		passCtx, cancel := context.WithTimeout(ctx, time.Second)
		u, err := daemon.Lock(passCtx)
		cancel()
		switch {
		case err == nil:
			unlock = u
		case !errors.Is(err, state.ErrLocked) || !strings.Contains(err.Error(), "meshd-0"):
			t.Fatalf("pass %d: %v, want ErrLocked naming meshd-0", pass, err)
		}
	}
	if d := time.Since(start); d < leaseSeconds*time.Second {
		t.Errorf("took the Lease after %s, before its %ds had passed", d, leaseSeconds)
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}

	// meshctl: Wait (for a live holder) shorter than the lease, and a context that does not end first.
	if err := c.CoordinationV1().Leases("kube-system").Delete(ctx, "meshd-state-lock", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	crashedLease(t, c, "meshd-0", leaseSeconds)
	meshctl := secretstate.NewSecret(c, "kube-system", "meshd-state", "meshctl")
	meshctl.Wait, meshctl.LeaseDuration = time.Second, 3*time.Second
	waitCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	start = time.Now()
	unlock, err := meshctl.Lock(waitCtx)
	if err != nil {
		t.Fatalf("meshctl (Wait 1s) did not take a crashed holder's %ds Lease: %v", leaseSeconds, err)
	}
	if d := time.Since(start); d < leaseSeconds*time.Second {
		t.Errorf("took the Lease after %s, before its %ds had passed", d, leaseSeconds)
	}

	// A live holder (meshctl renews its 3 s lease every second) is given up on after Wait, with who holds it,
	// not waited for until the context ends.
	other := secretstate.NewSecret(c, "kube-system", "meshd-state", "replica-b")
	other.Wait = time.Second
	_, err = other.Lock(waitCtx)
	if !errors.Is(err, state.ErrLocked) || !strings.Contains(err.Error(), "held by meshctl") {
		t.Errorf("lock held by a live holder: %v, want ErrLocked naming meshctl", err)
	}
	if waitCtx.Err() != nil {
		t.Error("Lock waited for a live holder until its context ended, not for Wait")
	}
	if err := unlock(); err != nil {
		t.Fatal(err)
	}
}

// failing is an http.RoundTripper that fails every request while fail is set: an API server the holder can
// no longer reach.
type failing struct {
	next http.RoundTripper
	fail *atomic.Bool
}

func (f failing) RoundTrip(r *http.Request) (*http.Response, error) {
	if f.fail.Load() {
		return nil, errors.New("injected: API server unreachable")
	}
	return f.next.RoundTrip(r)
}

// TestLockLostBeforeTakeover: a holder whose renewals fail counts its lock as lost before a waiter, which
// sees the Lease unchanged, can take it: there is no moment with two writers. The holder counts from when
// it sent its last successful renewal; the waiter from when it first saw that renewal, and waits the whole
// lease.
func TestLockLostBeforeTakeover(t *testing.T) {
	etcd := testenv.StartEtcd(t)
	srv := testenv.StartAPIServer(t, etcd.ClientURL, "mgmt")
	healthy, err := kubeclient.NewForConfig(srv.RESTConfig())
	if err != nil {
		t.Fatal(err)
	}
	var fail atomic.Bool
	cfg := srv.RESTConfig()
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper { return failing{rt, &fail} }
	cut, err := kubeclient.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	holder := secretstate.NewSecret(cut, "kube-system", "meshd-state", "holder")
	holder.LeaseDuration = 6 * time.Second
	unlock, err := holder.Lock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = unlock() }()
	// Let a renewal or two succeed, then cut the holder off.
	leases := healthy.CoordinationV1().Leases("kube-system")
	first, err := leases.Get(ctx, "meshd-state-lock", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		l, err := leases.Get(ctx, "meshd-state-lock", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if l.ResourceVersion != first.ResourceVersion {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the holder did not renew its Lease within a minute")
		}
		time.Sleep(50 * time.Millisecond)
	}
	fail.Store(true)

	waiter := secretstate.NewSecret(healthy, "kube-system", "meshd-state", "waiter")
	waitCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	unlockWaiter, err := waiter.Lock(waitCtx)
	if err != nil {
		t.Fatalf("the waiter did not take the Lease of a holder cut off from the API server: %v", err)
	}
	defer func() { _ = unlockWaiter() }()
	select {
	case <-holder.Lost():
	default:
		t.Fatal("the waiter took the Lease while its holder still counted the lock as held: two writers")
	}
}
