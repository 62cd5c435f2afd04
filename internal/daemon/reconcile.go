package daemon

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hashicorp/hcl/v2"
	"go.uber.org/zap"

	"github.com/meshd-io/meshd/internal/apply"
	"github.com/meshd-io/meshd/internal/errclass"
	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/spec"
	"github.com/meshd-io/meshd/internal/state"
)

// Engine is what a pass needs from the engine: the same plan and apply meshctl runs.
type Engine interface {
	Plan(ctx context.Context, m *spec.Mesh, st *state.State, destroy bool) (*plan.Plan, hcl.Diagnostics, error)
	// Apply applies p; withheld counts the changes a policy took out of it (see apply.Options.Withheld).
	Apply(ctx context.Context, p *plan.Plan, st *state.State, withheld int) *apply.Result
}

// ScopedEngine is an Engine that can plan from part of the last observation (engine.Engine.PlanScoped); a
// pass uses it when the engine has it.
type ScopedEngine interface {
	PlanScoped(ctx context.Context, m *spec.Mesh, st *state.State, scope model.ObserveScope) (*plan.Plan, model.ObserveReport, hcl.Diagnostics, error)
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
	// UpsertOnly creates and updates but never deletes (the UpsertOnly policy).
	UpsertOnly bool
	// IsLeader, when set, gates passes: only the leader plans and writes.
	IsLeader func() bool
	// ShutdownGrace is how long a pass in progress may go on after ctx is cancelled (SIGTERM), so that a
	// change under way finishes and the state records it; after it the pass is abandoned.
	ShutdownGrace time.Duration
	// Abandon, when done, cancels the pass under way at once, without grace (leadership was lost).
	Abandon context.Context
	// Planned, when set, receives each plan (RenewalTimer.Schedule).
	Planned func(*plan.Plan)
	// AWSInterval is how long a pass triggered by Kubernetes watch events may reuse the last AWS observation
	// (the timer's interval: AWS is observed on it). Zero: every pass observes AWS.
	AWSInterval time.Duration
	// FullObserve makes every pass observe everything, as before watch-triggered passes were scoped (for
	// comparison, and as a way out).
	FullObserve bool
	// MaxLockHold bounds how long a pass holds the state lock (meshd: --wait-timeout): the pass gives up what
	// it is doing in time to write the state before it. Zero: no bound.
	MaxLockHold time.Duration
	// AllowMassRemoval lets a spec remove all, or more than half, of the members the state records (meshd
	// --allow-mass-removal); without it such a spec is refused and the last good one stays enforced (admit).
	AllowMassRemoval bool
	// Enforcing, when set, is told each spec a pass starts enforcing (meshd restarts its watches for it).
	Enforcing func(*spec.Mesh)
	// AWSChanged, when set, is told when a pass applied changes to AWS (or tried to): the AWS observation
	// passes plan from no longer holds, and meshd observes AWS again in the background (ObserveSoon).
	AWSChanged func()

	repeats repeats
	// enforced is the spec the last pass accepted; refused is the hash of the spec on disk last refused, so
	// that a refusal is counted and logged once.
	enforced atomic.Pointer[spec.Mesh]
	refused  string
	paths    pathVerdicts
	// planned is the spec and state the last pass planned, which the background observation of AWS
	// (ObserveAWS) observes for.
	planned atomic.Pointer[plannedFor]
	// lastOK is when the last pass completed successfully, or was skipped by a replica that is not the
	// leader (standing by is its job), in Unix nanoseconds; 0: none yet.
	lastOK atomic.Int64
}

// LastSuccess is when the last pass completed successfully, or was skipped because this replica is not the
// leader; zero when none has yet. /readyz fails when it is too long ago (Server.StaleAfter).
func (r *Reconciler) LastSuccess() time.Time {
	if n := r.lastOK.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Time{}
}

// Pass runs one full reconcile pass: take the state lock, plan and report, apply and count.
func (r *Reconciler) Pass(ctx context.Context, why string) error {
	return r.PassFor(ctx, Reason{Why: why, Full: true})
}

