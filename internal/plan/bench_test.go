package plan_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/meshd-io/meshd/internal/apply"
	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/plan/plantest"
	"github.com/meshd-io/meshd/internal/spec"
	"github.com/meshd-io/meshd/internal/state"
)

// BenchmarkPlan measures Compute for full meshes of N clusters with three route tables each (100 clusters:
// 4,950 peerings, 29,700 routes, 9,900 rules), against an empty world (the first plan) and a converged one
// (what the daemon computes every pass). Both plan what the daemon plans every pass: the AWS network and,
// for every cluster, its DNS Service, its Corefile (with a block for each other cluster) and the notes on
// its EKS CoreDNS add-on. Target: under 1 s and 300 MB allocated for 100 clusters.
func BenchmarkPlan(b *testing.B) {
	for _, n := range []int{10, 50, 100} {
		empty := newBenchMesh(n)
		b.Run(fmt.Sprintf("clusters=%d/world=empty", n), func(b *testing.B) {
			in := empty.input()
			b.ReportAllocs()
			var p *plan.Plan
			for i := 0; i < b.N; i++ {
				p = plan.Compute(in)
			}
			b.ReportMetric(float64(len(p.Changes)), "changes")
		})

		converged := newBenchMesh(n)
		converged.converge(b)
		b.Run(fmt.Sprintf("clusters=%d/world=converged", n), func(b *testing.B) {
			in := converged.input()
			b.ReportAllocs()
			var p *plan.Plan
			for i := 0; i < b.N; i++ {
				p = plan.Compute(in)
			}
			if p.HasChanges() || len(p.Conflicts) > 0 {
				b.Fatalf("the converged world plans %d changes and %d conflicts", len(p.Changes), len(p.Conflicts))
			}
			// What makes the converged case the daemon's pass and not the network's alone.
			if len(p.Addons) != n {
				b.Fatalf("the converged plan has %d add-on notes, want one per cluster (%d)", len(p.Addons), n)
			}
		})
	}
}

// benchMesh is a grid of n clusters as the daemon sees them: each with a kube context and a namespace whose
// zone the others forward to, and an EKS CoreDNS add-on (configured with nothing, as EKS installs it).
type benchMesh struct {
	world   *plantest.World
	members []model.Member
	st      *state.State
}

func newBenchMesh(n int) *benchMesh {
	w, members := plantest.NewWorld("bench", plantest.Grid(n, 3))
	for i := range members {
		members[i].KubeContext = "ctx-" + members[i].Name
		members[i].Namespace = "ns-" + members[i].Name
	}
	return &benchMesh{world: w, members: members, st: state.New("bench")}
}

// input is the planner's input for the world as it is now, DNS and add-ons included.
func (m *benchMesh) input() plan.Input {
	dns := m.world.DNSInput(spec.ForwardByNamespace)
	dns.Addons = map[string]model.Addon{}
	for _, mem := range m.members {
		dns.Addons[mem.Name] = model.Addon{Cluster: mem.Name, Region: mem.Region, EKSCluster: mem.Name, Name: "coredns",
			Version: "v1.11.3-eksbuild.2", Status: "ACTIVE"}
	}
	return plan.Input{Mesh: "bench", Members: m.members, Observed: m.world.Observed, State: m.st, DNS: dns}
}

// converge applies plans until one has nothing left to do; the benchmark fails if three do not get there.
func (m *benchMesh) converge(b *testing.B) {
	for range 3 {
		p := plan.Compute(m.input())
		if !p.HasChanges() {
			return
		}
		if err := apply.Run(context.Background(), p, m.st, apply.Options{Executors: m.world.Executors()}).Err(); err != nil {
			b.Fatal(err)
		}
	}
	b.Fatal("the world did not converge in three applies")
}
