package apply_test

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/meshd-io/meshd/internal/apply"
	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/state"
)

// Addresses used throughout: peerings between clusters a, b and c, the routes through them, a DNS Service and
// the Corefile that forwards to it.
var (
	pAB  = plan.PeeringAddress("a", "b")
	pAC  = plan.PeeringAddress("a", "c")
	pBC  = plan.PeeringAddress("b", "c")
	rA   = plan.RouteAddress("a", "rtb-a", "10.2.0.0/16")
	rB   = plan.RouteAddress("b", "rtb-b", "10.1.0.0/16")
	rC   = plan.RouteAddress("c", "rtb-c", "10.1.0.0/16")
	svcA = plan.DNSServiceAddress("a")
	cfA  = plan.CorefileAddress("a")
	cfB  = plan.CorefileAddress("b")
)

var errBoom = errors.New("boom")

func change(action plan.Action, kind plan.Kind, address string, deps ...string) plan.Change {
	return plan.Change{Action: action, Kind: kind, Address: address, Reason: "test", DependsOn: deps}
}

func peering(action plan.Action, address string, deps ...string) plan.Change {
	return change(action, plan.KindPeering, address, deps...)
}

func route(action plan.Action, address string, deps ...string) plan.Change {
	return change(action, plan.KindRoute, address, deps...)
}

// fake is an Executor that records what it is asked to do. It can fail, block or return an ID at chosen
// addresses, and counts the changes in flight.
type fake struct {
	ids    map[string]string             // Outcome.ID by address
	fail   map[string]error              // the error Execute returns, by address
	record map[string]func(*state.State) // Outcome.Record by address (also returned with an error)
	lookup map[string][]string           // addresses a change looks up through Known
	gate   map[string]chan struct{}      // Execute waits for the channel to close, by address
	hold   chan struct{}                 // when set, every Execute waits for it to close
	// started, when set, receives every address as its Execute begins (buffer it for every change).
	started chan string

	mu         sync.Mutex
	events     []string                     // "start <address>" and "end <address>", in order
	known      map[string]map[string]string // by address: what Known answered it, "-" for not known
	running    int
	maxRunning int
}

func (f *fake) Execute(_ context.Context, ch plan.Change, known apply.Known) (apply.Outcome, error) {
	f.mu.Lock()
	f.events = append(f.events, "start "+ch.Address)
	f.running++
	f.maxRunning = max(f.maxRunning, f.running)
	f.mu.Unlock()
	if f.started != nil {
		f.started <- ch.Address
	}
	if f.hold != nil {
		<-f.hold
	}
	if g := f.gate[ch.Address]; g != nil {
		<-g
	}
	answers := map[string]string{}
	for _, addr := range f.lookup[ch.Address] {
		id, ok := known(addr)
		if !ok {
			id = "-"
		}
		answers[addr] = id
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(answers) > 0 {
		if f.known == nil {
			f.known = map[string]map[string]string{}
		}
		f.known[ch.Address] = answers
	}
	f.running--
	f.events = append(f.events, "end "+ch.Address)
	return apply.Outcome{ID: f.ids[ch.Address], Record: f.record[ch.Address]}, f.fail[ch.Address]
}

// calls returns the addresses Execute was called for, sorted.
func (f *fake) calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, e := range f.events {
		if addr, ok := strings.CutPrefix(e, "start "); ok {
			out = append(out, addr)
		}
	}
	sort.Strings(out)
	return out
}

// allKinds registers f for every kind the plan package defines.
func allKinds(f *fake) map[plan.Kind]apply.Executor {
	return map[plan.Kind]apply.Executor{
		plan.KindPeering: f, plan.KindRoute: f, plan.KindSGRule: f, plan.KindDNSService: f, plan.KindCorefile: f,
	}
}

// outcome is a Result in comparable form: Applied sorted, errors as their text, nil for empty.
type outcome struct {
	Applied []string
	Failed  map[string]string
	Skipped map[string]string
}

