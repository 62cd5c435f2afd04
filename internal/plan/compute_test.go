package plan_test

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/meshd-io/meshd/internal/apply"
	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/plan/plantest"
	"github.com/meshd-io/meshd/internal/planfile"
	"github.com/meshd-io/meshd/internal/planview"
	"github.com/meshd-io/meshd/internal/state"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// fixture: three clusters in three regions; a has two route tables, c has a secondary CIDR block.
func fixture() (*plantest.World, []model.Member) {
	return plantest.NewWorld("tidb", []plantest.Cluster{
		{Name: "a", Region: "us-west-1", CIDRs: []string{"10.1.0.0/16"}, RouteTables: 2},
		{Name: "b", Region: "us-west-2", CIDRs: []string{"10.2.0.0/16"}, RouteTables: 1},
		{Name: "c", Region: "us-east-1", CIDRs: []string{"10.3.0.0/16", "10.30.0.0/16"}, RouteTables: 1},
	})
}

type env struct {
	world   *plantest.World
	members []model.Member
	st      *state.State
	adopt   bool
}

func (e *env) plan(destroy bool) *plan.Plan {
	return plan.Compute(plan.Input{Mesh: "tidb", Adopt: e.adopt, Members: e.members, Observed: e.world.Observed,
		State: e.st, Destroy: destroy})
}

func (e *env) apply(t *testing.T, p *plan.Plan) {
	t.Helper()
	mustApply(t, e.world, e.st, p)
}

// mustApply applies p to the world and its state, failing the test on any error.
func mustApply(t *testing.T, world *plantest.World, st *state.State, p *plan.Plan) {
	t.Helper()
	if err := apply.Run(context.Background(), p, st, apply.Options{Executors: world.Executors()}).Err(); err != nil {
		t.Fatalf("apply: %v", err)
	}
}

// converged returns an environment where a full apply has run.
func converged(t *testing.T) *env {
	t.Helper()
	w, members := fixture()
	e := &env{world: w, members: members, st: state.New("tidb")}
	e.apply(t, e.plan(false))
	return e
}

// lines renders changes as "<action> <address>: <reason>", the shape the expectations are written in.
func lines(p *plan.Plan) []string {
	var out []string
	for _, c := range p.Changes {
		out = append(out, fmt.Sprintf("%s %s: %s", c.Action, c.Address, c.Reason))
	}
	for _, c := range p.Conflicts {
		out = append(out, fmt.Sprintf("! %s: %s", c.Address, c.Summary))
	}
	return out
}