// PassFor runs one pass for the reason given: a pass asked for only by Kubernetes watch events observes the
// clusters whose objects changed and reuses the rest of the last observation (see ScopedEngine).
func (r *Reconciler) PassFor(ctx context.Context, reason Reason) (err error) {
	why := reason.Why
	if r.IsLeader != nil && !r.IsLeader() {
		r.Metrics.Add(MetricPasses, Labels{"result": "skipped"}, 1)
		r.lastOK.Store(time.Now().UnixNano())
		return nil
	}
	m := r.Spec.Current()
	if m == nil {
		r.Metrics.Add(MetricErrors, Labels{"kind": "spec"}, 1)
		return errors.New("no valid spec loaded yet")
	}
	start := time.Now()
	log := r.Log.With(zap.String("trigger", why), zap.String("mesh", m.Name))
	defer func() { r.recordPass(log, start, err) }()

	passCtx, cancel := r.passContext(ctx)
	defer cancel()
	lock, err := r.lock(passCtx, cancel, log)
	if err != nil {
		return err
	}
	defer lock.unlock()
	// The pass works until a little before its lock-hold limit, and the state write has the rest.
	writeBy := time.Time{}
	if r.MaxLockHold > 0 {
		writeBy = time.Now().Add(r.MaxLockHold)
		var stop context.CancelFunc
		passCtx, stop = context.WithDeadline(passCtx, writeBy.Add(-writeReserve(r.MaxLockHold)))
		defer stop()
	}
	st, err := r.readState(passCtx, m)
	if err != nil {
		return r.orLockLost(lock, err)
	}
	// The spec is checked against the members the state records under the lock, so that what it removes is
	// what the plan would remove.
	if m, err = r.admit(log, m, st); err != nil {
		return err
	}

	p, stale, err := r.plan(passCtx, log, m, st, reason)
	if err != nil {
		// Losing the lock cancels the pass: say that, not "context canceled".
		return r.orLockLost(lock, err)
	}
	// Nothing changes st once the pass returns: each pass reads its own.
	defer r.planned.Store(&plannedFor{m: m, st: st})
	if r.Planned != nil {
		r.Planned(p)
	}
	r.reportPaths(log)
	withheld := 0
	if r.UpsertOnly {
		withheld = UpsertOnly(p)
	}
	partial := r.reportPlan(log, p)
	if partial == nil {
		partial = stale
	}
	pending := r.reportDrift(log, p)
	if r.DryRun {
		return partial
	}
	if len(pending) == 0 && !fixesState(p, st) {
		log.Debug("no drift", zap.Duration("duration", time.Since(start)))
		return partial
	}

	if lock.isLost() {
		return r.orLockLost(lock, nil)
	}
	if err := r.applyAndCount(ctx, passCtx, log, p, st, pending, withheld, writeBy, lock); err != nil {
		return err
	}
	return partial
}

// fixesState reports whether the plan's state fixes (Plan.FixState: the Record and Forget lists of every
// kind) would change st. A plan with nothing else to do is applied all the same when they would: a record
// left out is an object meshd would not find to delete once its block is removed. Asking FixState itself,
// rather than naming the lists here, keeps a kind added later from being missed.
func fixesState(p *plan.Plan, st *state.State) bool {
	before, err := state.Encode(st) // sorts st.Routes, as writing it does
	if err != nil {
		return true
	}
	var fixed state.State
	if err := json.Unmarshal(before, &fixed); err != nil {
		return true
	}
	p.FixState(&fixed)
	after, err := state.Encode(&fixed)
	return err != nil || !bytes.Equal(before, after)
}

// lockWait bounds how long a pass waits for the state lock.
const lockWait = 30 * time.Second

