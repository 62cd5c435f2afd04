package daemon

import (
	"context"
	"maps"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/plan/plantest"
)

func TestUpsertOnlyPolicy(t *testing.T) {
	change := func(address string, action plan.Action, dependsOn ...string) plan.Change {
		return plan.Change{Address: address, Action: action, DependsOn: dependsOn}
	}
	cases := map[string]struct {
		reason       string
		changes      []plan.Change
		wantChanges  []plan.Change
		wantWithheld int
	}{
		"NoDeletions": {
			reason:      "creations, updates, adoptions and objects left alone all stay, in order",
			changes:     []plan.Change{change("a", plan.Create), change("b", plan.Update), change("c", plan.Adopt), change("d", plan.Keep)},
			wantChanges: []plan.Change{change("a", plan.Create), change("b", plan.Update), change("c", plan.Adopt), change("d", plan.Keep)},
		},
		"Deletions": {
			reason:       "every deletion is withheld and counted",
			changes:      []plan.Change{change("route[x]", plan.Delete), change("a", plan.Create), change("peering[x]", plan.Delete, "route[x]")},
			wantChanges:  []plan.Change{change("a", plan.Create)},
			wantWithheld: 2,
		},
		"DependsOnADeletion": {
			reason:       "a change waiting for a withheld deletion stays: apply waits only for what is in the plan",
			changes:      []plan.Change{change("corefile[a]", plan.Delete), change("corefile[b]", plan.Update, "corefile[a]")},
			wantChanges:  []plan.Change{change("corefile[b]", plan.Update, "corefile[a]")},
			wantWithheld: 1,
		},
		"Empty": {
			reason:      "an empty plan stays empty",
			changes:     []plan.Change{},
			wantChanges: []plan.Change{},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := &plan.Plan{Changes: tc.changes}
			withheld := UpsertOnly(p)
			if diff := cmp.Diff(tc.wantWithheld, withheld); diff != "" {
				t.Errorf("%s\nwithheld: -want, +got:\n%s", tc.reason, diff)
			}
			if diff := cmp.Diff(tc.wantChanges, p.Changes); diff != "" {
				t.Errorf("%s\nchanges left: -want, +got:\n%s", tc.reason, diff)
			}
		})
	}
}

// TestUpsertOnlyKeepsFormerMembersWhileCorrecting: a pass that withholds a leaving cluster's deletions but
// applies other corrections keeps that cluster in the state, so its objects are still observed next time.
func TestUpsertOnlyKeepsFormerMembersWhileCorrecting(t *testing.T) {
	r, eng := newReconciler(t)
	eng.world, eng.members = plantest.NewWorld("tidb", plantest.Grid(3, 1))
	ctx := context.Background()
	if err := r.Pass(ctx, "test"); err != nil {
		t.Fatal(err)
	}
	// c003 leaves the spec while someone deletes a route between the two that stay.
	eng.members = eng.members[:2]
	eng.world.DeleteRoute(eng.members[0].RouteTableIDs[0], eng.members[1].CIDRs[0])
	r.UpsertOnly = true
	if err := r.Pass(ctx, "test"); err != nil {
		t.Fatal(err)
	}
	st, err := r.Backend.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{
		"routes created":     r.Metrics.Value(MetricCorrected, Labels{"kind": "route", "action": "create"}),
		"peerings destroyed": r.Metrics.Value(MetricCorrected, Labels{"kind": "peering", "action": "destroy"}),
	}
	want := map[string]float64{"routes created": 6 + 1, "peerings destroyed": 0}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("corrections: -want, +got:\n%s", diff)
	}
	if diff := cmp.Diff([]string{"c001", "c002", "c003"}, slices.Sorted(maps.Keys(st.Members))); diff != "" {
		t.Errorf("members in the state after the upsert-only pass: -want, +got:\n%s", diff)
	}
}
