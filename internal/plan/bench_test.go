package plan_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/meshd-io/meshd/internal/apply"
	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/plan/plantest"
	"github.com/meshd-io/meshd/internal/state"
)

// BenchmarkPlan measures Compute for full meshes of N clusters with three route tables each (100 clusters:
// 4,950 peerings, 29,700 routes, 9,900 rules), against an empty world (the first plan) and a converged one
// (what the daemon computes every pass). Target: under 1 s and 300 MB allocated for 100 clusters.
func BenchmarkPlan(b *testing.B) {
	for _, n := range []int{10, 50, 100} {
		w, members := plantest.NewWorld("bench", plantest.Grid(n, 3))
		empty := plan.Input{Mesh: "bench", Members: members, Observed: w.Observed, State: state.New("bench")}
		b.Run(fmt.Sprintf("clusters=%d/world=empty", n), func(b *testing.B) {
			b.ReportAllocs()
			var p *plan.Plan
			for i := 0; i < b.N; i++ {
				p = plan.Compute(empty)
			}
			b.ReportMetric(float64(len(p.Changes)), "changes")
		})

		// Converge the world once, then plan against it.
		w2, members2 := plantest.NewWorld("bench", plantest.Grid(n, 3))
		st := state.New("bench")
		in := plan.Input{Mesh: "bench", Members: members2, Observed: w2.Observed, State: st}
		if err := apply.Run(context.Background(), plan.Compute(in), st, apply.Options{Executors: w2.Executors()}).Err(); err != nil {
			b.Fatal(err)
		}
		b.Run(fmt.Sprintf("clusters=%d/world=converged", n), func(b *testing.B) {
			b.ReportAllocs()
			var p *plan.Plan
			for i := 0; i < b.N; i++ {
				p = plan.Compute(in)
			}
			if p.HasChanges() {
				b.Fatalf("converged world plans %+v", p.Summary())
			}
		})
	}
}