// PassBound is how long a pass can run when its calls end by their contexts: the wait for the state lock,
// the lock-hold limit, and a minute for what runs outside them (releasing the lock, the Events, a call slow
// to notice its cancellation). Zero when MaxLockHold is: nothing bounds a pass then. meshd's liveness
// (Controller.MaxPass) counts a pass running longer as stuck.
func (r *Reconciler) PassBound() time.Duration {
	if r.MaxLockHold <= 0 {
		return 0
	}
	return lockWait + r.MaxLockHold + time.Minute
}

// writeReserve is the part of the lock-hold limit kept for writing the state after apply.
func writeReserve(hold time.Duration) time.Duration { return min(5*time.Second, hold/5) }

// orLockLost returns the lost-lock error when the state lock was lost (which cancels whatever the pass was
// doing), else err.
func (r *Reconciler) orLockLost(lock heldLock, err error) error {
	if !lock.isLost() {
		return err
	}
	r.Metrics.Add(MetricErrors, Labels{"kind": "state"}, 1)
	return fmt.Errorf("%w: the state lock was lost before applying; nothing changed", ErrTransient)
}

// recordPass counts a finished pass: its duration and result, and the time of the last success.
func (r *Reconciler) recordPass(log *zap.Logger, start time.Time, err error) {
	r.Metrics.Observe(MetricPassDuration, nil, time.Since(start).Seconds())
	result := "ok"
	if err != nil {
		result = "error"
		log.Warn("pass failed", zap.Error(err), zap.Duration("duration", time.Since(start)))
	} else {
		now := time.Now()
		r.Metrics.Set(MetricLastSuccess, nil, float64(now.Unix()))
		r.lastOK.Store(now.UnixNano())
	}
	r.Metrics.Add(MetricPasses, Labels{"result": result}, 1)
}

// passContext is the context a pass works in. A pass started before SIGTERM (ctx cancelled) may finish what
// it is doing, for ShutdownGrace; losing leadership (Abandon) ends it at once. The returned func releases it.
func (r *Reconciler) passContext(ctx context.Context) (context.Context, context.CancelFunc) {
	passCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	stopGrace := context.AfterFunc(ctx, func() {
		if r.ShutdownGrace <= 0 {
			cancel()
			return
		}
		time.AfterFunc(r.ShutdownGrace, cancel)
	})
	stopAbandon := func() bool { return false }
	if r.Abandon != nil {
		stopAbandon = context.AfterFunc(r.Abandon, cancel)
	}
	return passCtx, func() {
		stopAbandon()
		stopGrace()
		cancel()
	}
}

// heldLock is the state lock a pass holds.
type heldLock struct {
	unlock func() error
	// lost is closed when the lock is no longer ours; nil for a lock that cannot be lost.
	lost <-chan struct{}
}

func (l heldLock) isLost() bool {
	select {
	case <-l.lost:
		return true
	default:
		return false
	}
}

// lock takes the state lock. A lock that can be lost while held (the Secret's Lease, not renewed in time)
// is watched: another replica may take it and act, so the pass is cancelled at once, as when leadership is
// lost.
func (r *Reconciler) lock(passCtx context.Context, cancel context.CancelFunc, log *zap.Logger) (heldLock, error) {
	lockCtx, lockCancel := context.WithTimeout(passCtx, lockWait)
	unlock, err := r.Backend.Lock(lockCtx)
	lockCancel()
	if err != nil {
		r.Metrics.Add(MetricErrors, Labels{"kind": "state"}, 1)
		return heldLock{}, fmt.Errorf("%w: %v", ErrTransient, err)
	}
	held := heldLock{unlock: unlock}
	if l, ok := r.Backend.(state.LosableLock); ok {
		held.lost = l.Lost()
		go func() {
			select {
			case <-held.lost:
				log.Warn("the state lock was lost: abandoning the pass")
				cancel()
			case <-passCtx.Done():
			}
		}()
	}
	return held, nil
}

