package daemon

import (
	"context"
	"errors"
	"slices"

	"go.uber.org/zap"

	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/spec"
	"github.com/meshd-io/meshd/internal/state"
)

// BackgroundEngine is a ScopedEngine that can observe AWS outside a pass into the observation its passes
// plan from (engine.Engine.ObserveAWS).
type BackgroundEngine interface {
	ObserveAWS(ctx context.Context, m *spec.Mesh, st *state.State) (model.ObserveReport, error)
}

// plannedFor is the spec and state a pass planned.
type plannedFor struct {
	m  *spec.Mesh
	st *state.State
}

// errNothingPlanned: no pass has planned yet, so there is nothing to observe AWS for in the background.
var errNothingPlanned = errors.New("no pass has planned yet")

// ObserveAWS observes AWS in the background (Controller.Observe) for the spec and state the last pass
// planned, without the state lock: it only reads, and the pass that plans from it takes the lock. A replica
// that is not the leader observes nothing. An error (AWS not observed, no engine that can, no pass yet)
// makes the Controller ask for a full pass instead, which observes AWS itself.
func (r *Reconciler) ObserveAWS(ctx context.Context) error {
	if r.IsLeader != nil && !r.IsLeader() {
		return nil
	}
	be, ok := r.Engine.(BackgroundEngine)
	if !ok {
		return errors.New("this engine cannot observe AWS in the background")
	}
	last := r.planned.Load()
	if last == nil {
		return errNothingPlanned
	}
	rep, err := be.ObserveAWS(ctx, last.m, last.st)
	if err != nil {
		r.Metrics.Add(MetricErrors, Labels{"kind": "observe"}, 1)
		r.Log.Warn("AWS could not be observed in the background: a full pass follows", zap.Error(err))
		return err
	}
	r.Log.Debug("AWS observed in the background", zap.Strings("kube", rep.Kube))
	return nil
}

// changesAWS reports whether any of the changes is to AWS.
func changesAWS(changes []plan.Change) bool {
	return slices.ContainsFunc(changes, func(ch plan.Change) bool {
		info, _ := plan.Lookup(ch.Kind)
		return info.Provider == plan.ProviderAWS
	})
}
