package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/hashicorp/hcl/v2"
	"go.uber.org/zap"

	"github.com/meshd-io/meshd/internal/apply"
	"github.com/meshd-io/meshd/internal/errclass"
	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/spec"
	"github.com/meshd-io/meshd/internal/state"
)

// Engine is what a pass needs from the engine: the same plan and apply meshctl runs.
type Engine interface {
	Plan(ctx context.Context, m *spec.Mesh, st *state.State, destroy bool) (*plan.Plan, hcl.Diagnostics, error)
	Apply(ctx context.Context, p *plan.Plan, st *state.State, filter func(plan.Change) bool) *apply.Result
}

// EventRecorder records a correction on the object it touched (a Kubernetes Event); optional.
type EventRecorder interface {
	Corrected(ctx context.Context, ch plan.Change, err error)
}

// Reconciler runs one pass: observe, plan, apply, record.
type Reconciler struct {
	Engine  Engine
	Backend state.Backend
	Spec    *SpecSource
	Log     *zap.Logger
	Metrics *Metrics
	Events  EventRecorder

	// DryRun observes and reports drift but changes nothing.
	DryRun bool
	// UpsertOnly creates and updates but never deletes.
	UpsertOnly bool
	// IsLeader, when set, gates passes: only the leader plans and writes.
	IsLeader func() bool
	// ShutdownGrace is how long a pass in progress may go on after ctx is cancelled (SIGTERM), so that a
	// change under way finishes and the state records it; after it the pass is abandoned.
	ShutdownGrace time.Duration
	// Abandon, when done, cancels the pass under way at once, without grace (leadership was lost).
	Abandon context.Context

	repeats repeats
}

