// Package apply executes a plan: changes run in dependency order, independent ones in parallel (bounded),
// values known only after apply (a new peering's ID) are handed to the changes that wait for them, and the
// state records what meshd now owns. It knows no kind: what a change records in the state is its
// executor's to say (Outcome.Record).
//
// A failed change does not stop the others: what depends on it is skipped, everything else still runs, so one
// broken route table cannot keep the rest of the mesh from converging. The caller writes the state afterwards,
// failure or not, so that what did succeed is remembered.
package apply

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/state"
)

// Known looks up a value produced by an earlier change of the same apply: the ID of the object created at an
// address.
type Known func(address string) (string, bool)

// Executor carries out changes of the kinds it is registered for.
type Executor interface {
	Execute(ctx context.Context, ch plan.Change, known Known) (Outcome, error)
}

// Outcome is what a change leaves behind.
type Outcome struct {
	// ID is the object's ID (a new peering's, a load balancer's addresses), for the changes that wait on it.
	// It is kept only when the change succeeded.
	ID string
	// Record, when set, writes into the state what cannot be observed later (a route meshd made, the
	// Corefile zones it owns). Run calls it under its lock, so it needs no locking of its own. It is called
	// also when Execute returns it together with an error: an executor that did part of its work before
	// failing (the Corefile written, its backup not deleted) records that part, or meshd would forget what
	// it owns.
	Record func(*state.State)
}

// WithID is the Outcome of a change that records nothing in the state: an executor's Execute can end with
// return apply.WithID(id, err).
func WithID(id string, err error) (Outcome, error) { return Outcome{ID: id}, err }

// Options configure Run.
type Options struct {
	// Executors by resource kind. A change of a kind without an executor fails.
	Executors map[plan.Kind]Executor
	// Parallelism bounds the changes in flight. Default 10 (as terraform apply).
	Parallelism int
	// Progress receives one line per started and finished change (from several goroutines at once: it must
	// be safe for concurrent use); nil discards them.
	Progress func(msg string)
	// Withheld counts the changes a policy took out of the plan before it came here (the daemon's upsert-only
	// policy withholds deletions). They are not done, so the former members they belong to stay in the state.
	Withheld int
}

// Result says what happened to each change.
type Result struct {
	Applied []string         // addresses, in completion order
	Failed  map[string]error // by address
	Skipped map[string]string
}

// Err summarises the failures, or returns nil when every change was applied.
func (r *Result) Err() error {
	if len(r.Failed) == 0 && len(r.Skipped) == 0 {
		return nil
	}
	var lines []string
	for _, addr := range sortedKeys(r.Failed) {
		lines = append(lines, fmt.Sprintf("%s: %v", addr, r.Failed[addr]))
	}
	for _, addr := range sortedKeys(r.Skipped) {
		lines = append(lines, fmt.Sprintf("%s: skipped: %s", addr, r.Skipped[addr]))
	}
	return fmt.Errorf("%d change(s) failed, %d skipped:\n  %s", len(r.Failed), len(r.Skipped), strings.Join(lines, "\n  "))
}

// Run applies p and updates st in memory. It returns when every change has finished, failed or been skipped;
// ctx cancellation stops new changes from starting (changes in flight finish or fail by themselves).
func Run(ctx context.Context, p *plan.Plan, st *state.State, opts Options) *Result {
	if opts.Parallelism <= 0 {
		opts.Parallelism = 10
	}
	r := &run{
		opts:    opts,
		st:      st,
		known:   map[string]string{},
		done:    map[string]chan struct{}{},
		outcome: map[string]error{},
		result:  &Result{Failed: map[string]error{}, Skipped: map[string]string{}},
		sem:     make(chan struct{}, opts.Parallelism),
	}
	p.FixState(st)

	var changes []plan.Change
	for _, ch := range p.Changes {
		if ch.Action.IsChange() {
			changes = append(changes, ch)
			r.done[ch.Address] = make(chan struct{})
		}
	}
	var wg sync.WaitGroup
	for _, ch := range changes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer close(r.done[ch.Address])
			r.runOne(ctx, ch)
		}()
	}
	wg.Wait()

	r.finish(p)
	return r.result
}

