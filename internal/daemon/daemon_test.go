package daemon

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshd-io/meshd/internal/apply"
	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/plan/plantest"
	"github.com/meshd-io/meshd/internal/spec"
	"github.com/meshd-io/meshd/internal/state"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// worldEngine plans and applies against an in-memory AWS world, as the real engine does against AWS.
type worldEngine struct {
	mu      sync.Mutex
	world   *plantest.World
	members []model.Member
	applies int
	// unobserved are clusters whose Kubernetes side "could not be observed" (the real engine's PartialDNS).
	unobserved []string
	// edit, when set, changes each plan before the pass sees it.
	edit func(*plan.Plan)
	// planErr, when set, is what Plan fails with; hang, when set, makes Plan say so on hanging (buffer it)
	// and wait for hang to close.
	planErr       error
	hang, hanging chan struct{}
}

func (e *worldEngine) Plan(_ context.Context, m *spec.Mesh, st *state.State, destroy bool) (*plan.Plan, hcl.Diagnostics, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.hang != nil {
		select {
		case e.hanging <- struct{}{}:
		default:
		}
		<-e.hang
	}
	if e.planErr != nil {
		return nil, nil, e.planErr
	}
	p := plan.Compute(plan.Input{Mesh: m.Name, Members: e.members, Observed: e.world.Observed, State: st, Destroy: destroy})
	p.Unobserved = e.unobserved
	if e.edit != nil {
		e.edit(p)
	}
	return p, nil, nil
}

func (e *worldEngine) Apply(ctx context.Context, p *plan.Plan, st *state.State, withheld int) *apply.Result {
	e.mu.Lock()
	e.applies++
	e.mu.Unlock()
	return apply.Run(ctx, p, st, apply.Options{Executors: e.world.Executors(), Withheld: withheld})
}

const testSpec = `mesh "tidb" {}
cluster "c001" {
  region = "us-west-1"
  kube_context = "c1"
  namespace = "n1"
  vpc_id = "vpc-00000001"
  security_group_id = "sg-00000001"
}
cluster "c002" {
  region = "us-west-2"
  kube_context = "c2"
  namespace = "n2"
  vpc_id = "vpc-00000002"
  security_group_id = "sg-00000002"
}
`

func newReconciler(t *testing.T) (*Reconciler, *worldEngine) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "mesh.hcl")
	if err := os.WriteFile(path, []byte(testSpec), 0o644); err != nil {
		t.Fatal(err)
	}
	src := &SpecSource{Path: path}
	if _, _, diags := src.Reload(); diags.HasErrors() {
		t.Fatal(diags)
	}
	w, members := plantest.NewWorld("tidb", plantest.Grid(2, 1))
	eng := &worldEngine{world: w, members: members}
	return &Reconciler{Engine: eng, Backend: state.NewLocal(filepath.Join(dir, "state.json")), Spec: src,
		Log: zap.NewNop(), Metrics: NewMetrics()}, eng
}

func TestPassCorrectsDriftAndCountsIt(t *testing.T) {
	r, eng := newReconciler(t)
	ctx := context.Background()
	if err := r.Pass(ctx, "test"); err != nil {
		t.Fatal(err)
	}
	// 1 peering, 2 routes, 2 rules created from empty.
	if got := r.Metrics.Sum(MetricCorrected); got != 5 {
		t.Errorf("corrections after the first pass: %v, want 5", got)
	}
	// Someone deletes a route; the next pass puts it back, and only it.
	eng.world.DeleteRoute(eng.members[0].RouteTableIDs[0], eng.members[1].CIDRs[0])
	if err := r.Pass(ctx, "test"); err != nil {
		t.Fatal(err)
	}
	if got := r.Metrics.Value(MetricCorrected, Labels{"kind": "route", "action": "create"}); got != 3 {
		t.Errorf("route creations: %v, want 3 (2 + the repaired one)", got)
	}
	// A converged mesh: a pass applies nothing.
	before := eng.applies
	if err := r.Pass(ctx, "test"); err != nil {
		t.Fatal(err)
	}
	if eng.applies != before {
		t.Errorf("a pass over a converged mesh applied something")
	}
	if r.Metrics.Value(MetricLastSuccess, nil) == 0 || r.Metrics.Value(MetricPasses, Labels{"result": "ok"}) != 3 {
		t.Errorf("pass metrics not recorded")
	}
}