// Pass runs one reconcile pass.
func (r *Reconciler) Pass(ctx context.Context, why string) (err error) {
	if r.IsLeader != nil && !r.IsLeader() {
		r.Metrics.Add(MetricPasses, Labels{"result": "skipped"}, 1)
		return nil
	}
	m := r.Spec.Current()
	if m == nil {
		r.Metrics.Add(MetricErrors, Labels{"kind": "spec"}, 1)
		return errors.New("no valid spec loaded yet")
	}
	start := time.Now()
	log := r.Log.With(zap.String("trigger", why), zap.String("mesh", m.Name))
	defer func() {
		r.Metrics.Observe(MetricPassDuration, nil, time.Since(start).Seconds())
		result := "ok"
		if err != nil {
			result = "error"
			log.Warn("pass failed", zap.Error(err), zap.Duration("duration", time.Since(start)))
		} else {
			r.Metrics.Set(MetricLastSuccess, nil, float64(time.Now().Unix()))
		}
		r.Metrics.Add(MetricPasses, Labels{"result": result}, 1)
	}()

	// A pass started before SIGTERM may finish what it is doing, for a while.
	passCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		if r.ShutdownGrace <= 0 {
			cancel()
			return
		}
		time.AfterFunc(r.ShutdownGrace, cancel)
	})
	defer stop()
	if r.Abandon != nil {
		defer context.AfterFunc(r.Abandon, cancel)()
	}

	lockCtx, lockCancel := context.WithTimeout(passCtx, 30*time.Second)
	unlock, err := r.Backend.Lock(lockCtx)
	lockCancel()
	if err != nil {
		r.Metrics.Add(MetricErrors, Labels{"kind": "state"}, 1)
		return fmt.Errorf("%w: %v", ErrTransient, err)
	}
	defer unlock()
	// A lock that can be lost while held (the Secret's Lease, not renewed in time): another replica may
	// take it and act, so this pass stops at once, as when leadership is lost.
	var lockLost <-chan struct{}
	if l, ok := r.Backend.(state.LosableLock); ok {
		lockLost = l.Lost()
		go func() {
			select {
			case <-lockLost:
				log.Warn("the state lock was lost: abandoning the pass")
				cancel()
			case <-passCtx.Done():
			}
		}()
	}
	st, err := r.Backend.Read(passCtx)
	if err != nil {
		r.Metrics.Add(MetricErrors, Labels{"kind": "state"}, 1)
		return err
	}
	if st.Mesh != "" && st.Mesh != m.Name {
		r.Metrics.Add(MetricErrors, Labels{"kind": "state"}, 1)
		return fmt.Errorf("the state belongs to mesh %q, not %q", st.Mesh, m.Name)
	}

	p, diags, err := r.Engine.Plan(passCtx, m, st, false)
	if err != nil {
		r.Metrics.Add(MetricErrors, Labels{"kind": "observe"}, 1)
		return classify(err)
	}
	if diags.HasErrors() {
		r.Metrics.Add(MetricErrors, Labels{"kind": "spec"}, 1)
		for _, d := range FormatDiagnostics(diags) {
			log.Error("spec does not match the world", zap.String("diagnostic", d))
		}
		return errors.New("the spec has errors against the observed world (see log)")
	}
	for _, d := range FormatDiagnostics(diags) {
		log.Warn("diagnostic", zap.String("diagnostic", d))
	}
	for _, w := range p.Warnings {
		log.Warn(w)
	}
	// A member cluster that could not be observed had its DNS left out of the plan: the rest is corrected
	// below, and the pass ends as a transient failure so that it is retried soon and not counted a success.
	var partial error
	if len(p.Unobserved) > 0 {
		r.Metrics.Add(MetricErrors, Labels{"kind": "observe"}, 1)
		partial = fmt.Errorf("%w: the Kubernetes side of %s could not be observed; its DNS was left as it is",
			ErrTransient, strings.Join(p.Unobserved, ", "))
	}
	for _, c := range p.Conflicts {
		r.Metrics.Add(MetricErrors, Labels{"kind": "conflict"}, 1)
		log.Warn("conflict: left alone", zap.String("address", c.Address), zap.String("summary", c.Summary))
	}

	var pending []plan.Change
	detected := map[plan.Kind]int{}
	for _, ch := range p.Changes {
		if !ch.Action.IsChange() || (r.UpsertOnly && ch.Action == plan.Delete) {
			continue
		}
		pending = append(pending, ch)
		detected[ch.Kind]++
		log.Info("drift", zap.String("address", ch.Address), zap.String("action", ch.Action.Verb()), zap.String("reason", ch.Reason), zap.Bool("dry_run", r.DryRun))
	}
	r.Metrics.Reset(MetricDetected)
	for kind, n := range detected {
		r.Metrics.Set(MetricDetected, Labels{"kind": string(kind)}, float64(n))
	}
	if r.DryRun {
		return partial
	}
	if len(pending) == 0 && len(p.Record)+len(p.Forget) == 0 {
		log.Debug("no drift", zap.Duration("duration", time.Since(start)))
		return partial
	}

	select {
	case <-lockLost:
		r.Metrics.Add(MetricErrors, Labels{"kind": "state"}, 1)
		return fmt.Errorf("%w: the state lock was lost before applying; nothing changed", ErrTransient)
	default:
	}
	filter := func(ch plan.Change) bool { return !(r.UpsertOnly && ch.Action == plan.Delete) }
	res := r.Engine.Apply(passCtx, p, st, filter)
	// The state is written whatever happened, with a context of its own: what succeeded must be remembered.
	writeCtx, writeCancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer writeCancel()
	if werr := r.Backend.Write(writeCtx, st); werr != nil {
		r.Metrics.Add(MetricErrors, Labels{"kind": "state"}, 1)
		return fmt.Errorf("writing the state: %w", werr)
	}

	applied := map[string]bool{}
	for _, addr := range res.Applied {
		applied[addr] = true
	}
	for _, ch := range pending {
		cerr := res.Failed[ch.Address]
		if applied[ch.Address] {
			r.Metrics.Add(MetricCorrected, Labels{"kind": string(ch.Kind), "action": ch.Action.Verb()}, 1)
			log.Info("corrected", zap.String("address", ch.Address), zap.String("action", ch.Action.Verb()), zap.String("reason", ch.Reason))
			if n, report := r.repeats.corrected(ch.Address, time.Now()); report {
				r.Metrics.Add(MetricRepeatedDrift, Labels{"kind": string(ch.Kind)}, 1)
				log.Warn("drift keeps coming back: something else is changing this object, and meshd keeps correcting it",
					zap.String("address", ch.Address), zap.Int("corrections", n), zap.Duration("within", repeatWindow),
					zap.String("hint", repeatHint(ch.Kind)))
			}
		} else if cerr != nil {
			r.Metrics.Add(MetricErrors, Labels{"kind": "apply"}, 1)
			log.Warn("correction failed", zap.String("address", ch.Address), zap.Error(cerr))
		}
		if r.Events != nil && (applied[ch.Address] || cerr != nil) {
			r.Events.Corrected(passCtx, ch, cerr)
		}
	}
	if err := res.Err(); err != nil {
		for _, ferr := range res.Failed {
			if isTransient(ferr) {
				return fmt.Errorf("%w: %v", ErrTransient, err)
			}
		}
		return err
	}
	return partial
}

// repeatHint says where to look for the other writer.
func repeatHint(kind plan.Kind) string {
	switch kind {
	case plan.KindCorefile, plan.KindDNSService:
		return "the object's managedFields name the last writer: kubectl get -o yaml --show-managed-fields"
	default:
		return "AWS CloudTrail names who deleted or changed it"
	}
}

// classify marks errors worth a quick retry: throttling, timeouts, connection trouble.
func classify(err error) error {
	if isTransient(err) {
		return fmt.Errorf("%w: %v", ErrTransient, err)
	}
	return err
}

// isTransient: the providers mark the API errors that are (errclass); timeouts and connection trouble are
// recognised here, wherever they came from.
func isTransient(err error) bool {
	var netErr net.Error
	return errclass.IsTransient(err) || errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &netErr) && netErr.Timeout())
}