type run struct {
	opts Options
	st   *state.State
	sem  chan struct{}

	mu      sync.Mutex
	known   map[string]string
	done    map[string]chan struct{}
	outcome map[string]error
	result  *Result
}

func (r *run) runOne(ctx context.Context, ch plan.Change) {
	// Wait for every dependency that is part of this apply; one that failed or was skipped skips this one.
	for _, dep := range ch.DependsOn {
		done, ok := r.done[dep]
		if !ok {
			continue
		}
		select {
		case <-done:
		case <-ctx.Done():
			r.skip(ch, "apply was interrupted")
			return
		}
		r.mu.Lock()
		err, finished := r.outcome[dep]
		r.mu.Unlock()
		if !finished || err != nil {
			r.skip(ch, fmt.Sprintf("depends on %s, which did not succeed", dep))
			return
		}
	}
	select {
	case r.sem <- struct{}{}:
	case <-ctx.Done():
		r.skip(ch, "apply was interrupted")
		return
	}
	defer func() { <-r.sem }()
	if ctx.Err() != nil {
		r.skip(ch, "apply was interrupted")
		return
	}

	exec, ok := r.opts.Executors[ch.Kind]
	if !ok {
		err := fmt.Errorf("no executor for %s changes", ch.Kind)
		r.progress("%s: %s failed: %v", ch.Address, ch.Action.Verb(), err)
		r.fail(ch, err, nil)
		return
	}
	r.progress("%s: %s...", ch.Address, ch.Action.Progressive())
	start := time.Now()
	out, err := exec.Execute(ctx, ch, r.lookup)
	if err != nil {
		r.progress("%s: %s failed after %s: %v", ch.Address, ch.Action.Verb(), since(start), err)
		r.fail(ch, err, out.Record)
		return
	}
	suffix := ""
	if out.ID != "" {
		suffix = fmt.Sprintf(" [id=%s]", out.ID)
	}
	r.progress("%s: %s complete after %s%s", ch.Address, ch.Action.Noun(), since(start), suffix)

	r.mu.Lock()
	defer r.mu.Unlock()
	if out.ID != "" {
		r.known[ch.Address] = out.ID
	}
	r.outcome[ch.Address] = nil
	r.result.Applied = append(r.result.Applied, ch.Address)
	if out.Record != nil {
		out.Record(r.st)
	}
}

func (r *run) lookup(address string) (string, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	id, ok := r.known[address]
	return id, ok
}

// fail records a failed change, and what its executor recorded of the work it did before failing.
func (r *run) fail(ch plan.Change, err error, record func(*state.State)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.outcome[ch.Address] = err
	r.result.Failed[ch.Address] = err
	if record != nil {
		record(r.st)
	}
}

func (r *run) skip(ch plan.Change, why string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.outcome[ch.Address] = errors.New(why)
	r.result.Skipped[ch.Address] = why
}

// finish remembers the members, so that the next plan can clean up after a cluster that leaves the spec.
// While anything failed, former members are kept as well: their objects may still be there.
func (r *run) finish(p *plan.Plan) {
	r.st.Mesh = p.Mesh
	// Changes a policy withheld (upsert-only) are not done either: the former members they belong to must
	// stay known, or their objects would never be observed again.
	clean := len(r.result.Failed) == 0 && len(r.result.Skipped) == 0 && r.opts.Withheld == 0
	members := make(map[string]plan.Member, len(p.Members))
	for name, m := range p.Members {
		members[name] = m
	}
	for name, m := range r.st.Members {
		now, ok := members[name]
		if !ok && (!clean || slices.Contains(p.Retain, name)) {
			members[name] = m
		}
		// A member turned external keeps its AWS record until a clean apply: only that record finds what
		// meshd made in its VPC.
		if ok && now.External && !m.External && m.VPCID != "" && !clean {
			members[name] = m
		}
	}
	r.st.SetMembers(members)
}

func (r *run) progress(format string, args ...any) {
	if r.opts.Progress != nil {
		r.opts.Progress(fmt.Sprintf(format, args...))
	}
}

func since(t time.Time) string { return time.Since(t).Round(time.Millisecond * 100).String() }

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
