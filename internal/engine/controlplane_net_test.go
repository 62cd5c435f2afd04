package engine

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/spec"
)

func TestPrivateAPIDecision(t *testing.T) {
	text := `mesh "m" {}
cluster "cp" {
  region       = "us-west-1"
  kube_context = "k0"
  namespace    = "n0"
  eks_cluster  = "cp"
}
cluster "dp" {
  region       = "us-west-1"
  kube_context = "k1"
  namespace    = "n1"
  eks_cluster  = "dp-eks"
}
control_plane "kb" {
  cluster     = "cp"
  data_planes = ["dp"]
  secret      = "kb-system/dp"
  cluster_role = "view"
}
`
	path := filepath.Join(t.TempDir(), "mesh.hcl")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	m, diags := spec.Load(path)
	if diags.HasErrors() {
		t.Fatalf("spec: %v", diags)
	}
	both := []model.Member{{Name: "cp", VPCID: "vpc-0"}, {Name: "dp", VPCID: "vpc-1"}}
	onlyDP := both[1:]
	private := model.APIEndpoint{PrivateAccess: true}
	for _, tc := range []struct {
		name     string
		eks      model.APIEndpoint
		members  []model.Member
		want     bool
		wantDiag bool
	}{
		{"private only, both peered members", private, both, true, false},
		{"private and public, both members", model.APIEndpoint{PrivateAccess: true, PublicAccess: true}, both, true, false},
		{"public only", model.APIEndpoint{PublicAccess: true}, both, false, false},
		{"private and public, control plane unresolved", model.APIEndpoint{PrivateAccess: true, PublicAccess: true}, onlyDP, false, false},
		{"private only, control plane unresolved", private, onlyDP, false, true},
	} {
		got, d := privateAPI(m.ControlPlanes[0], m.Cluster("dp"), tc.eks, tc.members)
		if got != tc.want || (d != nil) != tc.wantDiag {
			t.Errorf("%s: got %v, diagnostic %v", tc.name, got, d)
			continue
		}
		if d == nil {
			continue
		}
		// At the data plane's element of data_planes (line 16), naming the cause and the ways out.
		if d.Severity != 1 || d.Subject == nil || d.Subject.Start.Line != 16 || !strings.Contains(d.Detail, `"cp" was not resolved`) || !strings.Contains(d.Detail, "api_server") {
			t.Errorf("%s: diagnostic %s at %v: %s", tc.name, d.Summary, d.Subject, d.Detail)
		}
	}
}
