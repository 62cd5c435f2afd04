package sandbox_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshd-io/meshd/internal/sandbox"
)

// TestClusterDomainsOnSandbox is TiDB's multi-cluster layout: three self-managed clusters whose CoreDNS
// serve cluster1.com, cluster2.com and cluster3.com, each with the namespace pingcap, meshed with
// forward_by = "cluster_domain". A spec whose domain a cluster does not serve is refused at its line, with
// nothing changed; apply makes every cluster's real CoreDNS resolve every other cluster's Pod by its FQDN
// <pod>.<peer-svc>.pingcap.svc.<domain>; a second plan is empty; destroy gives every Corefile back byte for
// byte, after which the other clusters' names no longer resolve.
func TestClusterDomainsOnSandbox(t *testing.T) {
	s := sandbox.StartT(t, func(c *sandbox.Cluster) {
		c.Namespace = "pingcap"
		c.Domain = "cluster" + strings.TrimPrefix(c.Name, "tidb-") + ".com"
	})
	s.SetEnv(t)
	ctx := context.Background()
	dir := t.TempDir()
	spec := filepath.Join(dir, "mesh.hcl")
	writeSpec := func(domain func(sandbox.Cluster) string) {
		var b strings.Builder
		b.WriteString("mesh \"tidb\" {\n  dns {\n    forward_by = \"cluster_domain\"\n  }\n}\n")
		for _, c := range s.Clusters {
			n := s.Networks[c.Name]
			fmt.Fprintf(&b, "\ncluster %q {\n  region            = %q\n  kube_context      = %q\n  vpc_id            = %q\n"+
				"  security_group_id = %q\n  namespace         = %q\n  cluster_domain    = %q\n}\n",
				c.Name, c.Region, c.Context, n.VPCID, n.SecurityGroupID, c.Namespace, domain(c))
		}
		if err := os.WriteFile(spec, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run := meshctl(t, s, dir, spec)
	corefiles := func() map[string]string { return corefilesOf(t, s) }
	original := corefiles()
	for _, c := range s.Clusters {
		if !strings.Contains(original[c.Name], "kubernetes "+c.Domain+" ") {
			t.Fatalf("%s's CoreDNS is not seeded with its domain %s:\n%s", c.Name, c.Domain, original[c.Name])
		}
	}

	// tidb-2 declared with a domain its CoreDNS does not serve: an error at that line, and nothing written.
	writeSpec(func(c sandbox.Cluster) string {
		if c.Name == "tidb-2" {
			return "cluster.local"
		}
		return c.Domain
	})
	out := run(1, "apply", "--auto-approve")
	for _, want := range []string{"Cluster domain not served", "mesh.hcl:22,", "cluster.local", "cluster2.com"} {
		if !strings.Contains(out, want) {
			t.Errorf("apply with a domain tidb-2 does not serve: output lacks %q:\n%s", want, out)
		}
	}
	if got := corefiles(); fmt.Sprint(got) != fmt.Sprint(original) {
		t.Errorf("a refused apply changed a Corefile:\n%v", got)
	}
	for _, c := range s.Clusters {
		if _, err := s.Clients[c.Name].CoreV1().Services("kube-system").Get(ctx, "across-cluster-dns-tcp", metav1.GetOptions{}); err == nil {
			t.Errorf("a refused apply created the DNS Service in %s", c.Name)
		}
	}

	writeSpec(func(c sandbox.Cluster) string { return c.Domain })
	run(0, "apply", "--auto-approve")
	resolvesEveryPair(t, s)
	run(0, "plan", "--detailed-exitcode")

	run(0, "destroy", "--auto-approve")
	for name, text := range corefiles() {
		if text != original[name] {
			t.Errorf("%s's Corefile after destroy differs from the original:\n%s\nwant:\n%s", name, text, original[name])
		}
	}
	stopsResolving(t, s.Clusters[0], s.Clusters[1].SampleName())
}