// readState reads the state, refusing one that belongs to another mesh.
func (r *Reconciler) readState(ctx context.Context, m *spec.Mesh) (*state.State, error) {
	st, err := r.Backend.Read(ctx)
	if err != nil {
		r.Metrics.Add(MetricErrors, Labels{"kind": "state"}, 1)
		return nil, err
	}
	if st.Mesh != "" && st.Mesh != m.Name {
		r.Metrics.Add(MetricErrors, Labels{"kind": "state"}, 1)
		return nil, fmt.Errorf("the state belongs to mesh %q, not %q", st.Mesh, m.Name)
	}
	return st, nil
}

// plan observes and plans. Failing to observe is an error worth a quick retry when it is transient; a spec
// that does not match the world is logged, diagnostic by diagnostic, and stops the pass. With a
// ScopedEngine, a pass asked for by watch events only observes what they name, and an AWS that cannot be
// observed does not stop the Kubernetes corrections: they are planned from the last AWS observation, nothing
// changes in AWS, and stale says so (the pass then ends as a transient failure).
func (r *Reconciler) plan(ctx context.Context, log *zap.Logger, m *spec.Mesh, st *state.State, reason Reason) (p *plan.Plan, stale, err error) {
	var diags hcl.Diagnostics
	if se, ok := r.Engine.(ScopedEngine); ok {
		scope := model.ObserveScope{KeepLastKnown: true}
		if !reason.Full && !r.FullObserve {
			scope.Scoped, scope.Kube, scope.LoadBalancers, scope.AWSMaxAge = true, reason.Kube, reason.LoadBalancers, r.AWSInterval
		}
		var rep model.ObserveReport
		p, rep, diags, err = se.PlanScoped(ctx, m, st, scope)
		log.Debug("observed", zap.Bool("aws_fresh", rep.AWSFresh), zap.Duration("aws_age", rep.AWSAge), zap.Strings("kube", rep.Kube))
		if err == nil && rep.AWSError != nil {
			r.Metrics.Add(MetricErrors, Labels{"kind": "observe"}, 1)
			log.Warn("AWS could not be observed: Kubernetes is corrected from the last AWS observation, and nothing is changed in AWS",
				zap.Error(rep.AWSError), zap.Duration("aws_age", rep.AWSAge))
			stale = fmt.Errorf("%w: AWS could not be observed (%v); Kubernetes was corrected from the AWS observation of %s ago",
				ErrTransient, rep.AWSError, rep.AWSAge.Round(time.Second))
		}
	} else {
		p, diags, err = r.Engine.Plan(ctx, m, st, false)
	}
	if err != nil {
		r.Metrics.Add(MetricErrors, Labels{"kind": "observe"}, 1)
		return nil, nil, classify(err)
	}
	if diags.HasErrors() {
		r.Metrics.Add(MetricErrors, Labels{"kind": "spec"}, 1)
		for _, d := range FormatDiagnostics(diags) {
			log.Error("spec does not match the world", zap.String("diagnostic", d))
		}
		return nil, nil, errors.New("the spec has errors against the observed world (see log)")
	}
	for _, d := range FormatDiagnostics(diags) {
		log.Warn("diagnostic", zap.String("diagnostic", d))
	}
	return p, stale, nil
}

// reportPlan logs the plan's warnings and conflicts. It returns the error the pass ends with when a member
// cluster could not be observed: its DNS was left out of the plan, the rest is corrected, and the pass ends as
// a transient failure so that it is retried soon and not counted a success.
func (r *Reconciler) reportPlan(log *zap.Logger, p *plan.Plan) (partial error) {
	for _, w := range p.Warnings {
		log.Warn(w)
	}
	if len(p.Unobserved) > 0 {
		r.Metrics.Add(MetricErrors, Labels{"kind": "observe"}, 1)
		partial = fmt.Errorf("%w: the Kubernetes side of %s could not be observed; its DNS was left as it is",
			ErrTransient, strings.Join(p.Unobserved, ", "))
	}
	for _, c := range p.Conflicts {
		r.Metrics.Add(MetricErrors, Labels{"kind": "conflict"}, 1)
		log.Warn("conflict: left alone", zap.String("address", c.Address), zap.String("summary", c.Summary))
	}
	return partial
}

// reportDrift logs each change the plan makes and sets the detected gauge by kind; it returns those changes.
func (r *Reconciler) reportDrift(log *zap.Logger, p *plan.Plan) (pending []plan.Change) {
	detected := map[plan.Kind]int{}
	for _, ch := range p.Changes {
		if !ch.Action.IsChange() {
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
	return pending
}

// applyAndCount applies the plan, writes the state whatever happened, and counts and records the outcome of
// each pending change. Its error is apply's, transient when any failure is.
func (r *Reconciler) applyAndCount(ctx, passCtx context.Context, log *zap.Logger, p *plan.Plan, st *state.State, pending []plan.Change, withheld int, writeBy time.Time, lock heldLock) error {
	res := r.Engine.Apply(passCtx, p, st, withheld)
	if r.AWSChanged != nil && changesAWS(pending) {
		r.AWSChanged()
	}
	// Lost during the apply (which it cut short): another replica may hold the lock and write the state now,
	// so this one writes nothing more. What it made is found again by the next pass's observation.
	if lock.isLost() {
		r.Metrics.Add(MetricErrors, Labels{"kind": "state"}, 1)
		return fmt.Errorf("%w: the state lock was lost during the apply; the pass stopped and did not write the state", ErrTransient)
	}
	if err := r.writeState(ctx, st, writeBy); err != nil {
		return err
	}
	applied := map[string]bool{}
	for _, addr := range res.Applied {
		applied[addr] = true
	}
	for _, ch := range pending {
		cerr := res.Failed[ch.Address]
		switch {
		case applied[ch.Address]:
			r.countCorrected(log, ch)
		case cerr != nil:
			r.Metrics.Add(MetricErrors, Labels{"kind": "apply"}, 1)
			log.Warn("correction failed", zap.String("address", ch.Address), zap.Error(cerr))
		default:
			continue // skipped: nothing happened to record
		}
		if r.Events != nil {
			r.Events.Corrected(passCtx, ch, cerr)
		}
	}
	return applyError(res)
}

// writeState writes the state with a context of its own, even after SIGTERM: what succeeded must be
// remembered. by, when set, is the end of the pass's lock-hold limit.
func (r *Reconciler) writeState(ctx context.Context, st *state.State, by time.Time) error {
	writeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	if !by.IsZero() {
		var stop context.CancelFunc
		writeCtx, stop = context.WithDeadline(writeCtx, by)
		defer stop()
	}
	if err := r.Backend.Write(writeCtx, st); err != nil {
		r.Metrics.Add(MetricErrors, Labels{"kind": "state"}, 1)
		return fmt.Errorf("writing the state: %w", err)
	}
	return nil
}

// countCorrected counts and logs a correction, and says so when the same object keeps drifting back.
func (r *Reconciler) countCorrected(log *zap.Logger, ch plan.Change) {
	r.Metrics.Add(MetricCorrected, Labels{"kind": string(ch.Kind), "action": ch.Action.Verb()}, 1)
	log.Info("corrected", zap.String("address", ch.Address), zap.String("action", ch.Action.Verb()), zap.String("reason", ch.Reason))
	if n, report := r.repeats.corrected(ch.Address, time.Now()); report {
		r.Metrics.Add(MetricRepeatedDrift, Labels{"kind": string(ch.Kind)}, 1)
		log.Warn("drift keeps coming back: something else is changing this object, and meshd keeps correcting it",
			zap.String("address", ch.Address), zap.Int("corrections", n), zap.Duration("within", repeatWindow),
			zap.String("hint", plan.RepeatHint(ch.Kind)))
	}
}

// applyError is the pass's error for apply's failures: transient when any of them is, so that the pass is
// retried soon rather than at the next interval.
func applyError(res *apply.Result) error {
	err := res.Err()
	if err == nil {
		return nil
	}
	for _, ferr := range res.Failed {
		if isTransient(ferr) {
			return fmt.Errorf("%w: %v", ErrTransient, err)
		}
	}
	return err
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