func TestCompute(t *testing.T) {
	peeringOf := func(e *env, a, b int) model.ObservedPeering {
		p, ok := e.world.PeeringBetween(e.members[a].VPCID, e.members[b].VPCID)
		if !ok {
			t.Fatalf("no peering between %s and %s", e.members[a].Name, e.members[b].Name)
		}
		return p
	}
	cases := map[string]struct {
		reason  string
		setup   func(t *testing.T) *env
		destroy bool
		want    []string
		record  int
		forget  int
	}{
		"converged": {
			reason: "A mesh that matches the spec plans nothing.",
			setup:  converged,
		},
		"route deleted out of band": {
			reason: "A route someone deleted is one create, with a reason that says so.",
			setup: func(t *testing.T) *env {
				e := converged(t)
				e.world.DeleteRoute("rtb-000100", "10.2.0.0/16")
				return e
			},
			want: []string{"+ route[a:rtb-000100:10.2.0.0/16]: route was deleted outside meshd"},
		},
		"rule revoked out of band": {
			reason: "A revoked ingress rule is created again.",
			setup: func(t *testing.T) *env {
				e := converged(t)
				for _, rule := range e.world.Observed.Rules["sg-0002"] {
					if rule.CIDR == "10.1.0.0/16" {
						e.world.DeleteRule("sg-0002", rule.ID)
					}
				}
				return e
			},
			want: []string{"+ sg_rule[b:sg-0002:10.1.0.0/16]: ingress rule missing"},
		},
		"peering pending acceptance": {
			reason: "A peering of ours that was never accepted is accepted, in the accepter's region.",
			setup: func(t *testing.T) *env {
				e := converged(t)
				p := peeringOf(e, 0, 1)
				p.Status = model.PeeringPending
				e.world.Observed.Peerings[p.ID] = p
				return e
			},
			want: []string{"~ peering[a:b]: peering is pending-acceptance: accept it in us-west-2"},
		},
		"peering deleted out of band": {
			reason: "A deleted peering is requested again and the routes through it are moved to the new one.",
			setup: func(t *testing.T) *env {
				e := converged(t)
				p := peeringOf(e, 0, 2)
				p.Status = model.PeeringDeleted
				e.world.Observed.Peerings[p.ID] = p
				return e
			},
			want: []string{
				"+ peering[a:c]: peering was deleted outside meshd: request a new one",
				"~ route[a:rtb-000100:10.3.0.0/16]: route targets pcx-1c7bb60b, which was deleted outside meshd",
				"~ route[a:rtb-000100:10.30.0.0/16]: route targets pcx-1c7bb60b, which was deleted outside meshd",
				"~ route[a:rtb-000101:10.3.0.0/16]: route targets pcx-1c7bb60b, which was deleted outside meshd",
				"~ route[a:rtb-000101:10.30.0.0/16]: route targets pcx-1c7bb60b, which was deleted outside meshd",
				"~ route[c:rtb-000300:10.1.0.0/16]: route targets pcx-1c7bb60b, which was deleted outside meshd",
			},
		},
		"conflicting route": {
			reason: "A route to a member's CIDR through someone else's target is reported, never replaced.",
			setup: func(t *testing.T) *env {
				e := converged(t)
				e.world.DeleteRoute("rtb-000100", "10.2.0.0/16")
				e.world.AddRoute("rtb-000100", model.Route{DestinationCIDR: "10.2.0.0/16", Target: "igw-1", State: "active"})
				return e
			},
			want:   []string{"! route[a:rtb-000100:10.2.0.0/16]: Route table rtb-000100 (cluster a) already routes 10.2.0.0/16 to igw-1"},
			forget: 1,
		},
		"foreign route through a mesh peering": {
			reason: "Someone routes their own destination through meshd's peering: it is theirs, never deleted.",
			setup: func(t *testing.T) *env {
				e := converged(t)
				p := peeringOf(e, 0, 1)
				e.world.AddRoute("rtb-000100", model.Route{DestinationCIDR: "192.168.7.0/24", PeeringID: p.ID, State: "active"})
				return e
			},
		},
		"broader foreign rule": {
			reason: "Someone's rule allowing 10.0.0.0/8 already lets every member in: meshd adds no copies.",
			setup: func(t *testing.T) *env {
				w, members := fixture()
				w.Observed.Rules["sg-0001"] = []model.SecurityGroupRule{{ID: "sgr-user", GroupID: "sg-0001", Protocol: "-1", CIDR: "10.0.0.0/8"}}
				e := &env{world: w, members: members, st: state.New("tidb")}
				e.apply(t, e.plan(false))
				return e
			},
			want: []string{
				"= sg_rule[a:sg-0001:10.2.0.0/16]: already allowed by sgr-user (not meshd's): left alone",
				"= sg_rule[a:sg-0001:10.3.0.0/16]: already allowed by sgr-user (not meshd's): left alone",
				"= sg_rule[a:sg-0001:10.30.0.0/16]: already allowed by sgr-user (not meshd's): left alone",
			},
		},
		"interrupted after create route": {
			reason: "Routes through meshd's peering that the state lost are recorded again, without a change.",
			setup: func(t *testing.T) *env {
				e := converged(t)
				e.st.Routes = nil
				return e
			},
			record: 11,
		},
		"stale record": {
			reason: "A record of a route whose table is gone is forgotten.",
			setup: func(t *testing.T) *env {
				e := converged(t)
				e.st.AddRoute(state.RouteRecord{Region: "us-west-1", VPCID: "vpc-9", RouteTableID: "rtb-gone", DestinationCIDR: "10.9.0.0/16", PeeringID: "pcx-9"})
				return e
			},
			forget: 1,
		},
		"cluster leaves the spec": {
			reason: "Removing a cluster removes what meshd made for it, routes and rules before the peerings.",
			setup: func(t *testing.T) *env {
				e := converged(t)
				e.members = e.members[:2]
				return e
			},
			want: []string{
				"- route[a:rtb-000100:10.3.0.0/16]: no longer in the spec",
				"- route[a:rtb-000100:10.30.0.0/16]: no longer in the spec",
				"- route[a:rtb-000101:10.3.0.0/16]: no longer in the spec",
				"- route[a:rtb-000101:10.30.0.0/16]: no longer in the spec",
				"- route[b:rtb-000200:10.3.0.0/16]: no longer in the spec",
				"- route[b:rtb-000200:10.30.0.0/16]: no longer in the spec",
				"- route[c:rtb-000300:10.1.0.0/16]: no longer in the spec",
				"- route[c:rtb-000300:10.2.0.0/16]: no longer in the spec",
				"- sg_rule[a:sg-0001:10.3.0.0/16]: no longer in the spec",
				"- sg_rule[a:sg-0001:10.30.0.0/16]: no longer in the spec",
				"- sg_rule[b:sg-0002:10.3.0.0/16]: no longer in the spec",
				"- sg_rule[b:sg-0002:10.30.0.0/16]: no longer in the spec",
				"- sg_rule[c:sg-0003:10.1.0.0/16]: no longer in the spec",
				"- sg_rule[c:sg-0003:10.2.0.0/16]: no longer in the spec",
				"- peering[a:c]: no longer in the spec",
				"- peering[b:c]: no longer in the spec",
			},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			e := tc.setup(t)
			p := e.plan(tc.destroy)
			if diff := cmp.Diff(tc.want, lines(p)); diff != "" {
				t.Errorf("%s\nchanges (-want, +got):\n%s", tc.reason, diff)
			}
			if len(p.Record) != tc.record || len(p.Forget) != tc.forget {
				t.Errorf("%s\nrecord %d forget %d, want %d and %d", tc.reason, len(p.Record), len(p.Forget), tc.record, tc.forget)
			}
			// Whatever the plan, applying it converges: the next plan has nothing left to do.
			if len(p.Conflicts) == 0 {
				e.apply(t, p)
				if next := e.plan(tc.destroy); next.HasChanges() || len(next.Record)+len(next.Forget) > 0 {
					t.Errorf("plan after apply is not empty:\n%s", strings.Join(lines(next), "\n"))
				}
			}
		})
	}
}

