package plan_test

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"

	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/plan/plantest"
	"github.com/meshd-io/meshd/internal/planview"
	"github.com/meshd-io/meshd/internal/spec"
)

// TestTopologyCosts compares the topologies at 10, 50 and 150 clusters over three regions: peering runs out
// of the default quotas past about 50 clusters, a gateway per region does not need peerings at all, and its
// routes per table stay at one per remote block unless the region routes a summary.
func TestTopologyCosts(t *testing.T) {
	type counts struct {
		Peerings, PerVPC, Routes, Rules, Attachments int
		Exceeds                                      string
	}
	cases := map[string]struct {
		n        int
		summary  bool
		peering  counts
		gateway  counts
		monthUSD float64
	}{
		"10 clusters":              {n: 10, peering: counts{45, 9, 9, 9, 0, ""}, gateway: counts{3, 0, 9, 9, 13, ""}, monthUSD: 13 * 730 * 0.05},
		"50 clusters":              {n: 50, peering: counts{1225, 49, 49, 49, 0, ""}, gateway: counts{3, 0, 49, 49, 53, ""}, monthUSD: 53 * 730 * 0.05},
		"150 clusters":             {n: 150, peering: counts{11175, 149, 149, 149, 0, "peerings_per_vpc, routes_per_route_table, inbound_rules_per_group"}, gateway: counts{3, 0, 149, 149, 153, "routes_per_route_table, inbound_rules_per_group"}, monthUSD: 153 * 730 * 0.05},
		"150 clusters, summarised": {n: 150, summary: true, peering: counts{11175, 149, 149, 149, 0, "peerings_per_vpc, routes_per_route_table, inbound_rules_per_group"}, gateway: counts{3, 0, 1, 149, 153, "inbound_rules_per_group"}, monthUSD: 153 * 730 * 0.05},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, members := plantest.NewWorld("tidb", threeRegions(tc.n))
			m := &spec.Mesh{Name: "tidb", Topology: spec.TopologyTransitGateway}
			if tc.summary {
				for _, r := range []string{"us-west-1", "us-west-2", "us-east-1"} {
					m.TransitGateways = append(m.TransitGateways, &spec.TransitGateway{Region: r, SummaryCIDRs: []string{"10.0.0.0/8"}})
				}
			}
			got := plan.TopologyCosts(m, members, plan.DefaultPrices)
			of := func(c plan.TopologyCost) counts {
				return counts{c.Peerings, c.PeeringsPerVPC, c.RoutesPerTable, c.RulesPerGroup, c.Attachments, strings.Join(c.Exceeds(), ", ")}
			}
			if diff := cmp.Diff([]counts{tc.peering, tc.gateway}, []counts{of(got[0]), of(got[1])}); diff != "" {
				t.Errorf("peering, transit_gateway (-want +got):\n%s", diff)
			}
			if d := got[1].MonthlyUSD - tc.monthUSD; d > 0.001 || d < -0.001 {
				t.Errorf("gateway attachments cost $%.2f a month, want $%.2f", got[1].MonthlyUSD, tc.monthUSD)
			}
			var out bytes.Buffer
			if err := planview.RenderTopologyCosts(&out, tc.n, 3, plan.DefaultPrices, got); err != nil {
				t.Fatal(err)
			}
			if ex := got[0].Exceeds(); len(ex) > 0 && !strings.Contains(out.String(), " !") {
				t.Errorf("the table marks no exceeded quota:\n%s", out.String())
			}
			t.Logf("%s", out.String())
		})
	}
}

// threeRegions are n clusters spread over three regions, one /24 each.
func threeRegions(n int) []plantest.Cluster {
	regions := []string{"us-west-1", "us-west-2", "us-east-1"}
	out := make([]plantest.Cluster, n)
	for i := range out {
		out[i] = plantest.Cluster{Name: fmt.Sprintf("c%03d", i+1), Region: regions[i%3],
			CIDRs: []string{fmt.Sprintf("10.%d.%d.0/24", i/256, i%256)}, RouteTables: 1}
	}
	return out
}

// TestTransitGatewayTopologyIsRefused: a mesh with members of one region in two accounts asking for the
// topology gets an error at its topology attribute, never a plan of peerings; regions in different
// accounts are planned.
func TestTransitGatewayTopologyIsRefused(t *testing.T) {
	m := &spec.Mesh{Name: "tidb", Topology: spec.TopologyTransitGateway, Attrs: map[string]hcl.Range{
		"topology": {Filename: "mesh.hcl", Start: hcl.Pos{Line: 2, Column: 14}}},
		Clusters: []*spec.Cluster{{Name: "a", Region: "us-west-2"}, {Name: "b", Region: "us-west-2"}, {Name: "c", Region: "us-east-1"}}}
	if diags := plan.Check(m, nil, model.NewObserved(), &plan.Plan{}); diags.HasErrors() {
		t.Errorf("one account in two regions is refused: %v", diags)
	}
	m.Clusters[2].AssumeRole = "arn:aws:iam::111111111111:role/meshd"
	if diags := plan.Check(m, nil, model.NewObserved(), &plan.Plan{}); diags.HasErrors() {
		t.Errorf("two regions in two accounts are refused: %v", diags)
	}
	m.Clusters[1].AssumeRole = "arn:aws:iam::111111111111:role/meshd"
	diags := plan.Check(m, nil, model.NewObserved(), &plan.Plan{})
	if !diags.HasErrors() || diags[0].Summary != "Transit Gateway topology across accounts in one region not planned yet" || diags[0].Subject.Start.Line != 2 ||
		!strings.Contains(diags[0].Detail, "us-west-2") {
		t.Errorf("members of one region in two accounts: %v", diags)
	}
	if diags := plan.Check(m, nil, model.NewObserved(), &plan.Plan{Destroy: true}); diags.HasErrors() {
		t.Errorf("destroy is refused too: %v", diags)
	}
	m.Topology = spec.TopologyPeering
	if diags := plan.Check(m, nil, model.NewObserved(), &plan.Plan{}); diags.HasErrors() {
		t.Errorf("diagnostics for topology = \"peering\": %v", diags)
	}
}

// TestTransitGatewayObservationIAM: a mesh with the gateway topology may read its gateways; a peering mesh
// is not granted it.
func TestTransitGatewayObservationIAM(t *testing.T) {
	m := &spec.Mesh{Name: "tidb", Topology: spec.TopologyTransitGateway, Clusters: []*spec.Cluster{{Name: "a", Region: "us-west-2"}}}
	has := func() bool {
		stmts, err := plan.IAMOf(m, "")
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range stmts {
			if slices.Contains(s.Actions, "ec2:SearchTransitGatewayRoutes") {
				return true
			}
		}
		return false
	}
	if !has() {
		t.Error("the gateway topology's policy cannot read the gateways' routes")
	}
	m.Topology = spec.TopologyPeering
	if has() {
		t.Error("a peering mesh's policy reads Transit Gateways")
	}
}
