package spec

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	gocmp "github.com/google/go-cmp/cmp"
)

// TestLoadBalancerExample loads specs/multi-cluster-nlb.hcl and checks the block's values and defaults.
func TestLoadBalancerExample(t *testing.T) {
	m, diags := Load("../../specs/multi-cluster-nlb.hcl")
	if len(diags) > 0 {
		var out bytes.Buffer
		_ = PrintDiagnostics(&out, m.Files, diags, false)
		t.Fatalf("unexpected diagnostics:\n%s", out.String())
	}
	if len(m.LoadBalancers) != 1 {
		t.Fatalf("%d load_balancer blocks, want 1", len(m.LoadBalancers))
	}
	lb := m.LoadBalancers[0]
	got := []any{lb.Name, lb.Primary, lb.Namespace, lb.Service, lb.SecondariesOf(m), lb.DeletionProtection, lb.Port}
	want := []any{"nginx", "pri-eks-clu1", "default", "nginx", []string{"sec-eks-clu1"}, true, int32(0)}
	if diff := gocmp.Diff(want, got); diff != "" {
		t.Errorf("load_balancer (-want +got):\n%s", diff)
	}
}

// TestLoadBalancerDefaults: without secondaries every other member is one; deletion_protection defaults to
// true and can be turned off.
func TestLoadBalancerDefaults(t *testing.T) {
	dir := t.TempDir()
	writeSpec(t, dir, `
mesh "m" {}
cluster "a" {
  region = "us-west-2"
  kube_context = "a"
  eks_cluster = "a"
  namespace = "n1"
}
cluster "b" {
  region = "us-west-2"
  kube_context = "b"
  eks_cluster = "b"
  namespace = "n2"
}
cluster "c" {
  region = "us-east-1"
  kube_context = "c"
  eks_cluster = "c"
  namespace = "n3"
}
load_balancer "web" {
  primary = "b"
  namespace = "default"
  service = "web"
  deletion_protection = false
}
`)
	m, diags := Load(dir)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	lb := m.LoadBalancer("web")
	if diff := gocmp.Diff([]string{"a", "c"}, lb.SecondariesOf(m)); diff != "" {
		t.Errorf("secondaries (-want +got):\n%s", diff)
	}
	if lb.DeletionProtection {
		t.Error("deletion_protection = false was not read")
	}
}

func writeSpec(t *testing.T, dir, src string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "mesh.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
}
