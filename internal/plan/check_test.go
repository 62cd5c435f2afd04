package plan_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/plan/plantest"
	"github.com/meshd-io/meshd/internal/spec"
	"github.com/meshd-io/meshd/internal/state"
)

const checkSpec = `mesh "tidb" {
  quotas {
    peerings_per_vpc        = %d
    routes_per_route_table  = %d
    inbound_rules_per_group = %d
  }
}
cluster "c001" {
  region            = "us-west-1"
  kube_context      = "c1"
  namespace         = "n1"
  vpc_id            = "vpc-00000001"
  security_group_id = "sg-00000001"
}
cluster "c002" {
  region            = "us-west-2"
  kube_context      = "c2"
  namespace         = "n2"
  vpc_id            = "vpc-00000002"
  security_group_id = "sg-00000002"
}
cluster "c003" {
  region            = "us-east-1"
  kube_context      = "c3"
  namespace         = "n3"
  vpc_id            = "vpc-00000003"
  security_group_id = "sg-00000003"
}
`

func loadCheckSpec(t *testing.T, peerings, routes, rules int) *spec.Mesh {
	t.Helper()
	path := filepath.Join(t.TempDir(), "mesh.hcl")
	text := []byte(sprintf(checkSpec, peerings, routes, rules))
	if err := os.WriteFile(path, text, 0o644); err != nil {
		t.Fatal(err)
	}
	m, diags := spec.Load(path)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	return m
}

type diagLine struct {
	Summary string
	Line    int
}

// checkWorld is the three-member world of checkSpec (one /24 and two route tables each); setup may change it.
func checkWorld(setup func(w *plantest.World, members []model.Member)) (*plantest.World, []model.Member) {
	w, members := plantest.NewWorld("tidb", plantest.Grid(3, 2))
	if setup != nil {
		setup(w, members)
	}
	return w, members
}

func checkDiags(t *testing.T, m *spec.Mesh, setup func(w *plantest.World, members []model.Member)) []diagLine {
	w, members := checkWorld(setup)
	p := plan.Compute(plan.Input{Mesh: "tidb", Members: members, Observed: w.Observed, State: state.New("tidb")})
	var out []diagLine
	for _, d := range plan.Check(m, members, w.Observed, p) {
		out = append(out, diagLine{d.Summary, d.Subject.Start.Line})
	}
	return out
}

// withVPCBlocks gives member i's VPC the blocks cidrs and meshes those of them listed in meshed.
func withVPCBlocks(i int, cidrs, meshed []string) func(w *plantest.World, members []model.Member) {
	return func(w *plantest.World, members []model.Member) {
		vpc := w.Observed.VPCs[members[i].VPCID]
		vpc.CIDRs = cidrs
		w.Observed.VPCs[vpc.ID] = vpc
		members[i].CIDRs = meshed
	}
}