func TestEmptyWorldPlan(t *testing.T) {
	w, members := fixture()
	e := &env{world: w, members: members, st: state.New("tidb")}
	p := e.plan(false)
	want := plan.Summary{Add: 3 + 11 + 8}
	if diff := cmp.Diff(want, p.Summary()); diff != "" {
		t.Errorf("summary (-want, +got):\n%s", diff)
	}
	// Every route waits for the peering it goes through; peerings come first in the list.
	for i, c := range p.Changes {
		if c.Kind == plan.KindPeering && i >= 3 {
			t.Errorf("peering %s at position %d: peerings must come first", c.Address, i)
		}
		if c.Kind == plan.KindRoute {
			r := c.After.(plan.Route)
			if r.PeeringID != "" || len(c.DependsOn) != 1 || c.DependsOn[0] != r.PeeringAddress {
				t.Errorf("%s: peering %q, depends on %v; want a placeholder for %s", c.Address, r.PeeringID, c.DependsOn, r.PeeringAddress)
			}
		}
	}
	golden(t, "empty", p)

	e.apply(t, p)
	// The state now records exactly the 11 routes; each peering is active and tagged.
	if len(e.st.Routes) != 11 {
		t.Errorf("state records %d routes, want 11", len(e.st.Routes))
	}
	for _, pc := range w.Observed.Peerings {
		if pc.Status != model.PeeringActive || pc.Tags[model.TagMesh] != "tidb" {
			t.Errorf("peering %+v: want active and tagged", pc)
		}
	}
}

