package plan_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"

	"github.com/meshd-io/meshd/internal/access"
	"github.com/meshd-io/meshd/internal/apply"
	"github.com/meshd-io/meshd/internal/corefile"
	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/plan/plantest"
	"github.com/meshd-io/meshd/internal/spec"
	"github.com/meshd-io/meshd/internal/state"
)

// k3sCorefile is the shape of k3s's Corefile: the main block imports *.override lines, and the file
// imports *.server blocks, both from the optional coredns-custom ConfigMap.
const k3sCorefile = `.:53 {
    errors
    health
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
      pods insecure
      fallthrough in-addr.arpa ip6.arpa
    }
    forward . /etc/resolv.conf
    cache 30
    loop
    reload
    loadbalance
    import /etc/coredns/custom/*.override
}
import /etc/coredns/custom/*.server
`

// lookups reads ConfigMaps from a map by "namespace/name" and counts the reads.
type lookups struct {
	cms   map[string]*model.ConfigMap
	reads []string
}

func (l *lookups) get(ns, name string) (*model.ConfigMap, error) {
	l.reads = append(l.reads, ns+"/"+name)
	return l.cms[ns+"/"+name], nil
}

func corefileCM(text string, labels map[string]string) *model.ConfigMap {
	return &model.ConfigMap{Labels: labels, Data: map[string]string{plan.CorefileKey: text}}
}

func TestDetectCorefile(t *testing.T) {
	aksCorefile := strings.Replace(strings.Replace(k3sCorefile, "/etc/coredns/custom/", "custom/", 2), "custom/*.server", "custom/*.server", 1)
	custom := &model.ConfigMap{Data: map[string]string{"log.override": "log"}}
	for _, c := range []struct {
		name     string
		cms      map[string]*model.ConfigMap
		eks      bool
		loc      spec.CorefileLocation
		want     model.CorefileSite
		custom   bool
		looked   []string
		notReads []string
	}{
		{name: "EKS add-on", eks: true,
			cms:      map[string]*model.ConfigMap{"kube-system/coredns": corefileCM(corefile.EKSDefault, map[string]string{"eks.amazonaws.com/component": "coredns"})},
			want:     model.CorefileSite{Namespace: "kube-system", Name: "coredns", Key: "Corefile", Layout: plan.LayoutEKSAddon},
			notReads: []string{"kube-system/" + plan.RKE2ConfigMap, "kube-system/" + plan.CustomConfigMap}},
		{name: "kubeadm", cms: map[string]*model.ConfigMap{"kube-system/coredns": corefileCM(corefile.EKSDefault, nil)},
			want: model.CorefileSite{Namespace: "kube-system", Name: "coredns", Key: "Corefile", Layout: plan.LayoutKubeadm}},
		{name: "k3s", cms: map[string]*model.ConfigMap{"kube-system/coredns": corefileCM(k3sCorefile, nil), "kube-system/coredns-custom": custom},
			want: model.CorefileSite{Namespace: "kube-system", Name: "coredns-custom", Key: "meshd.server", Import: true, Layout: plan.LayoutK3s}, custom: true},
		{name: "k3s without coredns-custom", cms: map[string]*model.ConfigMap{"kube-system/coredns": corefileCM(k3sCorefile, nil)},
			want: model.CorefileSite{Namespace: "kube-system", Name: "coredns-custom", Key: "meshd.server", Import: true, Layout: plan.LayoutK3s}},
		{name: "AKS", cms: map[string]*model.ConfigMap{"kube-system/coredns": corefileCM(aksCorefile, nil), "kube-system/coredns-custom": custom},
			want: model.CorefileSite{Namespace: "kube-system", Name: "coredns-custom", Key: "meshd.server", Import: true, Layout: plan.LayoutAKS}, custom: true},
		{name: "RKE2", cms: map[string]*model.ConfigMap{"kube-system/rke2-coredns-rke2-coredns": corefileCM(corefile.EKSDefault, nil)},
			want: model.CorefileSite{Namespace: "kube-system", Name: "rke2-coredns-rke2-coredns", Key: "Corefile", Layout: plan.LayoutRKE2}},
		{name: "none", cms: map[string]*model.ConfigMap{"kube-system/coredns": {Data: map[string]string{"other": "x"}}},
			looked: []string{"kube-system/coredns", "kube-system/rke2-coredns-rke2-coredns"}},
		{name: "EKS Auto Mode", eks: true, looked: []string{"kube-system/coredns"}},
		{name: "spec names an edited Corefile", loc: spec.CorefileLocation{Namespace: "dns", Name: "my-coredns", Key: "Corefile.main"},
			cms:      map[string]*model.ConfigMap{"dns/my-coredns": {Data: map[string]string{"Corefile.main": corefile.EKSDefault}}, "kube-system/coredns": corefileCM(corefile.EKSDefault, nil)},
			want:     model.CorefileSite{Namespace: "dns", Name: "my-coredns", Key: "Corefile.main", Layout: plan.LayoutSpec},
			notReads: []string{"kube-system/coredns"}},
		{name: "spec names an import ConfigMap", loc: spec.CorefileLocation{Namespace: "kube-system", Name: "dns-extra", Key: spec.ImportKey, Import: true},
			want: model.CorefileSite{Namespace: "kube-system", Name: "dns-extra", Key: "meshd.server", Import: true, Layout: plan.LayoutSpec}},
		{name: "spec names a ConfigMap that is not there", loc: spec.CorefileLocation{Namespace: "dns", Name: "gone", Key: "Corefile"},
			looked: []string{"dns/gone key Corefile"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			cl := &spec.Cluster{Name: "a", DNS: spec.ClusterDNS{Corefile: c.loc}}
			if c.eks {
				cl.EKSCluster = "a"
			}
			l := &lookups{cms: c.cms}
			o, err := plan.DetectCorefile(&spec.Mesh{Clusters: []*spec.Cluster{cl}}, cl, l.get)
			if err != nil {
				t.Fatal(err)
			}
			if o.Site != c.want {
				t.Errorf("site %+v, want %+v", o.Site, c.want)
			}
			if (o.Custom != nil) != c.custom {
				t.Errorf("custom ConfigMap read: %v, want %v", o.Custom != nil, c.custom)
			}
			if !slices.Equal(o.Looked, c.looked) {
				t.Errorf("looked for %v, want %v", o.Looked, c.looked)
			}
			for _, r := range c.notReads {
				if slices.Contains(l.reads, r) {
					t.Errorf("read %s (reads: %v)", r, l.reads)
				}
			}
		})
	}
}