func TestCheck(t *testing.T) {
	cases := map[string]struct {
		reason                  string
		peerings, routes, rules int
		setup                   func(w *plantest.World, members []model.Member)
		want                    []diagLine
	}{
		"within quotas": {
			reason: "A three-cluster mesh fits AWS's default quotas.", peerings: 50, routes: 50, rules: 60,
		},
		"peering quota": {
			reason: "Each VPC needs two peerings; a quota of one is exceeded for every member, at its vpc_id.", peerings: 1, routes: 50, rules: 60,
			want: []diagLine{{"VPC peering quota exceeded", 12}, {"VPC peering quota exceeded", 19}, {"VPC peering quota exceeded", 26}},
		},
		"route quota": {
			reason: "Each route table gets two mesh routes (the local route does not count); a quota of one is exceeded in all six tables.", peerings: 50, routes: 1, rules: 60,
			want: []diagLine{
				{"Route table quota exceeded", 12}, {"Route table quota exceeded", 12},
				{"Route table quota exceeded", 19}, {"Route table quota exceeded", 19},
				{"Route table quota exceeded", 26}, {"Route table quota exceeded", 26},
			},
		},
		"rule quota": {
			reason: "Two inbound rules per group exceed a quota of one.", peerings: 50, routes: 50, rules: 1,
			want: []diagLine{{"Security group rule quota exceeded", 12}, {"Security group rule quota exceeded", 19}, {"Security group rule quota exceeded", 26}},
		},
		"rule quota counts rules referencing a group or a prefix list": {
			reason: "c001's group already has two rules whose source is a group or a prefix list; with meshd's two it " +
				"would have four, over a quota of three. The other groups have two.",
			peerings: 50, routes: 50, rules: 3,
			setup: func(w *plantest.World, members []model.Member) {
				w.Observed.ReferencingRules[members[0].SecurityGroupID] = 2
			},
			want: []diagLine{{"Security group rule quota exceeded", 12}},
		},
		"propagated routes do not count": {
			reason: "Three routes a VPN gateway propagated into c001's first table do not count toward a quota of two " +
				"(meshd adds two routes per table); one static route in its second table does.",
			peerings: 50, routes: 2, rules: 60,
			setup: func(w *plantest.World, members []model.Member) {
				first, second := w.Observed.RouteTables[members[0].RouteTableIDs[0]], w.Observed.RouteTables[members[0].RouteTableIDs[1]]
				for _, cidr := range []string{"192.168.0.0/24", "192.168.1.0/24", "192.168.2.0/24"} {
					first.Routes = append(first.Routes, model.Route{DestinationCIDR: cidr, Target: "vgw-0001", State: "active", Propagated: true})
				}
				second.Routes = append(second.Routes, model.Route{DestinationCIDR: "0.0.0.0/0", Target: "igw-0001", State: "active"})
			},
			want: []diagLine{{"Route table quota exceeded", 12}},
		},
		"overlap": {
			reason: "A member whose 10.0.0.0/8 covers the others' blocks is reported at its own vpc_id, once per overlap.", peerings: 50, routes: 50, rules: 60,
			setup: withVPCBlocks(2, []string{"10.0.0.0/8"}, []string{"10.0.0.0/8"}),
			want:  []diagLine{{"Overlapping CIDR blocks", 26}, {"Overlapping CIDR blocks", 26}},
		},
		"overlap of a block left out of the mesh": {
			reason: "AWS refuses a peering when any blocks of the two VPCs overlap: c003's secondary 10.0.0.0/23, which " +
				"cidr_blocks leaves out of the mesh, overlaps the blocks of c001 and c002 and is reported all the same.",
			peerings: 50, routes: 50, rules: 60,
			setup: withVPCBlocks(2, []string{"10.0.2.0/24", "10.0.0.0/23"}, []string{"10.0.2.0/24"}),
			want:  []diagLine{{"Overlapping CIDR blocks", 26}, {"Overlapping CIDR blocks", 26}},
		},
		"disjoint secondary blocks": {
			reason: "Secondary blocks that overlap no other VPC's are fine, meshed or not.", peerings: 50, routes: 50, rules: 60,
			setup: withVPCBlocks(2, []string{"10.0.2.0/24", "100.64.0.0/16"}, []string{"10.0.2.0/24"}),
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := checkDiags(t, loadCheckSpec(t, tc.peerings, tc.routes, tc.rules), tc.setup)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\ndiagnostics (-want, +got):\n%s", tc.reason, diff)
			}
		})
	}
}

func TestCheckOverlapDetail(t *testing.T) {
	m := loadCheckSpec(t, 50, 50, 60)
	w, members := checkWorld(withVPCBlocks(1, []string{"10.0.1.0/24", "10.0.0.128/25"}, []string{"10.0.1.0/24"}))
	p := plan.Compute(plan.Input{Mesh: "tidb", Members: members, Observed: w.Observed, State: state.New("tidb")})
	diags := plan.Check(m, members, w.Observed, p)
	if len(diags) != 1 {
		t.Fatalf("want one diagnostic, got %v", diags)
	}
	d := diags[0]
	if d.Summary != "Overlapping CIDR blocks" || d.Subject.Start.Line != 19 {
		t.Errorf("got %q at line %d, want Overlapping CIDR blocks at c002's vpc_id (line 19)", d.Summary, d.Subject.Start.Line)
	}
	specLine := fmt.Sprintf("%s:12", m.Cluster("c001").DeclRange.Filename)
	for _, want := range []string{`VPC vpc-0002 of cluster "c002"`, "10.0.0.128/25", "10.0.0.0/24",
		`VPC vpc-0001 of cluster "c001"`, specLine, "meshed or not"} {
		if !strings.Contains(d.Detail, want) {
			t.Errorf("detail lacks %q:\n%s", want, d.Detail)
		}
	}
	if strings.Contains(d.Detail, "leave") {
		t.Errorf("detail advises leaving the block out, which AWS does not accept:\n%s", d.Detail)
	}

	// Destroying the mesh needs no disjoint blocks.
	p = plan.Compute(plan.Input{Mesh: "tidb", Members: members, Observed: w.Observed, State: state.New("tidb"), Destroy: true})
	if diags := plan.Check(m, members, w.Observed, p); len(diags) != 0 {
		t.Errorf("destroy plan: %v", diags)
	}
}

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }
