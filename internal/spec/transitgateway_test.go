package spec

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestTransitGatewayBlocks(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mesh.hcl")
	src := `
mesh "tidb" {
  topology = "transit_gateway"
  transit_gateway "us-west-2" {
    id                 = "tgw-0123456789abcdef0"
    route_table_id     = "tgw-rtb-0123456789abcdef0"
    summary_cidrs      = ["10.0.0.0/8"]
    attachment_subnets = { "b" = ["subnet-0123456789abcdef0"] }
  }
}
cluster "a" {
  region            = "us-west-1"
  kube_context      = "a"
  vpc_id            = "vpc-0123456789abcdef0"
  security_group_id = "sg-0123456789abcdef0"
  namespace         = "a"
}
cluster "b" {
  region            = "us-west-2"
  kube_context      = "b"
  vpc_id            = "vpc-0123456789abcdef1"
  security_group_id = "sg-0123456789abcdef1"
  namespace         = "b"
}
`
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	m, diags := Load(path)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if !m.UsesTransitGateway() {
		t.Errorf("topology = %q, want transit_gateway", m.Topology)
	}
	want := []*TransitGateway{{Region: "us-west-2", ID: "tgw-0123456789abcdef0", RouteTableID: "tgw-rtb-0123456789abcdef0",
		SummaryCIDRs: []string{"10.0.0.0/8"}, AttachmentSubnets: map[string][]string{"b": {"subnet-0123456789abcdef0"}}}}
	if diff := cmp.Diff(want, m.TransitGateways, cmpopts.IgnoreTypes(BlockRanges{})); diff != "" {
		t.Errorf("transit_gateway blocks (-want +got):\n%s", diff)
	}
	if m.TransitGateway("us-west-1") != nil {
		t.Error("a region without a block has one")
	}
	if r := m.TransitGateways[0].Attrs["id"]; r.Start.Line != 5 {
		t.Errorf("id's range starts on line %d, want 5", r.Start.Line)
	}
}
