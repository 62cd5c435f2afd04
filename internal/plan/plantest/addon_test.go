package plantest_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/meshd-io/meshd/internal/apply"
	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/plan/plantest"
	"github.com/meshd-io/meshd/internal/spec"
	"github.com/meshd-io/meshd/internal/state"
)

// TestAddonUpdateKeepsOnlyBlocksInItsConfiguration: an add-on update with OVERWRITE writes the add-on's
// corefile into the ConfigMap. With corefile_via = "eks_addon" meshd's blocks are in that corefile, so the
// update leaves them in the ConfigMap and the mesh converged; with "configmap" the update takes them out,
// and the next plan puts them back.
func TestAddonUpdateKeepsOnlyBlocksInItsConfiguration(t *testing.T) {
	for via, removes := range map[string]bool{spec.CorefileViaEKSAddon: false, spec.CorefileViaConfigMap: true} {
		t.Run(via, func(t *testing.T) {
			w, members := plantest.NewWorld("tidb", []plantest.Cluster{
				{Name: "a", Region: "us-west-2", CIDRs: []string{"10.1.0.0/16"}, RouteTables: 1},
				{Name: "b", Region: "us-east-1", CIDRs: []string{"10.2.0.0/16"}, RouteTables: 1},
			})
			for i := range members {
				members[i].Namespace = "ns-" + members[i].Name
			}
			w.CorefileVia = via
			w.Addons = map[string]model.Addon{"a": {Cluster: "a", Region: "us-west-2", EKSCluster: "a", Name: model.CoreDNSAddon,
				Version: "v1.11.3-eksbuild.2", Status: "ACTIVE", SchemaChecked: true, SchemaHasCorefile: true}}
			st := state.New("tidb")
			p := plan.Compute(w.Input(members, st, false))
			if err := apply.Run(context.Background(), p, st, apply.Options{Executors: w.Executors()}).Err(); err != nil {
				t.Fatal(err)
			}
			if p := plan.Compute(w.Input(members, st, false)); p.HasChanges() {
				t.Fatalf("the plan after apply is not empty: %v", changeLines(p))
			}

			w.UpdateAddon("a", w.AddonValues("a"), true) // e.g. a version upgrade, its configuration as it is
			const zone = "ns-b.svc.cluster.local"
			if got := strings.Contains(w.Corefile("a"), zone); got == removes {
				t.Errorf("after the add-on update, meshd's block for %s is in a's ConfigMap: %v, want %v:\n%s", zone, got, !removes, w.Corefile("a"))
			}
			var want, got []string
			if removes {
				want = []string{plan.CorefileAddress("a")}
			}
			p = plan.Compute(w.Input(members, st, false))
			for _, ch := range p.Changes {
				if ch.Action.IsChange() {
					got = append(got, ch.Address)
				}
			}
			if !slices.Equal(got, want) {
				t.Errorf("after the add-on update the plan changes %v, want %v", got, want)
			}
		})
	}
}
