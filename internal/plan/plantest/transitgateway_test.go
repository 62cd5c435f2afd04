package plantest_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/meshd-io/meshd/internal/apply"
	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/plan/plantest"
	"github.com/meshd-io/meshd/internal/state"
)

// tgwWorld is four clusters in two regions, meshed with peerings (transitGateway false) or gateways.
func tgwWorld(t *testing.T) (*plantest.World, []model.Member, *state.State, func(destroy bool) *plan.Plan) {
	w, members := plantest.NewWorld("tidb", []plantest.Cluster{
		{Name: "a", Region: "us-west-2", CIDRs: []string{"10.1.0.0/16"}, RouteTables: 1},
		{Name: "b", Region: "us-west-2", CIDRs: []string{"10.2.0.0/16"}, RouteTables: 2},
		{Name: "c", Region: "us-east-1", CIDRs: []string{"10.3.0.0/16"}, RouteTables: 1},
		{Name: "d", Region: "us-east-1", CIDRs: []string{"10.4.0.0/16", "10.5.0.0/16"}, RouteTables: 1},
	})
	for i := range members {
		members[i].Namespace = "ns-" + members[i].Name
	}
	st := state.New("tidb")
	apply := func(destroy bool) *plan.Plan {
		t.Helper()
		p := plan.Compute(w.Input(members, st, destroy))
		if len(p.Conflicts) > 0 {
			t.Fatalf("conflicts: %+v", p.Conflicts)
		}
		if err := apply.Run(context.Background(), p, st, apply.Options{Executors: w.Executors()}).Err(); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return w, members, st, apply
}

// TestTGWSwitchMakesTheNewPathFirst: switching a peering mesh of two regions to gateways, each VPC route is
// replaced in place only after the whole path it moves to exists (through the plan's dependencies): both
// ends' attachments and, across regions, the gateways' peering attachment and the static routes there and
// back; meshd's peerings are deleted only after the replacements.
func TestTGWSwitchMakesTheNewPathFirst(t *testing.T) {
	w, members, st, applyPlan := tgwWorld(t)
	applyPlan(false)
	w.TransitGateways = &plan.TGWInput{Gateways: map[string]plan.TGWConfig{}}
	p := plan.Compute(w.Input(members, st, false))
	byAddr := map[string]plan.Change{}
	for _, ch := range p.Changes {
		byAddr[ch.Address] = ch
	}
	var closure func(addr string, seen map[string]bool)
	closure = func(addr string, seen map[string]bool) {
		for _, d := range byAddr[addr].DependsOn {
			if !seen[d] {
				seen[d] = true
				closure(d, seen)
			}
		}
	}
	member := map[string]model.Member{}
	for _, m := range members {
		member[m.Name] = m
	}
	replaced := 0
	for _, ch := range p.Changes {
		if ch.Kind != plan.KindTGWVPCRoute || ch.Action != plan.Update {
			continue
		}
		replaced++
		r := ch.After.(plan.TGWVPCRoute)
		var to model.Member
		for _, m := range members {
			if slices.Contains(m.CIDRs, r.DestinationCIDR) {
				to = m
			}
		}
		want := []string{plan.TGWAttachmentAddress(r.Cluster), plan.TGWAttachmentAddress(to.Name)}
		if to.Region != r.Region {
			regions := []string{r.Region, to.Region}
			slices.Sort(regions)
			want = append(want, plan.TGWPeeringAddress(regions[0], regions[1]), plan.TGWRouteAddress(r.Region, r.DestinationCIDR))
			for _, back := range member[r.Cluster].CIDRs {
				want = append(want, plan.TGWRouteAddress(to.Region, back))
			}
		}
		seen := map[string]bool{}
		closure(ch.Address, seen)
		for _, addr := range want {
			if _, planned := byAddr[addr]; !planned {
				t.Fatalf("%s is not in the plan", addr)
			}
			if !seen[addr] {
				t.Errorf("%s does not wait for %s", ch.Address, addr)
			}
		}
	}
	if replaced != 4+2*4+4+3 { // each table routes the other members' blocks: a (1 table) 4, b (2) 4 each, c (1) 4, d (1) 3
		t.Errorf("%d VPC routes replaced in place, want every peering route", replaced)
	}
	for _, ch := range p.Changes {
		if ch.Kind == plan.KindPeering && ch.Action == plan.Delete {
			if !slices.ContainsFunc(ch.DependsOn, func(d string) bool { return strings.HasPrefix(d, string(plan.KindTGWVPCRoute)+"[") }) {
				t.Errorf("%s does not wait for the routes that replace it", ch.Address)
			}
		}
	}
}

// TestTGWUnrecordedRouteToMeshdsGateway: a VPC route to a gateway meshd created is meshd's even when the
// state lost its record; destroy removes it (else it would turn into a blackhole once the gateway goes).
func TestTGWUnrecordedRouteToMeshdsGateway(t *testing.T) {
	w, _, st, applyPlan := tgwWorld(t)
	w.TransitGateways = &plan.TGWInput{Gateways: map[string]plan.TGWConfig{}}
	applyPlan(false)
	var lost []string
	for _, e := range plan.StateEntries(st) {
		if strings.HasPrefix(e.Address, string(plan.KindTGWVPCRoute)+"[") {
			plan.DropTGWRecord(st, plan.KindTGWVPCRoute, e.Address)
			lost = append(lost, e.Address)
		}
	}
	if len(lost) == 0 {
		t.Fatal("the apply recorded no VPC route to a gateway")
	}
	p := applyPlan(true)
	for _, addr := range lost {
		if ch := p.Find(addr); ch == nil || ch.Action != plan.Delete {
			t.Errorf("destroy does not delete %s, whose record was lost", addr)
		}
	}
	for id, rt := range w.Observed.RouteTables {
		for _, r := range rt.Routes {
			if strings.HasPrefix(r.Target, "tgw-") {
				t.Errorf("after destroy %s still routes %s to %s", id, r.DestinationCIDR, r.Target)
			}
		}
	}
}

// watchedExecutors wraps the world's executors so that after every change of an apply the members' paths are
// checked (World.PathProblems); the problems found are returned by the func.
func watchedExecutors(w *plantest.World, members []model.Member) (map[plan.Kind]apply.Executor, func() []string) {
	var mu sync.Mutex
	var problems []string
	out := map[plan.Kind]apply.Executor{}
	for k, e := range w.Executors() {
		out[k] = executorFunc(func(ctx context.Context, ch plan.Change, known apply.Known) (apply.Outcome, error) {
			o, err := e.Execute(ctx, ch, known)
			if p := w.PathProblems(members); len(p) > 0 {
				mu.Lock()
				problems = append(problems, "after "+ch.Address+": "+strings.Join(p, "; "))
				mu.Unlock()
			}
			return o, err
		})
	}
	return out, func() []string { mu.Lock(); defer mu.Unlock(); return problems }
}

type executorFunc func(context.Context, plan.Change, apply.Known) (apply.Outcome, error)

func (f executorFunc) Execute(ctx context.Context, ch plan.Change, known apply.Known) (apply.Outcome, error) {
	return f(ctx, ch, known)
}

// TestTGWSwitchBothWaysKeepsPaths: a peering mesh of two regions switched to gateways and back to peerings:
// after every change of either apply, every route table routes every other member's block to a live path;
// each switch ends with an empty plan; back on peerings, nothing of the gateways is left, in the world or in
// the state.
func TestTGWSwitchBothWaysKeepsPaths(t *testing.T) {
	w, members, st, applyPlan := tgwWorld(t)
	applyPlan(false)
	switchTo := func(step string, gateways *plan.TGWInput) *plan.Plan {
		t.Helper()
		w.TransitGateways = gateways
		p := plan.Compute(w.Input(members, st, false))
		if len(p.Conflicts) > 0 {
			t.Fatalf("%s: conflicts: %+v", step, p.Conflicts)
		}
		executors, problems := watchedExecutors(w, members)
		if err := apply.Run(context.Background(), p, st, apply.Options{Executors: executors}).Err(); err != nil {
			t.Fatalf("%s: %v", step, err)
		}
		for _, p := range problems() {
			t.Errorf("%s: %s", step, p)
		}
		if next := plan.Compute(w.Input(members, st, false)); next.HasChanges() {
			t.Errorf("%s: the next plan is not empty: %v", step, changeLines(next))
		}
		return p
	}
	switchTo("to gateways", &plan.TGWInput{Gateways: map[string]plan.TGWConfig{}})
	back := switchTo("back to peerings", nil)
	moved := 0
	for _, ch := range back.Changes {
		if ch.Kind == plan.KindRoute && ch.Action == plan.Update {
			moved++
		}
		if ch.Kind == plan.KindTGWVPCRoute {
			t.Errorf("the switch back plans %s %s: the route kind replaces meshd's routes to the gateways in place", ch.Action, ch.Address)
		}
		if ch.Kind == plan.KindPeering && strings.Contains(ch.Reason, "outside meshd") {
			t.Errorf("the switch back says %s: %s; meshd deleted it itself", ch.Address, ch.Reason)
		}
	}
	if moved != 19 {
		t.Errorf("the switch back replaces %d routes in place, want all 19", moved)
	}
	for _, e := range plan.StateEntries(st) {
		if strings.HasPrefix(e.Address, "tgw_") || strings.HasPrefix(e.Address, "transit_gateway") {
			t.Errorf("back on peerings the state still records %s", e.Address)
		}
	}
	for id, g := range w.Observed.TransitGateways {
		if !g.Gone() {
			t.Errorf("back on peerings gateway %s is still there", id)
		}
	}
	if len(w.Observed.TGWAttachments) != 0 {
		t.Errorf("back on peerings attachments are left: %v", w.Observed.TGWAttachments)
	}
}

// TestTGWNamedGatewaysAcrossRegions: the network team's gateways and route tables, named in the spec, with
// a static route of their own in each table. meshd peers the gateways and adds its static routes, records
// them (the tables are not its), leaves the team's routes alone, and destroy removes exactly its own: the
// gateways and tables stay, with the team's routes.
func TestTGWNamedGatewaysAcrossRegions(t *testing.T) {
	w, _, st, applyPlan := tgwWorld(t)
	gateways := map[string]plan.TGWConfig{}
	for i, region := range []string{"us-east-1", "us-west-2"} {
		gw, table := fmt.Sprintf("tgw-team%d", i), fmt.Sprintf("tgw-rtb-team%d", i)
		w.Observed.TransitGateways = mapWith(w.Observed.TransitGateways, gw, model.TransitGateway{ID: gw, Region: region, State: "available"})
		w.Observed.TGWRouteTables = mapWith(w.Observed.TGWRouteTables, table, model.TGWRouteTable{ID: table, GatewayID: gw, Region: region, State: "available",
			Routes: []model.TGWRoute{{DestinationCIDR: "192.168.0.0/16", Type: "static", State: "blackhole"}}})
		gateways[region] = plan.TGWConfig{ID: gw, RouteTableID: table}
	}
	team := fmt.Sprint(w.Observed.TransitGateways, w.Observed.TGWRouteTables)
	w.TransitGateways = &plan.TGWInput{Gateways: gateways}
	p := applyPlan(false)
	for _, ch := range p.Changes {
		if ch.Kind == plan.KindTransitGateway || ch.Kind == plan.KindTGWRouteTable {
			t.Errorf("meshd plans %s %s with the gateways and tables named", ch.Action, ch.Address)
		}
	}
	static := 0
	for _, rt := range w.Observed.TGWRouteTables {
		for _, r := range rt.Routes {
			if r.DestinationCIDR != "192.168.0.0/16" {
				static++
			}
		}
	}
	if static != 5 { // us-west-2's table routes c's and d's 3 blocks, us-east-1's a's and b's 2
		t.Errorf("%d static routes of meshd's in the named tables, want 5: %v", static, w.Observed.TGWRouteTables)
	}
	recorded := 0
	for _, e := range plan.StateEntries(st) {
		if strings.HasPrefix(e.Address, string(plan.KindTGWRoute)+"[") {
			recorded++
		}
	}
	if recorded != 5 {
		t.Errorf("%d static routes recorded, want 5: in a named table the record is what makes them meshd's", recorded)
	}
	applyPlan(true)
	if got := fmt.Sprint(w.Observed.TransitGateways, w.Observed.TGWRouteTables); got != team {
		t.Errorf("after destroy the team's gateways and tables are\n%s\nwant as before\n%s", got, team)
	}
}

func mapWith[V any](m map[string]V, k string, v V) map[string]V {
	if m == nil {
		m = map[string]V{}
	}
	m[k] = v
	return m
}
