package main

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshd-io/meshd/internal/cli"
	"github.com/meshd-io/meshd/internal/sandbox"
	"github.com/meshd-io/meshd/internal/testenv"
)

// TestDNSLayoutsOnSandbox runs meshd against the CoreDNS setups clusters really have, each served by the
// real CoreDNS: tidb-1 is an EKS cluster with a NodeLocal DNSCache in front of its CoreDNS, tidb-2 a k3s
// cluster whose Corefile imports coredns-custom's *.server files, tidb-3 an RKE2 cluster whose Corefile is
// rke2-coredns-rke2-coredns (tidb-2 and tidb-3 are self-managed on EC2: vpc_id, no eks_cluster, and cluster
// domains of their own). In namespace and then cluster-domain mode: plan names each layout, apply makes
// every ordered pair resolve (through tidb-1's cache too), and the next plan is empty. Then meshd, from its
// watches, repairs meshd's block removed from each of the three; destroy leaves every kube-system
// ConfigMap byte for byte as it was, and no other. meshctl and meshd run as an identity that holds only
// what meshctl rbac generates for the spec, applied with the real kubectl: the layouts' ConfigMaps, the
// cache's and the backups are all in it.
func TestDNSLayoutsOnSandbox(t *testing.T) {
	kubectl := testenv.Require(t, testenv.BinKubectl)
	sb := sandbox.StartT(t, sandbox.WithNodeLocal("tidb-1"), sandbox.WithLayout(sandbox.LayoutK3s, "tidb-2"),
		sandbox.WithLayout(sandbox.LayoutRKE2, "tidb-3"), func(c *sandbox.Cluster) {
			if c.Name != "tidb-1" { // an EKS cluster's domain is cluster.local
				c.Domain = strings.Replace(c.Name, "tidb-", "cluster", 1) + ".local"
			}
		})
	e := newE2EOn(t, sb)
	ctx := context.Background()
	byContext := map[string]*testenv.APIServer{}
	for _, c := range sb.Clusters {
		byContext[c.Context] = sb.APIServers[c.Name].Unprivileged()
	}
	kubeconfig := filepath.Join(e.dir, "meshd-kubeconfig")
	if err := testenv.WriteMultiKubeconfig(kubeconfig, byContext); err != nil {
		t.Fatal(err)
	}
	meshctl := func(want int, args ...string) (string, string) {
		t.Helper()
		return layoutMeshctl(t, e, kubeconfig, want, args...)
	}
	before := map[string]map[string]map[string]string{}
	for _, c := range sb.Clusters {
		before[c.Name] = kubeSystemConfigMaps(t, sb, c.Name)
	}
	cache, ok := sb.NodeLocalAddr("tidb-1")
	if !ok {
		t.Fatal("tidb-1 has no NodeLocal DNSCache")
	}

	for _, mode := range []string{"namespace", "cluster_domain"} {
		e.writeFile("mesh.hcl", layoutSpec(sb, mode))
		for _, c := range sb.Clusters { // the mode's RBAC, by an admin
			var rbac bytes.Buffer
			if code := (&cli.App{Stdout: &rbac, Stderr: &rbac}).Main(ctx, []string{"rbac", "--spec", e.spec, "--cluster", c.Name}); code != 0 {
				t.Fatalf("meshctl rbac --cluster %s: exit %d\n%s", c.Name, code, rbac.String())
			}
			yaml := rbac.String()
			cmd := exec.Command(kubectl, "--kubeconfig", sb.Kubeconfig, "--context", c.Context, "apply", "-f", "-")
			cmd.Stdin = strings.NewReader(yaml)
			if got, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("kubectl apply of meshctl rbac --cluster %s: %v\n%s", c.Name, err, got)
			}
		}
		out, _ := meshctl(2, "plan", "--detailed-exitcode")
		for _, want := range []string{
			"tidb-1: kube-system/coredns (EKS add-on); NodeLocal DNSCache kube-system/node-local-dns",
			"tidb-2: kube-system/coredns-custom key meshd.server, a file the Corefile imports (k3s)",
			"tidb-3: kube-system/rke2-coredns-rke2-coredns (RKE2)",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("%s mode: the plan does not say %q:\n%s", mode, want, out)
			}
		}
		meshctl(0, "apply", "--auto-approve")
		for _, a := range sb.Clusters {
			for _, b := range sb.Clusters {
				if _, err := sb.WaitResolve(ctx, a.Name, b.SampleName(), 30*time.Second); err != nil {
					t.Errorf("%s mode: %s's CoreDNS does not resolve %s: %v", mode, a.Name, b.SampleName(), err)
				}
				if a.Name == "tidb-1" {
					if _, err := sandbox.WaitResolve(ctx, cache, b.SampleName(), 30*time.Second); err != nil {
						t.Errorf("%s mode: tidb-1's NodeLocal DNSCache does not resolve %s: %v", mode, b.SampleName(), err)
					}
				}
			}
		}
		meshctl(0, "plan", "--detailed-exitcode")
		verify, _ := meshctl(0, "verify")
		if !strings.Contains(verify, "tidb-1's Pods ask its NodeLocal DNSCache") {
			t.Errorf("%s mode: verify does not follow the path through tidb-1's cache:\n%s", mode, verify)
		}
	}

	// Each layout's drift, repaired by meshd from its watch of that ConfigMap.
	m := e.start("--kubeconfig", kubeconfig)
	cms := func(cluster string) func() map[string]string {
		return func() map[string]string { return kubeSystemConfigMaps(t, sb, cluster)[layoutConfigMap(sb, cluster)] }
	}
	drifts := []struct {
		cluster string
		undo    func(data map[string]string)
	}{
		{"tidb-1", func(d map[string]string) { d["Corefile"] = before["tidb-1"][sandbox.ConfigMapNodeLocalDNS]["Corefile"] }},
		{"tidb-2", func(d map[string]string) { delete(d, "meshd.server") }},
		{"tidb-3", func(d map[string]string) { d["Corefile"] = before["tidb-3"][sandbox.ConfigMapRKE2CoreDNS]["Corefile"] }},
	}
	for _, d := range drifts {
		name := layoutConfigMap(sb, d.cluster)
		want := cms(d.cluster)()
		client := sb.Clients[d.cluster].CoreV1().ConfigMaps("kube-system")
		cm, err := client.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		d.undo(cm.Data)
		if _, err := client.Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		took := e.waitFor(60*time.Second, "meshd to restore its blocks in "+d.cluster+"'s "+name, func() bool {
			return maps.Equal(cms(d.cluster)(), want)
		})
		t.Logf("%s's kube-system/%s restored %s after the drift", d.cluster, name, took.Round(time.Millisecond))
	}
	e.kill(m, syscall.SIGTERM)

	meshctl(0, "destroy", "--auto-approve")
	for _, c := range sb.Clusters {
		after := kubeSystemConfigMaps(t, sb, c.Name)
		for name, data := range before[c.Name] {
			if !maps.Equal(after[name], data) {
				t.Errorf("after destroy %s's kube-system/%s is %q, want %q as before meshd", c.Name, name, after[name], data)
			}
		}
		for name := range after {
			if _, ok := before[c.Name][name]; !ok {
				t.Errorf("after destroy %s still has kube-system/%s", c.Name, name)
			}
		}
	}

	// A member where meshd finds no CoreDNS configuration (tidb-3 without its ConfigMap; its CoreDNS keeps
	// serving its last Corefile, as a Pod does) is a warning at its cluster block, and the apply still makes
	// the others resolve its names.
	if err := sb.Clients["tidb-3"].CoreV1().ConfigMaps("kube-system").Delete(ctx, sandbox.ConfigMapRKE2CoreDNS, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	_, stderr := meshctl(0, "apply", "--auto-approve")
	if !strings.Contains(stderr, "No CoreDNS configuration to write to") || !strings.Contains(stderr, "mesh.hcl:") {
		t.Errorf("apply without tidb-3's CoreDNS ConfigMap: no warning at the spec:\n%s", stderr)
	}
	for _, a := range sb.Clusters[:2] {
		if _, err := sb.WaitResolve(ctx, a.Name, sb.Clusters[2].SampleName(), 30*time.Second); err != nil {
			t.Errorf("%s does not resolve %s, whose cluster has no CoreDNS ConfigMap: %v", a.Name, sb.Clusters[2].SampleName(), err)
		}
	}
	meshctl(0, "destroy", "--auto-approve")
}