// TestPassWritesStateFixesOfEveryKind: a plan with nothing to change but state fixes of kinds other than
// routes (a copy's record to forget, a control plane's objects to record) is applied and the state written:
// else what meshd made before a crash would stay unrecorded, and be left behind when its block is removed.
func TestPassWritesStateFixesOfEveryKind(t *testing.T) {
	r, eng := newReconciler(t)
	ctx := context.Background()
	if err := r.Pass(ctx, "test"); err != nil {
		t.Fatal(err)
	}
	gone := plan.ReplicaAddress("s", "c001")
	st, err := r.Backend.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	st.SetReplica(gone, state.ReplicaRecord{Cluster: "c001", KubeContext: "c1", Kind: "Secret", Namespace: "n1", Name: "s"})
	if err := r.Backend.Write(ctx, st); err != nil {
		t.Fatal(err)
	}
	cp := state.ReplicaRecord{Cluster: "c002", KubeContext: "c2", Kind: "ServiceAccount", Namespace: "n2", Name: "meshd-cp-x"}
	cpAddr := plan.CPAccountAddress("x", "c002")
	eng.edit = func(p *plan.Plan) {
		p.ForgetReplicas = []string{gone}
		p.RecordControlPlanes = map[string]state.ReplicaRecord{cpAddr: cp}
	}
	if err := r.Pass(ctx, "test"); err != nil {
		t.Fatal(err)
	}
	got, err := r.Backend.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.Serial != st.Serial+1 {
		t.Errorf("state serial %d after the pass, want %d: the state fixes were not written", got.Serial, st.Serial+1)
	}
	if diff := cmp.Diff(map[string]state.ReplicaRecord{cpAddr: cp}, got.ControlPlanes); diff != "" {
		t.Errorf("control planes in the state: -want, +got:\n%s", diff)
	}
	if _, ok := got.Replicas[gone]; ok {
		t.Errorf("the forgotten copy %s is still recorded", gone)
	}
	// Fixes already in the state change nothing: the next pass writes nothing.
	if err := r.Pass(ctx, "test"); err != nil {
		t.Fatal(err)
	}
	if again, _ := r.Backend.Read(ctx); again.Serial != got.Serial {
		t.Errorf("a pass whose state fixes are already in the state wrote it (serial %d, was %d)", again.Serial, got.Serial)
	}
}

// TestPartialPassCorrectsTheRest: with a member cluster that could not be observed, the pass still applies
// the AWS corrections, and ends as a transient error so that it is retried soon and not counted a success.
func TestPartialPassCorrectsTheRest(t *testing.T) {
	r, eng := newReconciler(t)
	eng.unobserved = []string{"c002"}
	err := r.Pass(context.Background(), "test")
	if !errors.Is(err, ErrTransient) || !strings.Contains(err.Error(), "c002") {
		t.Fatalf("pass with c002 unobserved: err %v, want a transient error naming c002", err)
	}
	if got := r.Metrics.Sum(MetricCorrected); got != 5 {
		t.Errorf("corrections in the partial pass: %v, want 5 (the whole AWS side)", got)
	}
	if got := r.Metrics.Value(MetricErrors, Labels{"kind": "observe"}); got != 1 {
		t.Errorf("observe errors: %v, want 1", got)
	}
	if r.Metrics.Value(MetricLastSuccess, nil) != 0 {
		t.Error("a partial pass was recorded as the last success")
	}
	eng.unobserved = nil
	if err := r.Pass(context.Background(), "test"); err != nil || r.Metrics.Value(MetricLastSuccess, nil) == 0 {
		t.Errorf("the pass after the cluster answers again: err %v, last success %v", err, r.Metrics.Value(MetricLastSuccess, nil))
	}
}

// lostLock is a state backend whose lock has been lost (as the Secret backend reports when another process
// took its Lease).
type lostLock struct{ state.Backend }

func (lostLock) Lost() <-chan struct{} {
	ch := make(chan struct{})
	close(ch)
	return ch
}

// TestLostStateLockStopsThePass: with the state lock lost, the pass applies nothing (another replica may be
// acting) and is retried soon.
func TestLostStateLockStopsThePass(t *testing.T) {
	r, eng := newReconciler(t)
	r.Backend = lostLock{r.Backend}
	err := r.Pass(context.Background(), "test")
	if !errors.Is(err, ErrTransient) || !strings.Contains(err.Error(), "lock was lost") {
		t.Fatalf("pass with a lost lock: err %v, want a transient lost-lock error", err)
	}
	if eng.applies != 0 || len(eng.world.Observed.Peerings) != 0 {
		t.Errorf("applied with a lost lock: %d applies, %d peerings", eng.applies, len(eng.world.Observed.Peerings))
	}
}

