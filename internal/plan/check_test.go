package plan_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

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

func checkDiags(t *testing.T, m *spec.Mesh, overlap bool) []diagLine {
	w, members := plantest.NewWorld("tidb", plantest.Grid(3, 2))
	if overlap {
		members[2].CIDRs = []string{"10.0.0.0/8"}
	}
	p := plan.Compute(plan.Input{Mesh: "tidb", Members: members, Observed: w.Observed, State: state.New("tidb")})
	var out []diagLine
	for _, d := range plan.Check(m, members, w.Observed, p) {
		out = append(out, diagLine{d.Summary, d.Subject.Start.Line})
	}
	return out
}

func TestCheck(t *testing.T) {
	cases := map[string]struct {
		reason                  string
		peerings, routes, rules int
		overlap                 bool
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
		"overlap": {
			reason: "A member whose 10.0.0.0/8 covers the others' blocks is reported at its own vpc_id, once per overlap.", peerings: 50, routes: 50, rules: 60, overlap: true,
			want: []diagLine{{"Overlapping CIDR blocks", 26}, {"Overlapping CIDR blocks", 26}},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got := checkDiags(t, loadCheckSpec(t, tc.peerings, tc.routes, tc.rules), tc.overlap)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("%s\ndiagnostics (-want, +got):\n%s", tc.reason, diff)
			}
		})
	}
}

func sprintf(format string, args ...any) string { return fmt.Sprintf(format, args...) }
