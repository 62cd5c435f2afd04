package sandbox_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshd-io/meshd/internal/cli"
	"github.com/meshd-io/meshd/internal/sandbox"
	"github.com/meshd-io/meshd/internal/testenv"
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
	for _, kv := range s.Env() {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
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
	run := func(want int, args ...string) string {
		t.Helper()
		var out, errb bytes.Buffer
		app := &cli.App{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb}
		full := append(args, "--spec", spec, "--state", filepath.Join(dir, "state.json"), "--kubeconfig", s.Kubeconfig)
		if code := app.Main(ctx, full); code != want {
			t.Fatalf("meshctl %s: exit %d, want %d\n%s\n%s", strings.Join(args, " "), code, want, out.String(), errb.String())
		}
		return out.String() + errb.String()
	}
	corefiles := func() map[string]string {
		out := map[string]string{}
		for _, c := range s.Clusters {
			cm, err := s.Clients[c.Name].CoreV1().ConfigMaps("kube-system").Get(ctx, "coredns", metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			out[c.Name] = cm.Data["Corefile"]
		}
		return out
	}
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
	for _, a := range s.Clusters {
		for _, other := range s.Clusters {
			addrs, err := s.WaitResolve(ctx, a.Name, other.SampleName(), 30*time.Second)
			if err != nil || len(addrs) != 1 || addrs[0].String() != other.SampleIP {
				t.Errorf("%s's CoreDNS: %s -> %v, %v; want %s", a.Name, other.SampleName(), addrs, err, other.SampleIP)
			}
		}
	}
	run(0, "plan", "--detailed-exitcode")

	run(0, "destroy", "--auto-approve")
	for name, text := range corefiles() {
		if text != original[name] {
			t.Errorf("%s's Corefile after destroy differs from the original:\n%s\nwant:\n%s", name, text, original[name])
		}
	}
	c1, c2 := s.Clusters[0], s.Clusters[1]
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := testenv.LookupA(c1.DNSAddr()+":53", c2.SampleName(), true); err != nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s still resolves %s after destroy", c1.Name, c2.SampleName())
		}
		time.Sleep(200 * time.Millisecond)
	}
}