func TestDestroy(t *testing.T) {
	e := converged(t)
	userRoute := model.Route{DestinationCIDR: "192.168.0.0/16", Target: "igw-user", State: "active"}
	e.world.AddRoute("rtb-000100", userRoute)
	userRule := model.SecurityGroupRule{ID: "sgr-user", GroupID: "sg-0001", Protocol: "tcp", FromPort: 443, ToPort: 443, CIDR: "10.2.0.0/16"}
	e.world.Observed.Rules["sg-0001"] = append(e.world.Observed.Rules["sg-0001"], userRule)

	p := e.plan(true)
	s := p.Summary()
	if s.Destroy != 3+11+8 || s.Add+s.Change+s.Adopt != 0 {
		t.Fatalf("summary %+v, want 22 destroys only", s)
	}
	// Routes go before the peerings they use, and each peering's delete waits for them.
	seenPeeringDelete := false
	for _, c := range p.Changes {
		if c.Kind == plan.KindPeering {
			seenPeeringDelete = true
			if len(c.DependsOn) == 0 {
				t.Errorf("%s depends on nothing; want the deletes of the routes through it", c.Address)
			}
		} else if seenPeeringDelete {
			t.Errorf("%s comes after a peering delete", c.Address)
		}
	}
	golden(t, "destroy", p)
	e.apply(t, p)

	if len(e.st.Routes) != 0 || len(e.st.Members) != 0 {
		t.Errorf("state after destroy: %d routes, %d members; want none", len(e.st.Routes), len(e.st.Members))
	}
	rt := e.world.Observed.RouteTables["rtb-000100"]
	if diff := cmp.Diff([]model.Route{{DestinationCIDR: "10.1.0.0/16", Target: "local", State: "active"}, userRoute}, rt.Routes); diff != "" {
		t.Errorf("routes left in rtb-000100 (-want, +got):\n%s", diff)
	}
	if diff := cmp.Diff([]model.SecurityGroupRule{userRule}, e.world.Observed.Rules["sg-0001"]); diff != "" {
		t.Errorf("rules left on sg-0001 (-want, +got):\n%s", diff)
	}
}

// handMade turns a converged world into one where the runbook was done by hand: no tags, no state.
func handMade(t *testing.T) *env {
	e := converged(t)
	for id, p := range e.world.Observed.Peerings {
		p.Tags = nil
		e.world.Observed.Peerings[id] = p
	}
	for g := range e.world.Observed.Rules {
		for i := range e.world.Observed.Rules[g] {
			e.world.Observed.Rules[g][i].Tags = nil
		}
	}
	e.st = state.New("tidb")
	return e
}

func TestHandMadeMeshIsLeftAlone(t *testing.T) {
	e := handMade(t)
	p := e.plan(false)
	if p.HasChanges() {
		t.Fatalf("plan changes a hand-made mesh without adopt:\n%s", strings.Join(lines(p), "\n"))
	}
	kept := 0
	for _, c := range p.Changes {
		if c.Action == plan.Keep {
			kept++
		}
	}
	if kept != 3+11+8 {
		t.Errorf("%d objects shown as left alone, want 22", kept)
	}
	golden(t, "handmade", p)
	// Destroy leaves it all: none of it is meshd's.
	if d := e.plan(true); d.HasChanges() {
		t.Errorf("destroy plans changes to objects meshd does not own:\n%s", strings.Join(lines(d), "\n"))
	}
}

func TestAdopt(t *testing.T) {
	e := handMade(t)
	e.adopt = true
	p := e.plan(false)
	if s := p.Summary(); s.Adopt != 3+11+8 || s.Add+s.Change+s.Destroy != 0 {
		t.Fatalf("summary %+v, want 22 adoptions only", s)
	}
	e.apply(t, p)
	if next := e.plan(false); next.HasChanges() {
		t.Fatalf("plan after adoption:\n%s", strings.Join(lines(next), "\n"))
	}
	if len(e.st.Routes) != 11 {
		t.Errorf("%d routes recorded after adoption, want 11", len(e.st.Routes))
	}
	// Adopted objects are meshd's now: destroy removes them.
	if d := e.plan(true); d.Summary().Destroy != 22 {
		t.Errorf("destroy after adoption plans %+v, want 22 destroys", d.Summary())
	}
}

func TestSavedPlanRoundTrip(t *testing.T) {
	w, members := fixture()
	e := &env{world: w, members: members, st: state.New("tidb")}
	p := e.plan(false)
	var buf bytes.Buffer
	if err := planview.RenderJSON(&buf, p); err != nil {
		t.Fatal(err)
	}
	got, err := planfile.Decode(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(p, got); diff != "" {
		t.Errorf("decoded plan (-want, +got):\n%s", diff)
	}
}

func golden(t *testing.T, name string, p *plan.Plan) {
	t.Helper()
	var human, js bytes.Buffer
	if err := planview.RenderHuman(&human, p); err != nil {
		t.Fatal(err)
	}
	if err := planview.RenderJSON(&js, p); err != nil {
		t.Fatal(err)
	}
	for ext, got := range map[string][]byte{".txt": human.Bytes(), ".json": js.Bytes()} {
		path := filepath.Join("testdata", "golden", name+ext)
		if *update {
			if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test ./internal/plan -update to create it)", err)
		}
		if diff := cmp.Diff(string(want), string(got)); diff != "" {
			t.Errorf("%s (-want, +got):\n%s", path, diff)
		}
	}
}