// An EKS member is granted (and watched for) kube-system/coredns only; a member that names its Corefile,
// that one only; any other member the layouts meshd recognises.
func TestCorefileCandidatesNarrowTheRBAC(t *testing.T) {
	eks := &spec.Cluster{Name: "e", EKSCluster: "e"}
	named := &spec.Cluster{Name: "n", DNS: spec.ClusterDNS{Corefile: spec.CorefileLocation{Namespace: "dns", Name: "cd", Key: "Corefile"}}}
	other := &spec.Cluster{Name: "o"}
	m := &spec.Mesh{Clusters: []*spec.Cluster{eks, named, other}}
	var got []string
	var rules []access.Rule
	for _, c := range m.Clusters {
		rules = append(rules, plan.RBACOf(m, c.Name)...)
	}
	for _, r := range rules {
		if r.Resource == "configmaps" && len(r.Names) > 0 && slices.Contains(r.Verbs, "update") {
			got = append(got, r.Cluster+":"+r.Namespace+"/"+strings.Join(r.Names, ","))
		}
	}
	slices.Sort(got)
	want := []string{"e:kube-system/coredns", "n:dns/cd", "o:kube-system/coredns,rke2-coredns-rke2-coredns", "o:kube-system/coredns-custom"}
	if !slices.Equal(got, want) {
		t.Errorf("ConfigMaps meshd may update: %v, want %v", got, want)
	}
}

