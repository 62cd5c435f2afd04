package daemon

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilnet "k8s.io/apimachinery/pkg/util/net"

	"github.com/meshd-io/meshd/internal/apply"
	"github.com/meshd-io/meshd/internal/kubeclient"
	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/state"
	"github.com/meshd-io/meshd/internal/state/secretstate"
	"github.com/meshd-io/meshd/internal/testenv"
)

// gatedEngine is a worldEngine whose apply runs one change at a time and calls atFirst, in the first
// change's goroutine and with its context, before that change is made: a test does there what happens
// while a pass is in the middle of its apply. executed lists the changes made, in order.
type gatedEngine struct {
	*worldEngine
	atFirst func(ctx context.Context)

	once     sync.Once
	mu       sync.Mutex
	executed []string
}

func (g *gatedEngine) Apply(ctx context.Context, p *plan.Plan, st *state.State, withheld int) *apply.Result {
	execs := map[plan.Kind]apply.Executor{}
	for kind, x := range g.world.Executors() {
		execs[kind] = gatedExecutor{g, x}
	}
	return apply.Run(ctx, p, st, apply.Options{Executors: execs, Parallelism: 1, Withheld: withheld})
}

func (g *gatedEngine) made() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.executed...)
}

type gatedExecutor struct {
	g     *gatedEngine
	inner apply.Executor
}

func (x gatedExecutor) Execute(ctx context.Context, ch plan.Change, known apply.Known) (apply.Outcome, error) {
	x.g.once.Do(func() { x.g.atFirst(ctx) })
	x.g.mu.Lock()
	x.g.executed = append(x.g.executed, ch.Address)
	x.g.mu.Unlock()
	return x.inner.Execute(ctx, ch, known)
}

// waitDone waits for ctx to end, at most d; it reports whether it did.
func waitDone(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return true
	case <-t.C:
		return false
	}
}