// layoutConfigMap is the ConfigMap that holds meshd's blocks in each cluster of TestDNSLayoutsOnSandbox.
func layoutConfigMap(sb *sandbox.Sandbox, cluster string) string {
	switch cluster {
	case "tidb-1":
		return sandbox.ConfigMapNodeLocalDNS
	case "tidb-2":
		return sandbox.ConfigMapCoreDNSCustom
	}
	return sandbox.ConfigMapRKE2CoreDNS
}

// layoutSpec is the mesh of the three clusters in a forwarding mode: tidb-1 by its EKS cluster, the others
// by their VPC and node security group, with their cluster domains.
func layoutSpec(sb *sandbox.Sandbox, mode string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "mesh \"tidb\" {\n  dns {\n    forward_by = %q\n  }\n}\n", mode)
	for _, c := range sb.Clusters {
		if c.Name == "tidb-1" {
			fmt.Fprintf(&b, "\ncluster %q {\n  region       = %q\n  kube_context = %q\n  eks_cluster  = %q\n  namespace    = %q\n}\n",
				c.Name, c.Region, c.Context, c.Name, c.Namespace)
			continue
		}
		n := sb.Networks[c.Name]
		fmt.Fprintf(&b, "\ncluster %q {\n  region            = %q\n  kube_context      = %q\n  vpc_id            = %q\n  security_group_id = %q\n  namespace         = %q\n  cluster_domain    = %q\n}\n",
			c.Name, c.Region, c.Context, n.VPCID, n.SecurityGroupID, c.Namespace, c.ClusterDomain())
	}
	return b.String()
}

// kubeSystemConfigMaps are a cluster's kube-system ConfigMaps, name to data.
func kubeSystemConfigMaps(t *testing.T, sb *sandbox.Sandbox, cluster string) map[string]map[string]string {
	t.Helper()
	l, err := sb.Clients[cluster].CoreV1().ConfigMaps("kube-system").List(context.Background(), metav1.ListOptions{})
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	out := map[string]map[string]string{}
	for _, cm := range l.Items {
		out[cm.Name] = cm.Data
	}
	return out
}

// layoutMeshctl runs meshctl with the test's spec and state and the given kubeconfig, in the sandbox's
// environment.
func layoutMeshctl(t *testing.T, e *e2e, kubeconfig string, want int, args ...string) (string, string) {
	t.Helper()
	e.setenv(t)
	var out, errb bytes.Buffer
	app := &cli.App{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb}
	full := append(args, "--spec", e.spec, "--state", e.state, "--kubeconfig", kubeconfig)
	if code := app.Main(context.Background(), full); code != want {
		t.Fatalf("meshctl %s: exit %d, want %d\n%s\n%s", strings.Join(args, " "), code, want, out.String(), errb.String())
	}
	return out.String(), errb.String()
}