func summarize(r *apply.Result) outcome {
	var o outcome
	o.Applied = append(o.Applied, r.Applied...)
	sort.Strings(o.Applied)
	for addr, err := range r.Failed {
		if o.Failed == nil {
			o.Failed = map[string]string{}
		}
		o.Failed[addr] = err.Error()
	}
	for addr, why := range r.Skipped {
		if o.Skipped == nil {
			o.Skipped = map[string]string{}
		}
		o.Skipped[addr] = why
	}
	return o
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// runAsync runs Run in a goroutine; the returned func waits for its result (failing the test rather than
// hanging when it never comes). release is called, and Run waited for, when the test ends, so that a test
// that failed early leaves no goroutine behind for the next one.
func runAsync(t *testing.T, ctx context.Context, p *plan.Plan, st *state.State, opts apply.Options, release func()) func() *apply.Result {
	t.Helper()
	done := make(chan *apply.Result, 1)
	go func() { done <- apply.Run(ctx, p, st, opts) }()
	wait := sync.OnceValue(func() *apply.Result {
		select {
		case r := <-done:
			return r
		case <-time.After(time.Minute):
			return nil
		}
	})
	t.Cleanup(func() {
		release()
		wait()
	})
	return func() *apply.Result {
		t.Helper()
		r := wait()
		if r == nil {
			t.Fatal("Run did not return")
		}
		return r
	}
}

// closer returns a func that closes ch, and does nothing when called again.
func closer(ch chan struct{}) func() { return sync.OnceFunc(func() { close(ch) }) }

// receive waits for n addresses on started, failing the test rather than hanging.
func receive(t *testing.T, started <-chan string, n int) []string {
	t.Helper()
	var out []string
	for range n {
		select {
		case addr := <-started:
			out = append(out, addr)
		case <-time.After(time.Minute):
			t.Fatalf("only %d of %d changes started: %v", len(out), n, out)
		}
	}
	sort.Strings(out)
	return out
}

func TestRunFailures(t *testing.T) {
	cases := map[string]struct {
		reason    string
		changes   []plan.Change
		fail      map[string]error
		executors func(*fake) map[plan.Kind]apply.Executor
		want      outcome
		wantCalls []string
		wantErr   string
	}{
		"AllSucceed": {
			reason:    "Every change runs and is applied; Err is nil.",
			changes:   []plan.Change{peering(plan.Create, pAB), route(plan.Create, rA, pAB), route(plan.Create, rB, pAB)},
			want:      outcome{Applied: []string{pAB, rA, rB}},
			wantCalls: []string{pAB, rA, rB},
		},
		"FailureSkipsDependentsTransitively": {
			reason: "A failed peering skips the route through it and the Corefile that waits on the route; the other " +
				"peering and its route still run.",
			changes: []plan.Change{
				peering(plan.Create, pAB), peering(plan.Create, pAC),
				route(plan.Create, rA, pAB), change(plan.Update, plan.KindCorefile, cfA, rA),
				route(plan.Create, rC, pAC),
			},
			fail: map[string]error{pAB: errBoom},
			want: outcome{
				Applied: []string{pAC, rC},
				Failed:  map[string]string{pAB: "boom"},
				Skipped: map[string]string{
					rA:  "depends on " + pAB + ", which did not succeed",
					cfA: "depends on " + rA + ", which did not succeed",
				},
			},
			wantCalls: []string{pAB, pAC, rC},
			wantErr: "1 change(s) failed, 2 skipped:\n" +
				"  peering[a:b]: boom\n" +
				"  corefile[a]: skipped: depends on route[a:rtb-a:10.2.0.0/16], which did not succeed\n" +
				"  route[a:rtb-a:10.2.0.0/16]: skipped: depends on peering[a:b], which did not succeed",
		},
		"FailedDependentSkipsItsOwn": {
			reason: "A change that fails after its dependency succeeded skips only what depends on it.",
			changes: []plan.Change{
				peering(plan.Create, pAB), route(plan.Create, rA, pAB), change(plan.Update, plan.KindCorefile, cfA, rA),
				route(plan.Create, rB, pAB),
			},
			fail: map[string]error{rA: errBoom},
			want: outcome{
				Applied: []string{pAB, rB},
				Failed:  map[string]string{rA: "boom"},
				Skipped: map[string]string{cfA: "depends on " + rA + ", which did not succeed"},
			},
			wantCalls: []string{pAB, rA, rB},
			wantErr: "1 change(s) failed, 1 skipped:\n" +
				"  route[a:rtb-a:10.2.0.0/16]: boom\n" +
				"  corefile[a]: skipped: depends on route[a:rtb-a:10.2.0.0/16], which did not succeed",
		},
		"OneOfSeveralDependenciesFails": {
			reason:  "A change waiting on two others is skipped when either fails, naming the one that did.",
			changes: []plan.Change{peering(plan.Create, pAB), peering(plan.Create, pAC), route(plan.Create, rA, pAB, pAC)},
			fail:    map[string]error{pAC: errBoom},
			want: outcome{
				Applied: []string{pAB},
				Failed:  map[string]string{pAC: "boom"},
				Skipped: map[string]string{rA: "depends on " + pAC + ", which did not succeed"},
			},
			wantCalls: []string{pAB, pAC},
			wantErr: "1 change(s) failed, 1 skipped:\n" +
				"  peering[a:c]: boom\n" +
				"  route[a:rtb-a:10.2.0.0/16]: skipped: depends on peering[a:c], which did not succeed",
		},
		"SeveralFailures": {
			reason: "Independent failures are all reported, sorted by address.",
			changes: []plan.Change{
				peering(plan.Delete, pBC), peering(plan.Create, pAB), route(plan.Delete, rB), route(plan.Create, rA, pAB),
			},
			fail: map[string]error{pBC: errors.New("in use"), pAB: errBoom},
			want: outcome{
				Applied: []string{rB},
				Failed:  map[string]string{pAB: "boom", pBC: "in use"},
				Skipped: map[string]string{rA: "depends on " + pAB + ", which did not succeed"},
			},
			wantCalls: []string{pAB, pBC, rB},
			wantErr: "2 change(s) failed, 1 skipped:\n" +
				"  peering[a:b]: boom\n" +
				"  peering[b:c]: in use\n" +
				"  route[a:rtb-a:10.2.0.0/16]: skipped: depends on peering[a:b], which did not succeed",
		},
		"NoExecutorForKind": {
			reason: "A change of a kind without an executor fails without running, and what depends on it is " +
				"skipped; the other kinds run.",
			changes: []plan.Change{
				peering(plan.Create, pAB), change(plan.Create, plan.KindDNSService, svcA),
				change(plan.Update, plan.KindCorefile, cfA, svcA),
			},
			executors: func(f *fake) map[plan.Kind]apply.Executor {
				return map[plan.Kind]apply.Executor{plan.KindPeering: f, plan.KindCorefile: f}
			},
			want: outcome{
				Applied: []string{pAB},
				Failed:  map[string]string{svcA: "no executor for dns_service changes"},
				Skipped: map[string]string{cfA: "depends on " + svcA + ", which did not succeed"},
			},
			wantCalls: []string{pAB},
			wantErr: "1 change(s) failed, 1 skipped:\n" +
				"  dns_service[a]: no executor for dns_service changes\n" +
				"  corefile[a]: skipped: depends on dns_service[a], which did not succeed",
		},
		"DependencyOutsideTheApply": {
			reason: "A dependency that is not a change of this apply (kept, or not in the plan) does not hold the " +
				"change back.",
			changes: []plan.Change{
				peering(plan.Keep, pAB), route(plan.Create, rA, pAB), route(plan.Create, rB, "peering[x:y]"),
			},
			want:      outcome{Applied: []string{rA, rB}},
			wantCalls: []string{rA, rB},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			f := &fake{fail: tc.fail}
			execs := allKinds(f)
			if tc.executors != nil {
				execs = tc.executors(f)
			}
			res := apply.Run(context.Background(), &plan.Plan{Mesh: "m", Changes: tc.changes}, state.New("m"),
				apply.Options{Executors: execs})
			if diff := cmp.Diff(tc.want, summarize(res)); diff != "" {
				t.Errorf("%s\nRun(...): -want, +got:\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(tc.wantCalls, f.calls()); diff != "" {
				t.Errorf("%s\nExecute calls: -want, +got:\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(tc.wantErr, errText(res.Err())); diff != "" {
				t.Errorf("%s\nResult.Err(): -want, +got:\n%s", tc.reason, diff)
			}
			for addr, err := range tc.fail {
				if got, ok := res.Failed[addr]; ok && !errors.Is(got, err) {
					t.Errorf("%s\nFailed[%s] = %v, want the executor's error %v", tc.reason, addr, got, err)
				}
			}
		})
	}
}

func TestRunInterrupted(t *testing.T) {
	cases := map[string]struct {
		reason      string
		parallelism int
		changes     []plan.Change
		// inFlight is how many changes are started (and held) when the context is cancelled.
		inFlight int
	}{
		"WaitingForASlot": {
			reason: "With one slot, the change in flight finishes; the others, waiting for the slot, are skipped.",
			changes: []plan.Change{
				peering(plan.Create, pAB), peering(plan.Create, pAC), peering(plan.Create, pBC),
			},
			parallelism: 1,
			inFlight:    1,
		},
		"EverySlotBusy": {
			reason: "Both changes in flight finish; the ones not started are skipped.",
			changes: []plan.Change{
				route(plan.Create, rA), route(plan.Create, rB), route(plan.Create, rC), route(plan.Delete, "route[d:rtb-d:10.9.0.0/16]"),
			},
			parallelism: 2,
			inFlight:    2,
		},
		"DependentsOfTheChangeInFlight": {
			reason: "The peering in flight finishes and succeeds; the routes waiting on it do not start.",
			changes: []plan.Change{
				peering(plan.Create, pAB), route(plan.Create, rA, pAB), route(plan.Create, rB, pAB),
			},
			parallelism: 10,
			inFlight:    1,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			f := &fake{hold: make(chan struct{}), started: make(chan string, len(tc.changes))}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			release := closer(f.hold)
			wait := runAsync(t, ctx, &plan.Plan{Mesh: "m", Changes: tc.changes}, state.New("m"),
				apply.Options{Executors: allKinds(f), Parallelism: tc.parallelism}, release)
			started := receive(t, f.started, tc.inFlight)
			cancel()
			release()
			res := wait()

			want := outcome{Applied: started, Skipped: map[string]string{}}
			for _, ch := range tc.changes {
				if !contains(started, ch.Address) {
					want.Skipped[ch.Address] = "apply was interrupted"
				}
			}
			if diff := cmp.Diff(want, summarize(res)); diff != "" {
				t.Errorf("%s\nRun(...): -want, +got:\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(started, f.calls()); diff != "" {
				t.Errorf("%s\nExecute calls: -want (those in flight at cancellation), +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestRunKnown(t *testing.T) {
	cases := map[string]struct {
		reason     string
		changes    []plan.Change
		ids        map[string]string
		lookup     map[string][]string
		hold       []string // addresses whose Execute is held until the test has seen them start
		wantKnown  map[string]map[string]string
		wantEvents []string
	}{
		"RouteThroughANewPeering": {
			reason:  "The route sees the ID the peering's creation returned, and starts only after it ended.",
			changes: []plan.Change{peering(plan.Create, pAB), route(plan.Create, rA, pAB)},
			ids:     map[string]string{pAB: "pcx-1"},
			lookup:  map[string][]string{rA: {pAB}},
			hold:    []string{pAB},
			wantKnown: map[string]map[string]string{
				rA: {pAB: "pcx-1"},
			},
			wantEvents: []string{"start " + pAB, "end " + pAB, "start " + rA, "end " + rA},
		},
		"Chain": {
			reason: "Each change in a chain sees the IDs of every change before it, and the chain runs in order.",
			changes: []plan.Change{
				change(plan.Update, plan.KindCorefile, cfB, svcA, rB),
				route(plan.Create, rB, pAB),
				change(plan.Create, plan.KindDNSService, svcA, pAB),
				peering(plan.Create, pAB),
			},
			ids:    map[string]string{pAB: "pcx-1", svcA: "10.0.0.53"},
			lookup: map[string][]string{rB: {pAB}, cfB: {svcA, pAB}, svcA: {pAB}},
			hold:   []string{pAB},
			wantKnown: map[string]map[string]string{
				svcA: {pAB: "pcx-1"},
				rB:   {pAB: "pcx-1"},
				cfB:  {svcA: "10.0.0.53", pAB: "pcx-1"},
			},
		},
		"NotKnown": {
			reason: "An address whose change returned no ID, or that no change of the apply has, is not known.",
			changes: []plan.Change{
				peering(plan.Update, pAB), route(plan.Create, rA, pAB),
			},
			lookup: map[string][]string{rA: {pAB, pAC}},
			wantKnown: map[string]map[string]string{
				rA: {pAB: "-", pAC: "-"},
			},
			wantEvents: []string{"start " + pAB, "end " + pAB, "start " + rA, "end " + rA},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			f := &fake{ids: tc.ids, lookup: tc.lookup, gate: map[string]chan struct{}{},
				started: make(chan string, len(tc.changes))}
			var releases []func()
			for _, addr := range tc.hold {
				f.gate[addr] = make(chan struct{})
				releases = append(releases, closer(f.gate[addr]))
			}
			release := func() {
				for _, r := range releases {
					r()
				}
			}
			wait := runAsync(t, context.Background(), &plan.Plan{Mesh: "m", Changes: tc.changes}, state.New("m"),
				apply.Options{Executors: allKinds(f)}, release)
			// Hold the creations until they are seen to run: nothing that waits on them may start meanwhile,
			// which the order of the events below shows.
			for range tc.hold {
				receive(t, f.started, 1)
			}
			release()
			res := wait()
			if err := res.Err(); err != nil {
				t.Fatalf("%s\nRun(...): %v", tc.reason, err)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if diff := cmp.Diff(tc.wantKnown, f.known); diff != "" {
				t.Errorf("%s\nKnown answers: -want, +got:\n%s", tc.reason, diff)
			}
			if tc.wantEvents != nil {
				if diff := cmp.Diff(tc.wantEvents, f.events); diff != "" {
					t.Errorf("%s\nExecute events: -want, +got:\n%s", tc.reason, diff)
				}
			}
			// Whatever the interleaving, no change starts before every change it depends on has ended.
			pos := map[string]int{}
			for i, e := range f.events {
				pos[e] = i
			}
			for _, ch := range tc.changes {
				for _, dep := range ch.DependsOn {
					if pos["start "+ch.Address] < pos["end "+dep] {
						t.Errorf("%s\n%s started before %s ended: %v", tc.reason, ch.Address, dep, f.events)
					}
				}
			}
		})
	}
}

func TestRunParallelism(t *testing.T) {
	independent := func(n int) []plan.Change {
		var out []plan.Change
		for i := range n {
			out = append(out, route(plan.Create, plan.RouteAddress("a", "rtb-a", fmt.Sprintf("10.%d.0.0/16", i))))
		}
		return out
	}
	cases := map[string]struct {
		reason      string
		parallelism int
		changes     []plan.Change
		want        int // the changes in flight at once
	}{
		"OneAtATime": {
			reason:      "With Parallelism 1 the changes run one at a time.",
			parallelism: 1,
			changes:     independent(6),
			want:        1,
		},
		"Two": {
			reason:      "With Parallelism 2 no more than two changes are in flight.",
			parallelism: 2,
			changes:     independent(6),
			want:        2,
		},
		"MoreThanChanges": {
			reason:      "A bound above the number of changes lets them all run at once.",
			parallelism: 8,
			changes:     independent(5),
			want:        5,
		},
		"Default": {
			reason:      "Parallelism 0 means 10.",
			parallelism: 0,
			changes:     independent(14),
			want:        10,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			f := &fake{hold: make(chan struct{}), started: make(chan string, len(tc.changes))}
			release := closer(f.hold)
			wait := runAsync(t, context.Background(), &plan.Plan{Mesh: "m", Changes: tc.changes}, state.New("m"),
				apply.Options{Executors: allKinds(f), Parallelism: tc.parallelism}, release)
			// All held: once want changes have started, that many are in flight together. The bound is shown
			// by the others waiting for a slot (not merely slow to start): any the bound let through would be
			// held in Execute instead.
			receive(t, f.started, tc.want)
			waitParked(t, len(tc.changes)-tc.want)
			release()
			res := wait()
			if err := res.Err(); err != nil {
				t.Fatalf("%s\nRun(...): %v", tc.reason, err)
			}
			if got := len(res.Applied); got != len(tc.changes) {
				t.Errorf("%s\nApplied %d changes, want %d", tc.reason, got, len(tc.changes))
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if diff := cmp.Diff(tc.want, f.maxRunning); diff != "" {
				t.Errorf("%s\nmost changes in flight at once: -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// waitParked polls the goroutines until n of Run's are waiting in runOne (for a slot) outside any Execute, and
// fails the test when that does not happen within a generous deadline.
func waitParked(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	buf := make([]byte, 1<<20)
	for {
		got := 0
		for _, g := range strings.Split(string(buf[:runtime.Stack(buf, true)]), "\n\n") {
			if strings.Contains(g, "apply.(*run).runOne(") && !strings.Contains(g, "(*fake).Execute(") &&
				strings.Contains(g, "[select") {
				got++
			}
		}
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d changes are waiting for a slot, want %d", got, n)
		}
		runtime.Gosched()
	}
}

func TestRunKeep(t *testing.T) {
	cases := map[string]struct {
		reason    string
		changes   []plan.Change
		executors func(*fake) map[plan.Kind]apply.Executor
		want      outcome
		wantCalls []string
	}{
		"KeepIsNotExecuted": {
			reason:    "A Keep action is shown in the plan but not executed, nor counted in the Result.",
			changes:   []plan.Change{peering(plan.Keep, pAB), route(plan.Create, rB), route(plan.Keep, rA, pAB)},
			want:      outcome{Applied: []string{rB}},
			wantCalls: []string{rB},
		},
		"KeepOfAKindWithoutExecutor": {
			reason:  "A Keep action needs no executor.",
			changes: []plan.Change{peering(plan.Keep, pAB), change(plan.Keep, plan.KindCorefile, cfA)},
			executors: func(*fake) map[plan.Kind]apply.Executor {
				return map[plan.Kind]apply.Executor{}
			},
		},
		"OnlyKeeps": {
			reason:  "A plan of Keep actions applies nothing and succeeds.",
			changes: []plan.Change{peering(plan.Keep, pAB), peering(plan.Keep, pAC)},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			f := &fake{}
			execs := allKinds(f)
			if tc.executors != nil {
				execs = tc.executors(f)
			}
			res := apply.Run(context.Background(), &plan.Plan{Mesh: "m", Changes: tc.changes}, state.New("m"),
				apply.Options{Executors: execs})
			if diff := cmp.Diff(tc.want, summarize(res)); diff != "" {
				t.Errorf("%s\nRun(...): -want, +got:\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(tc.wantCalls, f.calls()); diff != "" {
				t.Errorf("%s\nExecute calls: -want, +got:\n%s", tc.reason, diff)
			}
			if err := res.Err(); err != nil {
				t.Errorf("%s\nResult.Err(): %v", tc.reason, err)
			}
		})
	}
}

func rec(rtb, cidr, pcx string) state.RouteRecord {
	return state.RouteRecord{Region: "us-west-2", VPCID: "vpc-a", RouteTableID: rtb, DestinationCIDR: cidr, PeeringID: pcx}
}

func TestRunRecord(t *testing.T) {
	addRoute := func(r state.RouteRecord) func(*state.State) { return func(st *state.State) { st.AddRoute(r) } }
	manyRoutes := func(n int) ([]plan.Change, map[string]func(*state.State), []state.RouteRecord) {
		var changes []plan.Change
		records := map[string]func(*state.State){}
		var want []state.RouteRecord
		for i := range n {
			cidr := fmt.Sprintf("10.%d.0.0/16", i)
			addr := plan.RouteAddress("a", "rtb-a", cidr)
			changes = append(changes, route(plan.Create, addr))
			records[addr] = addRoute(rec("rtb-a", cidr, "pcx-1"))
			want = append(want, rec("rtb-a", cidr, "pcx-1"))
		}
		sort.Slice(want, func(i, j int) bool { return want[i].DestinationCIDR < want[j].DestinationCIDR })
		return changes, records, want
	}
	many, manyRecords, manyWant := manyRoutes(12)

	cases := map[string]struct {
		reason  string
		routes  []state.RouteRecord // in the state before Run
		fix     *plan.Plan          // Record and Forget
		changes []plan.Change
		records map[string]func(*state.State)
		fail    map[string]error
		want    []state.RouteRecord
	}{
		"SuccessfulChangesRecord": {
			reason:  "Each successful change's Record writes the state; the state writes the routes sorted.",
			changes: []plan.Change{route(plan.Create, rB), route(plan.Create, rA), route(plan.Delete, rC)},
			routes:  []state.RouteRecord{rec("rtb-c", "10.1.0.0/16", "pcx-2")},
			records: map[string]func(*state.State){
				rA: addRoute(rec("rtb-a", "10.2.0.0/16", "pcx-1")),
				rB: addRoute(rec("rtb-b", "10.1.0.0/16", "pcx-1")),
				rC: func(st *state.State) { st.RemoveRoute("rtb-c", "10.1.0.0/16") },
			},
			want: []state.RouteRecord{rec("rtb-a", "10.2.0.0/16", "pcx-1"), rec("rtb-b", "10.1.0.0/16", "pcx-1")},
		},
		"FailedChangesKeepTheirRecord": {
			reason: "The Record an executor returns together with its error is kept: it records what was done " +
				"before the failure. A skipped change (never executed) records nothing.",
			changes: []plan.Change{route(plan.Create, rA), peering(plan.Create, pBC), route(plan.Create, rB, pBC)},
			records: map[string]func(*state.State){
				rA:  addRoute(rec("rtb-a", "10.2.0.0/16", "pcx-1")),
				pBC: addRoute(rec("rtb-x", "10.9.0.0/16", "pcx-9")),
				rB:  addRoute(rec("rtb-b", "10.1.0.0/16", "pcx-9")),
			},
			fail: map[string]error{pBC: errBoom},
			want: []state.RouteRecord{rec("rtb-a", "10.2.0.0/16", "pcx-1"), rec("rtb-x", "10.9.0.0/16", "pcx-9")},
		},
		"ChangesWithoutRecord": {
			reason:  "A change whose Outcome has no Record leaves the state as it was.",
			changes: []plan.Change{route(plan.Create, rA)},
			routes:  []state.RouteRecord{rec("rtb-c", "10.1.0.0/16", "pcx-2")},
			want:    []state.RouteRecord{rec("rtb-c", "10.1.0.0/16", "pcx-2")},
		},
		"FixStateFirst": {
			reason: "The plan's Record and Forget are applied (even with no change to run), Forget dropping a " +
				"stale record and Record adding an unrecorded route.",
			routes: []state.RouteRecord{rec("rtb-c", "10.1.0.0/16", "pcx-old"), rec("rtb-b", "10.1.0.0/16", "pcx-1")},
			fix: &plan.Plan{
				Forget: []state.RouteRecord{rec("rtb-c", "10.1.0.0/16", "pcx-old")},
				Record: []state.RouteRecord{rec("rtb-a", "10.2.0.0/16", "pcx-1")},
			},
			want: []state.RouteRecord{rec("rtb-a", "10.2.0.0/16", "pcx-1"), rec("rtb-b", "10.1.0.0/16", "pcx-1")},
		},
		"ChangesRecordAfterFixState": {
			reason: "The fixes are applied before the changes run, so a change's own record of the same route " +
				"wins, and a change can remove what the plan recorded.",
			fix: &plan.Plan{
				Record: []state.RouteRecord{rec("rtb-a", "10.2.0.0/16", "pcx-plan"), rec("rtb-c", "10.1.0.0/16", "pcx-2")},
			},
			changes: []plan.Change{route(plan.Update, rA), route(plan.Delete, rC)},
			records: map[string]func(*state.State){
				rA: addRoute(rec("rtb-a", "10.2.0.0/16", "pcx-change")),
				rC: func(st *state.State) { st.RemoveRoute("rtb-c", "10.1.0.0/16") },
			},
			want: []state.RouteRecord{rec("rtb-a", "10.2.0.0/16", "pcx-change")},
		},
		"ConcurrentRecords": {
			reason:  "Records of changes running in parallel are all kept (and, under -race, do not race).",
			changes: many,
			records: manyRecords,
			want:    manyWant,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			st := state.New("m")
			st.Routes = append(st.Routes, tc.routes...)
			p := &plan.Plan{Mesh: "m", Changes: tc.changes}
			if tc.fix != nil {
				p.Record, p.Forget = tc.fix.Record, tc.fix.Forget
			}
			f := &fake{record: tc.records, fail: tc.fail}
			apply.Run(context.Background(), p, st, apply.Options{Executors: allKinds(f)})
			st.SortRoutes() // as writing the state does (state.Encode)
			if diff := cmp.Diff(tc.want, st.Routes); diff != "" {
				t.Errorf("%s\nstate routes: -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

func member(name, region string) model.Member {
	return model.Member{Name: name, Region: region, VPCID: "vpc-" + name}
}

func TestRunMembers(t *testing.T) {
	before := func() *state.State {
		st := state.New("old-mesh-name")
		st.Members = map[string]model.Member{
			"a":   member("a", "us-west-1"),
			"b":   member("b", "us-west-2"),
			"old": member("old", "us-east-1"),
		}
		st.Corefiles = map[string][]string{"a": {"a.mesh"}, "old": {"old.mesh"}, "gone": {"gone.mesh"}}
		return st
	}
	next := map[string]model.Member{
		"a": member("a", "eu-west-1"), // changed since the last apply
		"b": member("b", "us-west-2"),
		"c": member("c", "us-east-2"),
	}
	cases := map[string]struct {
		reason        string
		members       map[string]model.Member
		changes       []plan.Change
		fail          map[string]error
		withheld      int
		interrupted   bool // Run with a cancelled context
		wantMembers   map[string]model.Member
		wantCorefiles map[string][]string
	}{
		"Clean": {
			reason:      "A clean run replaces the members, and drops the Corefile records of clusters no longer members.",
			members:     next,
			changes:     []plan.Change{peering(plan.Delete, "peering[a:old]"), peering(plan.Create, pAC)},
			wantMembers: next,
			wantCorefiles: map[string][]string{
				"a": {"a.mesh"},
			},
		},
		"Withheld": {
			reason: "Changes withheld by a policy are not done: former members stay (and their Corefile records), " +
				"the new members are stored as planned.",
			members:  next,
			changes:  []plan.Change{peering(plan.Create, pAC)},
			withheld: 1,
			wantMembers: map[string]model.Member{
				"a":   member("a", "eu-west-1"),
				"b":   member("b", "us-west-2"),
				"c":   member("c", "us-east-2"),
				"old": member("old", "us-east-1"),
			},
			wantCorefiles: map[string][]string{"a": {"a.mesh"}, "old": {"old.mesh"}},
		},
		"Failure": {
			reason:   "After a failure the former members stay: their objects may still be there.",
			members:  next,
			changes:  []plan.Change{peering(plan.Delete, "peering[a:old]"), peering(plan.Create, pAC)},
			fail:     map[string]error{"peering[a:old]": errBoom},
			withheld: 0,
			wantMembers: map[string]model.Member{
				"a":   member("a", "eu-west-1"),
				"b":   member("b", "us-west-2"),
				"c":   member("c", "us-east-2"),
				"old": member("old", "us-east-1"),
			},
			wantCorefiles: map[string][]string{"a": {"a.mesh"}, "old": {"old.mesh"}},
		},
		"Interrupted": {
			reason:      "Changes skipped (here: all, by an interrupted apply) leave the run unclean as well.",
			members:     next,
			changes:     []plan.Change{change(plan.Delete, plan.KindCorefile, "corefile[old]")},
			interrupted: true,
			wantMembers: map[string]model.Member{
				"a":   member("a", "eu-west-1"),
				"b":   member("b", "us-west-2"),
				"c":   member("c", "us-east-2"),
				"old": member("old", "us-east-1"),
			},
			wantCorefiles: map[string][]string{"a": {"a.mesh"}, "old": {"old.mesh"}},
		},
		"CleanDestroy": {
			reason:        "A clean destroy (no members) forgets every member and every Corefile record.",
			changes:       []plan.Change{peering(plan.Delete, pAB)},
			wantMembers:   map[string]model.Member{},
			wantCorefiles: map[string][]string{},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			st := before()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.interrupted {
				cancel()
			}
			f := &fake{fail: tc.fail}
			p := &plan.Plan{Mesh: "m", Members: tc.members, Changes: tc.changes}
			res := apply.Run(ctx, p, st, apply.Options{Executors: allKinds(f), Withheld: tc.withheld})
			if tc.interrupted && (len(res.Skipped) != len(tc.changes) || len(res.Failed) != 0) {
				t.Fatalf("%s\nRun with a cancelled context: %+v, want every change skipped", tc.reason, res)
			}
			if diff := cmp.Diff(tc.wantMembers, st.Members); diff != "" {
				t.Errorf("%s\nstate members: -want, +got:\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(tc.wantCorefiles, st.Corefiles); diff != "" {
				t.Errorf("%s\nstate Corefiles: -want, +got:\n%s", tc.reason, diff)
			}
			if st.Mesh != "m" {
				t.Errorf("%s\nstate mesh = %q, want the plan's %q", tc.reason, st.Mesh, "m")
			}
		})
	}
}

// durations stands for the time a change took, which a test cannot know.
var durations = regexp.MustCompile(`after [0-9hm.µn]*s`)

func TestRunProgress(t *testing.T) {
	cases := map[string]struct {
		reason  string
		changes []plan.Change
		ids     map[string]string
		fail    map[string]error
		nilSink bool
		want    map[string][]string // lines by the address they name, in order
	}{
		"EachAction": {
			reason: "Every change executed has a started and a finished line naming it, worded by its action; " +
				"the ID is shown when there is one.",
			changes: []plan.Change{
				peering(plan.Create, pAB), route(plan.Update, rA), route(plan.Delete, rB), peering(plan.Adopt, pAC),
				peering(plan.Keep, pBC),
			},
			ids: map[string]string{pAB: "pcx-1"},
			want: map[string][]string{
				pAB: {pAB + ": creating...", pAB + ": creation complete after <d> [id=pcx-1]"},
				rA:  {rA + ": modifying...", rA + ": modification complete after <d>"},
				rB:  {rB + ": destroying...", rB + ": destruction complete after <d>"},
				pAC: {pAC + ": adopting...", pAC + ": adoption complete after <d>"},
			},
		},
		"Failure": {
			reason:  "A failed change's finished line says so, with the error; a skipped one has no line.",
			changes: []plan.Change{peering(plan.Create, pAB), route(plan.Create, rA, pAB)},
			fail:    map[string]error{pAB: errBoom},
			want: map[string][]string{
				pAB: {pAB + ": creating...", pAB + ": create failed after <d>: boom"},
			},
		},
		"NilProgress": {
			reason:  "Without a Progress func the lines are discarded.",
			changes: []plan.Change{peering(plan.Create, pAB)},
			nilSink: true,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			var mu sync.Mutex
			var got map[string][]string
			progress := func(msg string) {
				mu.Lock()
				defer mu.Unlock()
				if got == nil {
					got = map[string][]string{}
				}
				addr, _, _ := strings.Cut(msg, ": ")
				got[addr] = append(got[addr], durations.ReplaceAllString(msg, "after <d>"))
			}
			if tc.nilSink {
				progress = nil
			}
			f := &fake{ids: tc.ids, fail: tc.fail}
			apply.Run(context.Background(), &plan.Plan{Mesh: "m", Changes: tc.changes}, state.New("m"),
				apply.Options{Executors: allKinds(f), Progress: progress})
			mu.Lock()
			defer mu.Unlock()
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\nprogress lines: -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}
