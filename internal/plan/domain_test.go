package plan_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/hcl/v2"

	"github.com/meshd-io/meshd/internal/corefile"
	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/plan/plantest"
	"github.com/meshd-io/meshd/internal/spec"
	"github.com/meshd-io/meshd/internal/state"
)

// domainWorld is TiDB's multi-cluster layout: clusters a, b and c built with the cluster domains
// cluster1.com, cluster2.com and cluster3.com, and the same namespace pingcap in all three, meshed with
// forward_by = "cluster_domain". corefiles are their Corefiles before meshd; a cluster left out has one
// serving its domain.
type domainWorld struct {
	world   *plantest.World
	members []model.Member
	st      *state.State
	mesh    *spec.Mesh
}

var clusterDomains = map[string]string{"a": "cluster1.com", "b": "cluster2.com", "c": "cluster3.com"}

// servingCorefile is EKS's default Corefile with the kubernetes plugin serving domain instead.
func servingCorefile(domain string) string {
	return strings.Replace(corefile.EKSDefault, "kubernetes cluster.local ", "kubernetes "+domain+" ", 1)
}

func newDomainWorld(t *testing.T, corefiles map[string]string) *domainWorld {
	t.Helper()
	var clusters []plantest.Cluster
	var src strings.Builder
	src.WriteString("mesh \"tidb\" {\n  dns {\n    forward_by = \"cluster_domain\"\n  }\n}\n")
	for i, name := range []string{"a", "b", "c"} {
		text, ok := corefiles[name]
		if !ok {
			text = servingCorefile(clusterDomains[name])
		}
		clusters = append(clusters, plantest.Cluster{Name: name, Region: []string{"us-west-1", "us-west-2", "us-east-1"}[i],
			CIDRs: []string{fmt.Sprintf("10.%d.0.0/16", i+1)}, RouteTables: 1, Corefile: text})
		fmt.Fprintf(&src, "cluster %q {\n  region            = %q\n  kube_context      = \"ctx-%s\"\n  vpc_id            = \"vpc-0000000%d\"\n"+
			"  security_group_id = \"sg-0000000%d\"\n  namespace         = \"pingcap\"\n  cluster_domain    = %q\n}\n",
			name, clusters[i].Region, name, i+1, i+1, clusterDomains[name])
	}
	world, members := plantest.NewWorld("tidb", clusters)
	for i := range members {
		members[i].KubeContext = "ctx-" + members[i].Name
		members[i].Namespace = "pingcap"
		members[i].ClusterDomain = clusterDomains[members[i].Name]
	}
	world.LoadBalancerAddresses = map[string][]string{"a": {"10.1.0.10", "10.1.1.10"}, "b": {"10.2.0.10"}, "c": {"10.3.0.10"}}
	path := filepath.Join(t.TempDir(), "mesh.hcl")
	if err := os.WriteFile(path, []byte(src.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	m, diags := spec.Load(path)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	return &domainWorld{world: world, members: members, st: state.New("tidb"), mesh: m}
}

func (w *domainWorld) plan(destroy bool) (*plan.Plan, hcl.Diagnostics) {
	p := plan.Compute(plan.Input{Mesh: "tidb", Members: w.members, Observed: w.world.Observed, State: w.st,
		Destroy: destroy, DNS: w.world.DNSInput(spec.ForwardByClusterDomain)})
	return p, plan.Check(w.mesh, w.members, w.world.Observed, p)
}

func (w *domainWorld) apply(t *testing.T, p *plan.Plan) {
	t.Helper()
	mustApply(t, w.world, w.st, p)
}

// TestComputeClusterDomains: in cluster-domain mode each Corefile gets one block per other member whose
// zone is that member's cluster domain, forwarding to its DNS load balancer; the same namespace in every
// cluster is no obstacle; a second plan is empty and destroy gives back every Corefile as it was.
func TestComputeClusterDomains(t *testing.T) {
	w := newDomainWorld(t, nil)
	p, diags := w.plan(false)
	if len(diags) > 0 {
		t.Fatalf("diagnostics: %v", diags)
	}
	got := p.Find("corefile[a]").After.(plan.Corefile).Blocks
	want := []plan.CorefileBlock{{Zone: "cluster2.com", Pending: "dns_service[b]"}, {Zone: "cluster3.com", Pending: "dns_service[c]"}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("corefile[a] blocks from empty (-want, +got):\n%s", diff)
	}
	w.apply(t, p)

	for name, others := range map[string][]string{"a": {"b", "c"}, "b": {"a", "c"}, "c": {"a", "b"}} {
		var want []corefile.Block
		for _, o := range others {
			want = append(want, corefile.Block{Zone: clusterDomains[o], Upstreams: w.world.LoadBalancerAddresses[o]})
		}
		text := w.world.Corefile(name)
		blocks, err := corefile.Blocks(text)
		if err != nil {
			t.Fatal(err)
		}
		var gotBlocks []corefile.Block
		for _, b := range blocks[1:] { // the first is the cluster's own .:53 block
			gotBlocks = append(gotBlocks, corefile.Block{Zone: b.Zones[0], Upstreams: corefile.ForwardUpstreams(text, b)})
		}
		if diff := cmp.Diff(want, gotBlocks); diff != "" {
			t.Errorf("Corefile of %s: meshd's blocks (-want, +got):\n%s", name, diff)
		}
		if !strings.HasPrefix(text, servingCorefile(clusterDomains[name])) {
			t.Errorf("Corefile of %s no longer starts with its own default block:\n%s", name, text)
		}
	}
	if next, diags := w.plan(false); next.HasChanges() || len(next.Conflicts) > 0 || len(diags) > 0 {
		t.Errorf("second plan not empty: %v %v %v", dnsLines(next), next.Conflicts, diags)
	}

	p, diags = w.plan(true)
	if len(diags) > 0 {
		t.Fatalf("destroy diagnostics: %v", diags)
	}
	w.apply(t, p)
	for _, name := range []string{"a", "b", "c"} {
		if got, want := w.world.Corefile(name), w.world.OriginalCorefile(name); got != want {
			t.Errorf("Corefile of %s after destroy:\n%s\nwant, byte for byte:\n%s", name, got, want)
		}
	}
}

// TestClusterDomainNotServed: a member whose CoreDNS's kubernetes plugin does not serve its declared
// cluster domain is an error at that cluster's cluster_domain, naming both domains; so is one without the
// plugin. The plugin serving the domain among others, or through its block's key, is fine.
func TestClusterDomainNotServed(t *testing.T) {
	cases := map[string]struct {
		reason    string
		corefile  string
		wantLine  int    // of the diagnostic for b; 0: none
		wantInDet string // in its detail
	}{
		"EKS default": {reason: "b still serves cluster.local, not the cluster2.com the spec declares",
			corefile: corefile.EKSDefault, wantLine: 20, wantInDet: `Cluster "b" declares cluster domain cluster2.com, but its Corefile (kube-system/coredns) serves cluster.local, in-addr.arpa, ip6.arpa with its kubernetes plugin`},
		"no plugin": {reason: "a Corefile without the kubernetes plugin serves no cluster domain",
			corefile: ".:53 {\n    forward . /etc/resolv.conf\n}\n", wantLine: 20, wantInDet: "has no kubernetes plugin, so its CoreDNS serves no cluster domain"},
		"served among others": {reason: "zones as CoreDNS compares them (case, trailing dot) and alongside others",
			corefile: strings.Replace(corefile.EKSDefault, "kubernetes cluster.local ", "kubernetes old.local Cluster2.com. ", 1)},
		"block key": {reason: "a plugin without zones serves its block's keys",
			corefile: "cluster2.com:53 {\n    kubernetes\n}\n.:53 {\n    forward . /etc/resolv.conf\n}\n"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			w := newDomainWorld(t, map[string]string{"b": tc.corefile})
			_, diags := w.plan(false)
			if tc.wantLine == 0 {
				if len(diags) > 0 {
					t.Errorf("%s\nunexpected diagnostics: %v", tc.reason, diags)
				}
				return
			}
			if len(diags) != 1 {
				t.Fatalf("%s\nwant one diagnostic, got %v", tc.reason, diags)
			}
			d := diags[0]
			if d.Severity != hcl.DiagError || d.Summary != "Cluster domain not served" || d.Subject == nil ||
				d.Subject.Start.Line != tc.wantLine || !strings.Contains(d.Detail, tc.wantInDet) {
				t.Errorf("%s\ngot %s at %v: %s\nwant an error at line %d with %q", tc.reason, d.Summary, d.Subject, d.Detail, tc.wantLine, tc.wantInDet)
			}
			// Destroy needs no served domain: it only takes meshd's blocks out.
			if _, diags := w.plan(true); len(diags) > 0 {
				t.Errorf("destroy: %v", diags)
			}
		})
	}
}