// TestRepeatedDriftIsReported: a route deleted again and again is corrected every time, and reported once
// as drift that keeps coming back.
func TestRepeatedDriftIsReported(t *testing.T) {
	r, eng := newReconciler(t)
	ctx := context.Background()
	if err := r.Pass(ctx, "test"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < repeatLimit+1; i++ {
		eng.world.DeleteRoute(eng.members[0].RouteTableIDs[0], eng.members[1].CIDRs[0])
		if err := r.Pass(ctx, "test"); err != nil {
			t.Fatal(err)
		}
	}
	// 2 routes from empty, then the same one repaired repeatLimit+1 times.
	if got := r.Metrics.Value(MetricCorrected, Labels{"kind": "route", "action": "create"}); got != 2+repeatLimit+1 {
		t.Errorf("route creations: %v, want %d", got, 2+repeatLimit+1)
	}
	if got := r.Metrics.Value(MetricRepeatedDrift, Labels{"kind": "route"}); got != 1 {
		t.Errorf("repeated drift reported %v times, want once", got)
	}
}

func TestRepeatsWindow(t *testing.T) {
	var r repeats
	t0 := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	step := func(addr string, at time.Duration) bool {
		_, report := r.corrected(addr, t0.Add(at))
		return report
	}
	var got []bool
	for _, at := range []time.Duration{0, time.Minute, 2 * time.Minute, 3 * time.Minute} {
		got = append(got, step("corefile[a]", at))
	}
	if want := []bool{false, false, true, false}; !slices.Equal(got, want) {
		t.Errorf("reports for 4 corrections a minute apart: %v, want %v", got, want)
	}
	// Still going every minute: quiet until a window after the report, then reported again.
	for m := 4; m < 12; m++ {
		if step("corefile[a]", time.Duration(m)*time.Minute) {
			t.Errorf("reported again at minute %d, within the window of the first report", m)
		}
	}
	if !step("corefile[a]", 12*time.Minute) {
		t.Error("not reported again a window after the first report, while the corrections go on")
	}
	// Corrections further apart than the window are never a repeat.
	for i := 0; i < 5; i++ {
		if step("route[x]", time.Duration(i)*11*time.Minute) {
			t.Errorf("correction %d, 11 minutes after the last, reported as repeated", i)
		}
	}
	if len(r.times) > 2 {
		t.Errorf("%d addresses remembered, want quiet ones forgotten", len(r.times))
	}
}

func TestDryRunChangesNothing(t *testing.T) {
	r, eng := newReconciler(t)
	r.DryRun = true
	if err := r.Pass(context.Background(), "test"); err != nil {
		t.Fatal(err)
	}
	if eng.applies != 0 || len(eng.world.Observed.Peerings) != 0 {
		t.Errorf("dry run applied: %d applies, %d peerings", eng.applies, len(eng.world.Observed.Peerings))
	}
	if got := r.Metrics.Value(MetricDetected, Labels{"kind": "route"}); got != 2 {
		t.Errorf("detected route drift: %v, want 2", got)
	}
	st, _ := r.Backend.Read(context.Background())
	if st.Serial != 0 {
		t.Errorf("dry run wrote the state (serial %d)", st.Serial)
	}
}

func TestUpsertOnlyNeverDeletes(t *testing.T) {
	r, eng := newReconciler(t)
	ctx := context.Background()
	if err := r.Pass(ctx, "test"); err != nil {
		t.Fatal(err)
	}
	// The second cluster leaves the spec: sync would delete its peering, routes and rules.
	eng.members = eng.members[:1]
	r.UpsertOnly = true
	if err := r.Pass(ctx, "test"); err != nil {
		t.Fatal(err)
	}
	if n := r.Metrics.Value(MetricCorrected, Labels{"kind": "peering", "action": "destroy"}); n != 0 {
		t.Errorf("upsert-only deleted %v peerings", n)
	}
	live := 0
	for _, p := range eng.world.Observed.Peerings {
		if !p.Gone() {
			live++
		}
	}
	if live != 1 {
		t.Errorf("%d live peerings after an upsert-only pass, want 1", live)
	}
	// The cluster that left stays in the state: its objects were not removed, so they must still be observed.
	st, err := r.Backend.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := st.Members["c002"]; !ok {
		t.Errorf("the state forgot the former member whose objects upsert-only left in place: %v", st.Members)
	}
}

func TestSpecSourceKeepsLastGoodSpec(t *testing.T) {
	r, _ := newReconciler(t)
	good := r.Spec.Current()
	if err := os.WriteFile(r.Spec.Path, []byte("mesh \"tidb\" {\n  bogus = 1\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	changed, _, diags := r.Spec.Reload()
	if changed || !diags.HasErrors() || r.Spec.Current() != good {
		t.Fatalf("a broken spec replaced the good one (changed=%v, diags=%v)", changed, diags)
	}
	lines := FormatDiagnostics(diags)
	if !strings.Contains(strings.Join(lines, "\n"), "mesh.hcl:2,3: error: Unsupported argument") {
		t.Errorf("diagnostic lines: %q", lines)
	}
}

// TestSpecWatchTriggers: a burst of writes is one change, told a debounce after the last write. The debounce
// (1 s) is long beside the burst (three writes, microseconds): on a machine five times slower the writes
// still fall within it. Only lower bounds are put on times, which slowness cannot break.
func TestSpecWatchTriggers(t *testing.T) {
	r, _ := newReconciler(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const debounce = time.Second
	fired := make(chan time.Time, 10)
	if err := r.Spec.Watch(ctx, debounce, func() { fired <- time.Now() }); err != nil {
		t.Fatal(err)
	}
	// Three quick writes are one change after the debounce.
	for i := 0; i < 3; i++ {
		if err := os.WriteFile(r.Spec.Path, []byte(testSpec+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	lastWrite := time.Now()
	var at time.Time
	select {
	case at = <-fired:
	case <-time.After(30 * time.Second):
		t.Fatal("no change seen")
	}
	if early := at.Sub(lastWrite); early < debounce {
		t.Errorf("notified %s after the last write, before the debounce (%s) ran out", early, debounce)
	}
	// Nothing more for two debounces after the notification, watched all along: a late event of the burst
	// would start a timer that fires within one.
	select {
	case <-fired:
		t.Error("debounce let two notifications through for one burst of writes")
	case <-time.After(2 * debounce):
	}
	// The watcher goroutine ends with ctx; goleak (TestMain) retries until it has.
}

// TestControllerCoalescesAndRespectsMinInterval: triggers that arrive while a pass runs make one pass after
// it, no sooner than the minimum interval after the first started. The triggers come while the start pass is
// held, so that no scheduling delay can split them; a later trigger (a fence) makes a pass of its own
// reason only, which shows that no spare pass for the burst was pending.
func TestControllerCoalescesAndRespectsMinInterval(t *testing.T) {
	var mu sync.Mutex
	var starts []time.Time
	var whys []string
	release := make(chan struct{})
	ctl := &Controller{Interval: time.Hour, MinInterval: 200 * time.Millisecond}
	ctl.Pass = func(ctx context.Context, why Reason) error {
		mu.Lock()
		starts = append(starts, time.Now())
		whys = append(whys, why.Why)
		n := len(whys)
		mu.Unlock()
		if n == 1 {
			<-release
		}
		return nil
	}
	passes := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(whys)
	}
	waitPasses := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); passes() < n; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d passes after 30 s, want %d", passes(), n)
			}
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { ctl.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	waitPasses(1)             // the start pass runs, held
	for i := 0; i < 20; i++ { // a burst of triggers is one pass
		ctl.Trigger("burst")
	}
	close(release)
	waitPasses(2)
	ctl.Trigger("fence")
	waitPasses(3)
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"start", "burst", "fence"}; !slices.Equal(whys, want) {
		t.Fatalf("passes %q, want %q", whys, want)
	}
	if gap := starts[1].Sub(starts[0]); gap < ctl.MinInterval {
		t.Errorf("second pass %s after the first, want at least the minimum interval", gap)
	}
	if gap := starts[2].Sub(starts[1]); gap < ctl.MinInterval {
		t.Errorf("third pass %s after the second, want at least the minimum interval", gap)
	}
}

// TestControllerScopesWatchTriggeredPasses: watch events between two passes make one pass that names every
// cluster they came from (and those where a Service changed) and is not full; any other trigger among them
// makes it full.
func TestControllerScopesWatchTriggeredPasses(t *testing.T) {
	var mu sync.Mutex
	var reasons []Reason
	release, release2 := make(chan struct{}), make(chan struct{})
	ctl := &Controller{Interval: time.Hour, MinInterval: 10 * time.Millisecond}
	ctl.Pass = func(ctx context.Context, r Reason) error {
		mu.Lock()
		reasons = append(reasons, r)
		n := len(reasons)
		mu.Unlock()
		switch n {
		case 1:
			<-release // triggers below arrive while the start pass runs
		case 2:
			<-release2 // and while the second runs: no scheduling delay can split them between two passes
		}
		return nil
	}
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(reasons)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { ctl.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	waitUntil := func(n int) {
		for deadline := time.Now().Add(10 * time.Second); count() < n; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("%d passes, want %d", count(), n)
			}
		}
	}
	waitUntil(1)
	ctl.TriggerKube(KubeEvent{Cluster: "c2", Why: "coredns changed in c2"})
	ctl.TriggerKube(KubeEvent{Cluster: "c1", Service: true, Why: "Service changed in c1"})
	ctl.TriggerKube(KubeEvent{Cluster: "c2", Why: "coredns changed in c2"})
	close(release)
	waitUntil(2)
	ctl.TriggerKube(KubeEvent{Cluster: "c1", Why: "coredns changed in c1"})
	ctl.Trigger("SIGHUP")
	close(release2)
	waitUntil(3)
	mu.Lock()
	defer mu.Unlock()
	want := []Reason{
		{Why: "start", Full: true},
		{Why: "coredns changed in c2; Service changed in c1", Kube: []string{"c1", "c2"}, LoadBalancers: []string{"c1"}},
		{Why: "coredns changed in c1; SIGHUP", Full: true},
	}
	if diff := cmp.Diff(want, reasons); diff != "" {
		t.Errorf("pass reasons: -want, +got:\n%s", diff)
	}
}

// TestControllerRetriesTransientErrorsSooner: three throttled passes are retried after a backoff doubling
// from the minimum interval, then a pass that succeeds puts the next at the interval (an hour). Conditions
// and lower bounds only: a slow machine makes the retries later, never fewer.
func TestControllerRetriesTransientErrorsSooner(t *testing.T) {
	var mu sync.Mutex
	var at []time.Time
	ctl := &Controller{Interval: time.Hour, MinInterval: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond}
	ctl.Pass = func(ctx context.Context, _ Reason) error {
		mu.Lock()
		at = append(at, time.Now())
		n := len(at)
		mu.Unlock()
		if n <= 3 {
			return errors.Join(ErrTransient, errors.New("throttled"))
		}
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { ctl.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	// The fourth pass has ended when it is counted and no pass is under way: the loop has set the next one's
	// time by then.
	ended4 := func() bool {
		mu.Lock()
		n := len(at)
		mu.Unlock()
		ctl.mu.Lock()
		defer ctl.mu.Unlock()
		return n >= 4 && ctl.passStart.IsZero()
	}
	for deadline := time.Now().Add(30 * time.Second); !ended4(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("no fourth pass within 30 s: the throttled passes were not retried before the hour-long interval")
		}
	}
	mu.Lock()
	calls := slices.Clone(at)
	mu.Unlock()
	ctl.mu.Lock()
	wait := ctl.due.Sub(ctl.lastEnd)
	ctl.mu.Unlock()
	if len(calls) != 4 {
		t.Fatalf("%d passes, want 4", len(calls))
	}
	for i, least := range []time.Duration{20 * time.Millisecond, 40 * time.Millisecond, 80 * time.Millisecond} {
		if gap := calls[i+1].Sub(calls[i]); gap < least {
			t.Errorf("retry %d came %s after the throttled pass, want a backoff of at least %s", i+1, gap, least)
		}
	}
	if wait != ctl.Interval {
		t.Errorf("after the pass that succeeded the next is due in %s, want the interval (%s)", wait, ctl.Interval)
	}
}

func TestServer(t *testing.T) {
	m := NewMetrics()
	m.Add(MetricCorrected, Labels{"kind": "route", "action": "create"}, 2)
	m.Observe(MetricPassDuration, nil, 0.3)
	triggered := make(chan string, 1)
	srv := &Server{Metrics: m, Trigger: func(why string) { triggered <- why }, Ready: func() bool { return true }}
	if err := srv.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	defer srv.Shutdown(context.Background())
	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	get := func(path string) string {
		resp, err := client.Get("http://" + srv.Addr() + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	body := get("/metrics")
	for _, want := range []string{
		`meshd_drift_corrected_total{action="create",kind="route"} 2`,
		`meshd_pass_duration_seconds_bucket{le="0.5"} 1`,
		`meshd_pass_duration_seconds_count 1`,
		"# TYPE meshd_passes_total counter",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
	if got := get("/healthz"); got != "ok\n" {
		t.Errorf("/healthz: %q", got)
	}
	// POST /trigger is not on the metrics listener, only on its own, loopback one.
	resp, err := client.Post("http://"+srv.Addr()+"/trigger", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("POST /trigger on the metrics listener: status %d, want 404", resp.StatusCode)
	}
	if err := srv.StartTrigger("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	resp, err = client.Post("http://"+srv.TriggerAddr()+"/trigger", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if why := <-triggered; why != "http" || resp.StatusCode != http.StatusAccepted {
		t.Errorf("trigger: %q, status %d", why, resp.StatusCode)
	}
}

// TestTriggerLoopbackOnly: POST /trigger is unauthenticated, so a request from any address but loopback is
// refused, whatever address the trigger listener binds.
func TestTriggerLoopbackOnly(t *testing.T) {
	var triggered []string
	srv := &Server{Metrics: NewMetrics(), Trigger: func(why string) { triggered = append(triggered, why) }}
	h := srv.TriggerHandler()
	for remote, want := range map[string]int{
		"127.0.0.1:40000":       http.StatusAccepted,
		"[::1]:40000":           http.StatusAccepted,
		"10.0.3.7:40000":        http.StatusForbidden,
		"192.168.1.10:5555":     http.StatusForbidden,
		"[fd00::1]:40000":       http.StatusForbidden,
		"0.0.0.0:1":             http.StatusForbidden,
		"not an address at all": http.StatusForbidden,
	} {
		triggered = nil
		req := httptest.NewRequest(http.MethodPost, "/trigger", nil)
		req.RemoteAddr = remote
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != want {
			t.Errorf("from %s: status %d, want %d (%s)", remote, rec.Code, want, rec.Body)
		}
		if fired := len(triggered) == 1; fired != (want == http.StatusAccepted) {
			t.Errorf("from %s: triggered %v", remote, triggered)
		}
		if want == http.StatusForbidden && !strings.Contains(rec.Body.String(), "loopback only") {
			t.Errorf("from %s: body %q does not say why", remote, rec.Body)
		}
	}
}

// TestReadyzStale: /readyz fails with 503 and a one-line reason once no pass has succeeded for
// StaleAfter, counting from the start when none has yet.
func TestReadyzStale(t *testing.T) {
	start := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	now := start
	var last time.Time
	srv := &Server{Metrics: NewMetrics(), StaleAfter: 90 * time.Second, Started: start,
		Now: func() time.Time { return now }, LastSuccess: func() time.Time { return last }}
	readyz := func() (int, string) {
		rec := httptest.NewRecorder()
		srv.handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		return rec.Code, rec.Body.String()
	}
	check := func(what string, wantCode int, wantIn string) {
		t.Helper()
		code, body := readyz()
		if code != wantCode || !strings.Contains(body, wantIn) || strings.Count(body, "\n") != 1 {
			t.Errorf("%s: %d %q, want %d with %q on one line", what, code, body, wantCode, wantIn)
		}
	}
	now = start.Add(80 * time.Second)
	check("no pass yet, within three intervals of the start", http.StatusOK, "ok")
	now = start.Add(91 * time.Second)
	check("no pass since the start", http.StatusServiceUnavailable, "no pass has completed successfully since the start 1m31s ago")
	last = start.Add(60 * time.Second)
	now = start.Add(140 * time.Second)
	check("a success 80s ago", http.StatusOK, "ok")
	now = start.Add(151 * time.Second)
	check("a success 91s ago", http.StatusServiceUnavailable, "no pass has completed successfully for 1m31s (last at 2025-01-02T03:05:05Z")

	// Without LastSuccess, MetricLastSuccess is read.
	srv.LastSuccess = nil
	srv.Metrics.Set(MetricLastSuccess, nil, float64(start.Add(100*time.Second).Unix()))
	check("metric: a success 51s ago", http.StatusOK, "ok")
	now = start.Add(200 * time.Second)
	check("metric: a success 100s ago", http.StatusServiceUnavailable, "for 1m40s")

	// StaleAfter 0 (not configured): always ok.
	srv.StaleAfter = 0
	check("no limit", http.StatusOK, "ok")
}

// TestReconcilerLastSuccess: a successful pass and a follower's skipped pass count for /readyz; a failed
// pass does not.
func TestReconcilerLastSuccess(t *testing.T) {
	leader := false
	r := &Reconciler{Metrics: NewMetrics(), Log: zap.NewNop(), Spec: &SpecSource{}, IsLeader: func() bool { return leader }}
	if !r.LastSuccess().IsZero() {
		t.Fatal("LastSuccess before any pass")
	}
	if err := r.Pass(context.Background(), "test"); err != nil || r.LastSuccess().IsZero() {
		t.Fatalf("a follower's skipped pass: err %v, last success %v", err, r.LastSuccess())
	}
	if r.Metrics.Value(MetricLastSuccess, nil) != 0 {
		t.Error("a skipped pass set meshd_last_success_timestamp_seconds")
	}
	leader = true
	before := r.LastSuccess()
	if err := r.Pass(context.Background(), "test"); err == nil {
		t.Fatal("a pass without a spec succeeded")
	}
	if got := r.LastSuccess(); !got.Equal(before) {
		t.Errorf("a failed pass moved LastSuccess from %v to %v", before, got)
	}
}

func TestWrittenByMeshd(t *testing.T) {
	at := func(sec int64) *metav1.Time { tm := metav1.Unix(sec, 0); return &tm }
	entry := func(manager string, sec int64) metav1.ManagedFieldsEntry {
		return metav1.ManagedFieldsEntry{Manager: manager, Operation: metav1.ManagedFieldsOperationUpdate, Time: at(sec)}
	}
	cases := map[string]struct {
		fields []metav1.ManagedFieldsEntry
		want   bool
	}{
		"meshd wrote last":               {[]metav1.ManagedFieldsEntry{entry("eks", 10), entry("meshd", 20)}, true},
		"someone wrote after meshd":      {[]metav1.ManagedFieldsEntry{entry("meshd", 20), entry("kubectl-edit", 21)}, false},
		"same second: not taken as ours": {[]metav1.ManagedFieldsEntry{entry("meshd", 20), entry("eks", 20)}, false},
		"never written by meshd":         {[]metav1.ManagedFieldsEntry{entry("eks", 10)}, false},
	}
	for name, tc := range cases {
		obj := &metav1.ObjectMeta{ManagedFields: tc.fields}
		if got := writtenByMeshd(obj); got != tc.want {
			t.Errorf("%s: writtenByMeshd = %v, want %v", name, got, tc.want)
		}
	}
}

func TestChangedByMeshd(t *testing.T) {
	at := func(sec int64) *metav1.Time { tm := metav1.Unix(sec, 0); return &tm }
	entry := func(manager string, op metav1.ManagedFieldsOperationType, sec int64, fields string) metav1.ManagedFieldsEntry {
		return metav1.ManagedFieldsEntry{Manager: manager, Operation: op, Time: at(sec),
			FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(fields)}}
	}
	const apply, update = metav1.ManagedFieldsOperationApply, metav1.ManagedFieldsOperationUpdate
	user := entry("kubectl-client-side-apply", update, 10, `{"f:spec":{}}`)
	meshdAnnotations := entry("meshd", apply, 20, `{"f:metadata":{"f:annotations":{"f:a":{},"f:b":{}}}}`)
	cases := map[string]struct {
		old, new []metav1.ManagedFieldsEntry
		want     bool
	}{
		"meshd applied its annotations": {
			[]metav1.ManagedFieldsEntry{user}, []metav1.ManagedFieldsEntry{user, meshdAnnotations}, true},
		"meshd applied again later": {
			[]metav1.ManagedFieldsEntry{user, meshdAnnotations},
			[]metav1.ManagedFieldsEntry{user, entry("meshd", apply, 25, `{"f:metadata":{"f:annotations":{"f:a":{}}}}`)}, true},
		// The user's update only deletes meshd's annotation "a": the API server keeps no entry for the
		// user (it would own nothing) and shrinks meshd's, whose time stays 20.
		"another manager removed meshd's annotation": {
			[]metav1.ManagedFieldsEntry{user, meshdAnnotations},
			[]metav1.ManagedFieldsEntry{user, entry("meshd", apply, 20, `{"f:metadata":{"f:annotations":{"f:b":{}}}}`)}, false},
		"another manager wrote": {
			[]metav1.ManagedFieldsEntry{user, meshdAnnotations},
			[]metav1.ManagedFieldsEntry{entry("kubectl-client-side-apply", update, 30, `{"f:spec":{"f:x":{}}}`), meshdAnnotations}, false},
		"meshd and another manager in one change": {
			[]metav1.ManagedFieldsEntry{user},
			[]metav1.ManagedFieldsEntry{entry("kubectl-client-side-apply", update, 30, `{"f:spec":{}}`), meshdAnnotations}, false},
		"another manager's fields all taken": {
			[]metav1.ManagedFieldsEntry{user, meshdAnnotations}, []metav1.ManagedFieldsEntry{entry("meshd", apply, 30, `{"f:spec":{}}`)}, false},
		"nothing in managedFields changed (status)": {
			[]metav1.ManagedFieldsEntry{user, meshdAnnotations}, []metav1.ManagedFieldsEntry{user, meshdAnnotations}, false},
	}
	for name, tc := range cases {
		if got := changedByMeshd(&metav1.ObjectMeta{ManagedFields: tc.old}, &metav1.ObjectMeta{ManagedFields: tc.new}); got != tc.want {
			t.Errorf("%s: changedByMeshd = %v, want %v", name, got, tc.want)
		}
	}
}

func TestSpecWatchIgnoresEditorFiles(t *testing.T) {
	dir := t.TempDir()
	s := &SpecSource{Path: dir}
	for name, want := range map[string]bool{"mesh.hcl": true, "..data": true, "..2024_01_01_00_00_00.1": true,
		".#mesh.hcl": false, "mesh.hcl~": false, ".mesh.hcl.swp": false, ".mesh.hcl": false, "4913": false} {
		if got := s.relevant(filepath.Join(dir, name)); got != want {
			t.Errorf("relevant(%q) = %v, want %v", name, got, want)
		}
	}
}

// scopedEngine is worldEngine with PlanScoped: it records the scopes asked for and reports awsErr as an AWS
// observation that could not be renewed.
type scopedEngine struct {
	*worldEngine
	scopes []model.ObserveScope
	awsErr error
}

func (e *scopedEngine) PlanScoped(ctx context.Context, m *spec.Mesh, st *state.State, scope model.ObserveScope) (*plan.Plan, model.ObserveReport, hcl.Diagnostics, error) {
	e.scopes = append(e.scopes, scope)
	p, diags, err := e.Plan(ctx, m, st, false)
	return p, model.ObserveReport{AWSError: e.awsErr}, diags, err
}

// TestPassScopesWatchTriggeredPlans: a pass for watch events only asks for the clusters they name and the
// AWS interval as the age AWS may be reused at; a full pass, or --full-observe, asks for everything; an AWS
// that could not be observed ends the pass as a transient error after the corrections.
func TestPassScopesWatchTriggeredPlans(t *testing.T) {
	r, world := newReconciler(t)
	eng := &scopedEngine{worldEngine: world}
	r.Engine, r.AWSInterval = eng, time.Minute
	ctx := context.Background()
	if err := r.PassFor(ctx, Reason{Why: "watch", Kube: []string{"c001"}, LoadBalancers: []string{"c001"}}); err != nil {
		t.Fatal(err)
	}
	if err := r.PassFor(ctx, Reason{Why: "interval", Full: true}); err != nil {
		t.Fatal(err)
	}
	r.FullObserve = true
	if err := r.PassFor(ctx, Reason{Why: "watch", Kube: []string{"c002"}}); err != nil {
		t.Fatal(err)
	}
	want := []model.ObserveScope{
		{Scoped: true, Kube: []string{"c001"}, LoadBalancers: []string{"c001"}, AWSMaxAge: time.Minute, KeepLastKnown: true},
		{KeepLastKnown: true},
		{KeepLastKnown: true},
	}
	if diff := cmp.Diff(want, eng.scopes); diff != "" {
		t.Errorf("scopes asked for: -want, +got:\n%s", diff)
	}
	eng.awsErr = errors.New("connection timed out")
	err := r.PassFor(ctx, Reason{Why: "interval", Full: true})
	if !errors.Is(err, ErrTransient) || !strings.Contains(err.Error(), "AWS could not be observed") {
		t.Errorf("pass with AWS not observed: %v, want a transient error saying so", err)
	}
	if got := r.Metrics.Value(MetricErrors, Labels{"kind": "observe"}); got != 1 {
		t.Errorf("observe errors counted: %v, want 1", got)
	}
}
