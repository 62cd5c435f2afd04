// Package engine ties the pieces into the two operations every front end needs: make a plan (observe, diff,
// check) and apply one (execute, record). meshctl runs each once; meshd runs them in a loop.
package engine

import (
	"context"

	"github.com/hashicorp/hcl/v2"

	"github.com/meshd-io/meshd/internal/apply"
	"github.com/meshd-io/meshd/internal/plan"
	awsprovider "github.com/meshd-io/meshd/internal/providers/aws"
	"github.com/meshd-io/meshd/internal/spec"
	"github.com/meshd-io/meshd/internal/state"
)

// Engine plans and applies one mesh.
type Engine struct {
	AWS         *awsprovider.Provider
	Parallelism int
	Progress    func(string)
}

// Plan observes AWS for the spec's clusters (and the state's former members) and computes the plan. Spec
// problems found against the observed world come back as diagnostics; failures to observe as an error.
func (e *Engine) Plan(ctx context.Context, m *spec.Mesh, st *state.State, destroy bool) (*plan.Plan, hcl.Diagnostics, error) {
	obs, diags, err := e.AWS.Observe(ctx, m, st.Members)
	if err != nil || diags.HasErrors() {
		return nil, diags, err
	}
	p := plan.Compute(plan.Input{
		Mesh: m.Name, SpecHash: m.Hash(), Adopt: m.Adopt, Members: obs.Members,
		Observed: obs.Observed, State: st, Destroy: destroy,
	})
	diags = append(diags, plan.Check(m, obs.Members, obs.Observed, p)...)
	return p, diags, nil
}

// Apply executes p against the world and records the outcome in st (in memory: the caller writes it).
func (e *Engine) Apply(ctx context.Context, p *plan.Plan, st *state.State, filter func(plan.Change) bool) *apply.Result {
	return apply.Run(ctx, p, st, apply.Options{
		Executors:   e.AWS.Executors(),
		Parallelism: e.Parallelism,
		Progress:    e.Progress,
		Filter:      filter,
	})
}