// TestIntervalJitterStaysWithinBounds: the timer's period varies by at most Jitter (meshd: ±10%) either
// way, and does vary: each pass that Run ends schedules the next within [0.9, 1.1] of Interval, and the
// delays are not all the same; 10,000 draws all fall within the bounds and reach past ±5%.
func TestIntervalJitterStaysWithinBounds(t *testing.T) {
	const interval = time.Hour
	lo, hi := interval*9/10, interval*11/10

	c := &Controller{Interval: interval, Jitter: 0.1}
	least, most := interval, interval
	for range 10000 {
		d := c.nextInterval()
		if d < lo || d > hi {
			t.Fatalf("next interval %s, want within [%s, %s]", d, lo, hi)
		}
		least, most = min(least, d), max(most, d)
	}
	if least > interval*95/100 || most < interval*105/100 {
		t.Errorf("10,000 intervals all within [%s, %s]: the jitter does not spread them over ±10%%", least, most)
	}

	// Through Run: after each pass, the next is due Interval ± 10% after it ended.
	var passes atomic.Int32
	ctl := &Controller{Interval: interval, Jitter: 0.1, MinInterval: time.Millisecond}
	ctl.Pass = func(context.Context, Reason) error { passes.Add(1); return nil }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { ctl.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	delays := map[time.Duration]bool{}
	for n := int32(1); n <= 20; n++ {
		var delay time.Duration
		for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(time.Millisecond) {
			ctl.mu.Lock()
			ended := passes.Load() >= n && ctl.passStart.IsZero() && !ctl.due.IsZero()
			delay = ctl.due.Sub(ctl.lastEnd)
			ctl.mu.Unlock()
			if ended {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("pass %d did not end within 30s", n)
			}
		}
		if delay < lo || delay > hi {
			t.Errorf("after pass %d the next is due %s after it, want within [%s, %s]", n, delay, lo, hi)
		}
		delays[delay] = true
		ctl.Trigger("test")
	}
	if len(delays) < 2 {
		t.Errorf("20 passes all scheduled the next %v after them: no jitter", delays)
	}
}

// TestShutdownGraceLetsThePassFinish: SIGTERM (the pass's context cancelled) in the middle of an apply does
// not cut it short while ShutdownGrace lasts: every change of the plan is made, the pass succeeds, and the
// state records the routes it made.
func TestShutdownGraceLetsThePassFinish(t *testing.T) {
	r, eng := newReconciler(t)
	r.ShutdownGrace = time.Minute
	ctx, sigterm := context.WithCancel(context.Background())
	defer sigterm()
	g := &gatedEngine{worldEngine: eng}
	g.atFirst = func(context.Context) { sigterm() }
	r.Engine = g

	if err := r.Pass(ctx, "test"); err != nil {
		t.Errorf("a pass given SIGTERM mid-apply, within its grace: %v", err)
	}
	// 1 peering, 2 routes, 2 rules.
	if got := g.made(); len(got) != 5 {
		t.Errorf("the pass made %d changes after SIGTERM, want all 5: %v", len(got), got)
	}
	st, err := r.Backend.Read(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Routes) != 2 || st.Serial == 0 {
		t.Errorf("state after the pass: serial %d, %d routes, want it written with both routes", st.Serial, len(st.Routes))
	}
}

// TestLeadershipLostMidPassAbandonsIt: losing leadership (Abandon) in the middle of an apply ends the pass
// at once, without the SIGTERM grace: the change under way is the last one made, and the pass fails.
func TestLeadershipLostMidPassAbandonsIt(t *testing.T) {
	r, eng := newReconciler(t)
	r.ShutdownGrace = time.Minute
	abandon, lose := context.WithCancel(context.Background())
	defer lose()
	r.Abandon = abandon
	g := &gatedEngine{worldEngine: eng}
	g.atFirst = func(ctx context.Context) {
		lose()
		// The pass is cancelled at once; the change under way then goes on (it was already sent).
		if !waitDone(ctx, 10*time.Second) {
			t.Error("the pass's context was not cancelled within 10s of losing leadership")
		}
	}
	r.Engine = g

	if err := r.Pass(context.Background(), "test"); err == nil {
		t.Error("a pass abandoned mid-apply succeeded")
	}
	if got := g.made(); len(got) != 1 {
		t.Errorf("the pass made %d changes, want only the one under way when leadership was lost: %v", len(got), got)
	}
}

// leaseFailing fails every request for a Lease while fail is set, as a management cluster that stops
// answering the state lock's renewals; the Secret and everything else still go through.
type leaseFailing struct {
	next http.RoundTripper
	fail *atomic.Bool
}

func (f leaseFailing) RoundTrip(r *http.Request) (*http.Response, error) {
	if f.fail.Load() && strings.Contains(r.URL.Path, "/leases") {
		return nil, errors.New("injected: lease request failed")
	}
	return f.next.RoundTrip(r)
}

// TestStateLockLostMidPassAbandonsIt: the Secret backend's Lease taken by the pass stops being renewed
// (its renewals fail) in the middle of the apply. Once the holder counts the lock as lost, another replica
// may take it: the pass is cancelled, the change under way is the last one made, the state is not written
// (the Secret, whose writes still go through, stays absent), and the pass ends as a transient lost-lock
// failure.
func TestStateLockLostMidPassAbandonsIt(t *testing.T) {
	etcd := testenv.StartEtcd(t)
	srv := testenv.StartAPIServer(t, etcd.ClientURL, "mgmt")
	var fail atomic.Bool
	var transports []http.RoundTripper
	cfg := srv.RESTConfig()
	cfg.WrapTransport = func(rt http.RoundTripper) http.RoundTripper {
		transports = append(transports, rt)
		return leaseFailing{rt, &fail}
	}
	client, err := kubeclient.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, rt := range transports {
			utilnet.CloseIdleConnectionsFor(rt)
		}
	})
	backend := secretstate.NewSecret(client, "kube-system", "meshd-state", "holder")
	backend.LeaseDuration = 3 * time.Second

	r, eng := newReconciler(t)
	r.Backend = backend
	g := &gatedEngine{worldEngine: eng}
	var lostAt time.Time
	g.atFirst = func(ctx context.Context) {
		fail.Store(true)
		select {
		case <-backend.Lost():
			lostAt = time.Now()
		case <-time.After(30 * time.Second):
			t.Error("the lock was not counted lost within 30s of its renewals failing")
			return
		}
		if !waitDone(ctx, 10*time.Second) {
			t.Error("the pass's context was not cancelled within 10s of losing the state lock")
		}
	}
	r.Engine = g

	err = r.Pass(context.Background(), "test")
	if lostAt.IsZero() {
		t.Fatal("the lock was never lost")
	}
	if !errors.Is(err, ErrTransient) || !strings.Contains(err.Error(), "lock was lost") {
		t.Errorf("pass that lost its state lock mid-apply: err %v, want a transient lost-lock error", err)
	}
	if got := g.made(); len(got) != 1 {
		t.Errorf("the pass made %d changes, want only the one under way when the lock was lost: %v", len(got), got)
	}
	fail.Store(false)
	_, err = client.CoreV1().Secrets("kube-system").Get(context.Background(), "meshd-state", metav1.GetOptions{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("the state Secret after the pass that lost its lock: %v, want it never written", err)
	}
}
