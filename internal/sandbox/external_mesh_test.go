package sandbox_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/meshd-io/meshd/internal/cli"
	"github.com/meshd-io/meshd/internal/sandbox"
)

// externalSpec is the mesh of the sandbox's three EKS clusters and, when external is not "", tidb-4 as an
// external member (network = "external") whose cluster block ends with external (its dns block).
func externalSpec(s *sandbox.Sandbox, external string, extra ...string) string {
	var b strings.Builder
	b.WriteString("mesh \"tidb\" {\n  dns {\n    forward_by = \"namespace\"\n  }\n}\n")
	for _, c := range s.Clusters {
		switch {
		case !c.External:
			fmt.Fprintf(&b, "cluster %q {\n  region = %q\n  kube_context = %q\n  eks_cluster = %q\n  namespace = %q\n}\n",
				c.Name, c.Region, c.Context, c.Name, c.Namespace)
		case external != "":
			fmt.Fprintf(&b, "cluster %q {\n  network = \"external\"\n  kube_context = %q\n  namespace = %q\n%s\n}\n",
				c.Name, c.Context, c.Namespace, external)
		}
	}
	for _, e := range extra {
		b.WriteString(e + "\n")
	}
	return b.String()
}

// TestExternalMemberOnSandbox: a fourth cluster outside AWS (network = "external") joins the three EKS
// clusters of an applied mesh. Its DNS Service gets an address from the MetalLB stand-in; every cluster
// then resolves every other cluster's Pod, the plan says once that its network is not managed, verify
// --probe passes with "network not managed" for its pairs, and a copy and a control plane's kubeconfig
// reach it as any member. The other Corefiles follow its address when MetalLB moves it, and its node
// addresses and node port when it becomes a NodePort Service. Removing it restores every Corefile byte for
// byte.
func TestExternalMemberOnSandbox(t *testing.T) {
	s := sandbox.StartNT(t, 4, func(c *sandbox.Cluster) { c.External = c.Name == "tidb-4" })
	s.SetEnv(t)
	ext, _ := s.Cluster("tidb-4")
	ctx := context.Background()
	dir := t.TempDir()
	specPath := filepath.Join(dir, "mesh.hcl")
	write := func(text string) {
		t.Helper()
		if err := os.WriteFile(specPath, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run := meshctl(t, s, dir, specPath)
	aws := slices.DeleteFunc(slices.Clone(s.Clusters), func(c sandbox.Cluster) bool { return c.External })

	write(externalSpec(s, ""))
	run(0, "apply", "--auto-approve")
	before := corefilesOf(t, s)

	// What a copy and a control plane need in tidb-4, as in any member.
	for _, c := range []string{"tidb-1", "tidb-4"} {
		if _, err := s.Clients[c].CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "kb-system"}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Clients["tidb-1"].CoreV1().ConfigMaps("kb-system").Create(ctx, &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "settings"}, Data: map[string]string{"region": "dc"}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	shared := `replicate "settings" {
  from {
    cluster   = "tidb-1"
    kind      = "ConfigMap"
    namespace = "kb-system"
    name      = "settings"
  }
  to = ["tidb-4"]
}
control_plane "kubeblocks" {
  cluster        = "tidb-1"
  data_planes    = ["tidb-4"]
  secret         = "kb-system/kubeblocks-multi-cluster"
  cluster_role   = "view"
  token_file_dir = ""
}`
	const metalLB = `  dns {
    service_type        = "LoadBalancer"
    service_annotations = { "metallb.io/address-pool" = "default" }
  }`
	write(externalSpec(s, metalLB, shared))
	out := run(0, "plan")
	if n := strings.Count(out, "the network of tidb-4 is external"); n != 1 {
		t.Errorf("the plan says %d times that tidb-4's network is external, want once:\n%s", n, out)
	}
	for _, l := range strings.Split(out, "\n") {
		if (strings.Contains(l, "peering[") || strings.Contains(l, "route[") || strings.Contains(l, "sg_rule[")) && strings.Contains(l, "tidb-4") {
			t.Errorf("the plan has a network change for tidb-4: %s", l)
		}
	}
	run(0, "apply", "--auto-approve")
	resolvesEveryPair(t, s)
	run(0, "plan", "--detailed-exitcode")
	var shown strings.Builder
	app := &cli.App{Stdin: strings.NewReader(""), Stdout: &shown, Stderr: &shown}
	if code := app.Main(ctx, []string{"state", "show", "--state", filepath.Join(dir, "state.json"), "member[tidb-4]"}); code != 0 ||
		!strings.Contains(shown.String(), `"external"`) || strings.Contains(shown.String(), "vpc_id") {
		t.Errorf("state show member[tidb-4]: exit %d; want network external and no AWS attributes:\n%s", code, shown.String())
	}

	svc := dnsServiceOf(t, s, "tidb-4")
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer || svc.Annotations["metallb.io/address-pool"] != "default" ||
		svc.Annotations["service.beta.kubernetes.io/aws-load-balancer-type"] != "" {
		t.Errorf("tidb-4's DNS Service: type %s, annotations %v; want LoadBalancer with the MetalLB pool and no NLB annotations", svc.Spec.Type, svc.Annotations)
	}
	ip := svc.Status.LoadBalancer.Ingress[0].IP
	for _, c := range aws {
		if got := forwardsTo(t, s, c.Name, ext.Namespace); got != ip {
			t.Errorf("%s forwards %s to %q, want MetalLB's %s", c.Name, ext.Namespace, got, ip)
		}
	}

	out = run(0, "verify", "--probe")
	if !strings.Contains(out, "network not managed") {
		t.Errorf("verify does not say network not managed for tidb-4's pairs:\n%s", out)
	}

	// The copy and the control plane's kubeconfig reach tidb-4 as any member.
	if cm, err := s.Clients["tidb-4"].CoreV1().ConfigMaps("kb-system").Get(ctx, "settings", metav1.GetOptions{}); err != nil || cm.Data["region"] != "dc" {
		t.Errorf("the copy in tidb-4: %v, %v", cm, err)
	}
	sec, err := s.Clients["tidb-1"].CoreV1().Secrets("kb-system").Get(ctx, "kubeblocks-multi-cluster", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := clientcmd.Load(sec.Data["kubeconfig"])
	if err != nil {
		t.Fatal(err)
	}
	kctx := cfg.Contexts["tidb-4"]
	if kctx == nil || cfg.Clusters[kctx.Cluster] == nil || cfg.Clusters[kctx.Cluster].Server != s.APIServers["tidb-4"].Host {
		t.Errorf("the kubeconfig's context tidb-4: %+v; want tidb-4's API server %s", kctx, s.APIServers["tidb-4"].Host)
	}

	// Someone asks MetalLB for the other pool address by hand (an annotation meshd does not set): the
	// other Corefiles follow the move.
	moved := ext.DNS[0]
	if moved == ip {
		moved = ext.DNS[1]
	}
	patch := fmt.Sprintf(`{"metadata":{"annotations":{"metallb.io/loadBalancerIPs":%q}}}`, moved)
	if _, err := s.Clients["tidb-4"].CoreV1().Services("kube-system").Patch(ctx, "across-cluster-dns-tcp", types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "MetalLB to move tidb-4's Service to "+moved, func() bool {
		in := dnsServiceOf(t, s, "tidb-4").Status.LoadBalancer.Ingress
		return len(in) == 1 && in[0].IP == moved
	})
	run(0, "apply", "--auto-approve")
	for _, c := range aws {
		if got := forwardsTo(t, s, c.Name, ext.Namespace); got != moved {
			t.Errorf("%s forwards %s to %q after the move, want %s", c.Name, ext.Namespace, got, moved)
		}
	}
	resolvesEveryPair(t, s)

	// A NodePort Service on the cluster's nodes instead: the others forward to each node at its node port.
	nodes := ext.NodeAddresses()
	write(externalSpec(s, fmt.Sprintf("  dns {\n    node_addresses = [%q]\n  }", nodes[0]), shared))
	run(0, "apply", "--auto-approve")
	svc = dnsServiceOf(t, s, "tidb-4")
	if svc.Spec.Type != corev1.ServiceTypeNodePort || svc.Annotations["metallb.io/address-pool"] != "" {
		t.Errorf("tidb-4's DNS Service: type %s, annotations %v; want NodePort without the pool annotation meshd set", svc.Spec.Type, svc.Annotations)
	}
	want := fmt.Sprintf("%s:%d", nodes[0], svc.Spec.Ports[0].NodePort)
	for _, c := range aws {
		if got := forwardsTo(t, s, c.Name, ext.Namespace); got != want {
			t.Errorf("%s forwards %s to %q, want %s", c.Name, ext.Namespace, got, want)
		}
	}
	resolvesEveryPair(t, s)
	run(0, "plan", "--detailed-exitcode")

	// tidb-4 leaves: every Corefile is as before it joined, byte for byte, and its Service is gone.
	write(externalSpec(s, ""))
	run(0, "apply", "--auto-approve")
	after := corefilesOf(t, s)
	for name, text := range before {
		if after[name] != text {
			t.Errorf("%s's Corefile after tidb-4 left differs from before it joined:\n--- before\n%s\n--- after\n%s", name, text, after[name])
		}
	}
	if _, err := s.Clients["tidb-4"].CoreV1().Services("kube-system").Get(ctx, "across-cluster-dns-tcp", metav1.GetOptions{}); err == nil {
		t.Error("tidb-4's DNS Service is still there after it left the mesh")
	}
	stopsResolving(t, s.Clusters[0], ext.SampleName())
}

func dnsServiceOf(t *testing.T, s *sandbox.Sandbox, cluster string) *corev1.Service {
	t.Helper()
	svc, err := s.Clients[cluster].CoreV1().Services("kube-system").Get(context.Background(), "across-cluster-dns-tcp", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

// forwardsTo is the forward line's upstreams of meshd's block for namespace's zone in cluster's Corefile.
func forwardsTo(t *testing.T, s *sandbox.Sandbox, cluster, namespace string) string {
	t.Helper()
	text := corefilesOf(t, s)[cluster]
	zone := namespace + ".svc.cluster.local:53 {"
	i := strings.Index(text, zone)
	if i < 0 {
		return ""
	}
	rest := text[i:]
	j := strings.Index(rest, "forward . ")
	if j < 0 {
		return ""
	}
	line := rest[j+len("forward . "):]
	return strings.TrimSuffix(line[:strings.Index(line, "\n")], " {")
}