// A NodeLocal DNSCache needs meshd's blocks only for zones outside its cluster's domain: none in namespace
// mode between members that share cluster.local, the other members' zones when a member has another
// domain, and every other member's domain in cluster-domain mode. Each plan applies, and the next is empty.
func TestNodeLocalZonesFollowTheDomains(t *testing.T) {
	for _, c := range []struct {
		name      string
		forwardBy string
		domains   map[string]string
		want      []string
	}{
		{"namespace mode, one domain", spec.ForwardByNamespace, nil, nil},
		{"namespace mode, c has its own domain", spec.ForwardByNamespace, map[string]string{"c": "c.local"}, []string{"ns-c.svc.c.local"}},
		{"cluster-domain mode", spec.ForwardByClusterDomain, map[string]string{"a": "a.local", "b": "cluster.local", "c": "c.local"}, []string{"a.local", "c.local"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			w, members := fixture()
			w.ForwardBy = c.forwardBy
			for i := range members {
				members[i].Namespace = "ns-" + members[i].Name
				members[i].ClusterDomain = c.domains[members[i].Name]
			}
			w.PutNodeLocal("b", plantest.NodeLocalCorefile("cluster.local"))
			st := state.New("tidb")
			p := plan.Compute(w.Input(members, st, false))
			if len(p.Conflicts) > 0 {
				t.Fatalf("conflicts: %+v", p.Conflicts)
			}
			var got []string
			if ch := p.Find(plan.NodeLocalAddress("b")); ch != nil {
				got = ch.After.(plan.NodeLocalDNS).Zones
			}
			if !slices.Equal(got, c.want) {
				t.Fatalf("zones for b's cache: %v, want %v", got, c.want)
			}
			if err := apply.Run(context.Background(), p, st, apply.Options{Executors: w.Executors()}).Err(); err != nil {
				t.Fatal(err)
			}
			if next := plan.Compute(w.Input(members, st, false)); next.HasChanges() {
				t.Errorf("the plan after apply is not empty")
			}
			if now, _ := w.NodeLocal("b"); len(c.want) > 0 && !strings.Contains(now, "forward . __PILLAR__CLUSTER__DNS__ {\n        force_tcp") {
				t.Errorf("b's cache Corefile after apply has no block routed to __PILLAR__CLUSTER__DNS__:\n%s", now)
			}
		})
	}
}

// A member without a CoreDNS configuration meshd can write to (EKS Auto Mode here) is a warning at its
// cluster block, not a conflict: its DNS Service is still made, and the other members' Corefiles still get
// a block for it; only its own Corefile change is missing.
func TestNoCoreDNSIsAWarningAtTheCluster(t *testing.T) {
	w := newDNSWorld()
	w.world.DNS["b"] = model.DNSObserved{Looked: []string{"kube-system/coredns"}}
	w.world.Observed.EKSAutoMode = map[string]bool{"b": true}
	p := w.plan(false)
	if len(p.Conflicts) > 0 {
		t.Fatalf("conflicts: %+v", p.Conflicts)
	}
	if p.Find("corefile[b]") != nil || p.Find("dns_service[b]") == nil || p.Find("corefile[a]") == nil {
		t.Fatalf("want dns_service[b] and corefile[a] but no corefile[b]:\n%s", strings.Join(dnsLines(p), "\n"))
	}
	if got := p.Find("corefile[a]").After.(plan.Corefile).Blocks; !slices.ContainsFunc(got, func(b plan.CorefileBlock) bool { return b.Zone == zone("b") }) {
		t.Errorf("a's Corefile gets no block for b: %+v", got)
	}
	decl := hcl.Range{Filename: "mesh.hcl", Start: hcl.Pos{Line: 7, Column: 1}, End: hcl.Pos{Line: 7, Column: 14}}
	m := &spec.Mesh{Clusters: []*spec.Cluster{{Name: "b", BlockRanges: spec.BlockRanges{DeclRange: decl}}}}
	diags := plan.Check(m, w.members, w.world.Observed, p)
	var found bool
	for _, d := range diags {
		if d.Summary != "No CoreDNS configuration to write to" {
			continue
		}
		found = true
		if d.Severity != hcl.DiagWarning || d.Subject == nil || d.Subject.Start.Line != 7 || !strings.Contains(d.Detail, "EKS Auto Mode") {
			t.Errorf("diagnostic %s at %v: %s", map[hcl.DiagnosticSeverity]string{hcl.DiagError: "error", hcl.DiagWarning: "warning"}[d.Severity], d.Subject, d.Detail)
		}
	}
	if !found {
		t.Errorf("Check reports no missing CoreDNS: %v", diags)
	}
}
