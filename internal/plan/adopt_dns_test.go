package plan_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/meshd-io/meshd/internal/corefile"
	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/plan"
)

// runbookService is the Service the runbook has people create: its annotations, port 53/TCP without a
// name, the CoreDNS selector, and none of meshd's labels.
func runbookService() model.ServiceSpec {
	return model.ServiceSpec{Type: "LoadBalancer",
		Annotations: map[string]string{plan.AnnotationLBType: "nlb", plan.AnnotationLBInternal: "true", plan.AnnotationLBCrossZone: "true"},
		Labels:      map[string]string{"team": "dba"},
		Selector:    map[string]string{"k8s-app": "kube-dns"},
		Ports:       []model.ServicePort{{Protocol: "TCP", Port: 53, TargetPort: "53"}}}
}

// runbookBlock is a server block as the runbook writes it by hand (no marker).
func runbookBlock(zone string, ips []string) string {
	return fmt.Sprintf("%s:53 {\n    errors\n    cache 30\n    forward . %s {\n        force_tcp\n    }\n}\n",
		zone, strings.Join(ips, " "))
}

// byRunbook sets every cluster up as the runbook does: its Service with a ready NLB, and in its Corefile
// (EKS's default plus a comment of the user's) a block per other cluster forwarding to that cluster's NLB.
// forward overrides, by "<cluster>/<zone cluster>", what a block forwards to. It returns the Corefiles.
func (w *dnsWorld) byRunbook(forward map[string][]string) map[string]string {
	texts := map[string]string{}
	for _, m := range w.members {
		w.setService(m.Name, runbookService(), w.ips[m.Name])
		text := corefile.EKSDefault + "\n# cross-cluster DNS, by the runbook\n"
		for _, other := range w.members {
			if other.Name == m.Name {
				continue
			}
			ips := w.ips[other.Name]
			if f, ok := forward[m.Name+"/"+other.Name]; ok {
				ips = f
			}
			text += "\n" + runbookBlock(zone(other.Name), ips)
		}
		o := w.obs[m.Name]
		o.CoreDNS = &model.ConfigMap{Data: map[string]string{"Corefile": text}}
		w.obs[m.Name] = o
		texts[m.Name] = text
	}
	return texts
}

func (w *dnsWorld) planAdopt(adopt bool) *plan.Plan {
	return plan.Compute(plan.Input{Mesh: "tidb", Adopt: adopt, Members: w.members, Observed: w.world.Observed, State: w.st,
		DNS: w.world.DNSInput("namespace")})
}

// TestAdoptRunbookDNS: a DNS setup made by hand with the runbook is a conflict without adopt = true and
// nothing changes; with it, the Services and the blocks that forward to the members' NLBs are adopted (>),
// the Services keep their load balancers, the blocks are rewritten in place as meshd's (marker added) with
// every other byte of the Corefile unchanged, the zones are recorded, and the next plan is empty.
func TestAdoptRunbookDNS(t *testing.T) {
	t.Run("without adopt", func(t *testing.T) {
		w := newDNSWorld()
		texts := w.byRunbook(nil)
		p := w.planAdopt(false)
		want := []string{
			"! dns_service[a]: Cluster a already has a Service kube-system/across-cluster-dns-tcp that meshd does not own",
			"! dns_service[b]: Cluster b already has a Service kube-system/across-cluster-dns-tcp that meshd does not own",
			"! dns_service[c]: Cluster c already has a Service kube-system/across-cluster-dns-tcp that meshd does not own",
		}
		if diff := cmp.Diff(want, dnsLines(p)); diff != "" {
			t.Errorf("plan (-want, +got):\n%s", diff)
		}
		if !strings.Contains(p.Conflicts[0].Detail, "set adopt = true") {
			t.Errorf("the conflict does not say adopt = true takes the Service over: %s", p.Conflicts[0].Detail)
		}
		if res := w.apply(p); res.Err() != nil {
			t.Fatal(res.Err())
		}
		for name, text := range texts {
			if got := w.world.Corefile(name); got != text {
				t.Errorf("%s's Corefile changed without adopt:\n%s", name, got)
			}
			if labels := w.obs[name].Service.Spec.Labels; model.OwnedBy(labels, "tidb") {
				t.Errorf("%s's Service was labelled without adopt", name)
			}
		}
	})

	t.Run("with adopt", func(t *testing.T) {
		w := newDNSWorld()
		texts := w.byRunbook(nil)
		p := w.planAdopt(true)
		want := []string{
			"> dns_service[a]: exists, not owned (made by hand, as the runbook does): adopt (label as meshd's); its ports, source ranges are set to meshd's in place",
			"> dns_service[b]: exists, not owned (made by hand, as the runbook does): adopt (label as meshd's); its ports, source ranges are set to meshd's in place",
			"> dns_service[c]: exists, not owned (made by hand, as the runbook does): adopt (label as meshd's); its ports, source ranges are set to meshd's in place",
			"> corefile[a]: adopt the hand-written blocks for ns-b.svc.cluster.local, ns-c.svc.cluster.local (they forward to those clusters' load balancers; rewritten in place as meshd's)",
			"> corefile[b]: adopt the hand-written blocks for ns-a.svc.cluster.local, ns-c.svc.cluster.local (they forward to those clusters' load balancers; rewritten in place as meshd's)",
			"> corefile[c]: adopt the hand-written blocks for ns-a.svc.cluster.local, ns-b.svc.cluster.local (they forward to those clusters' load balancers; rewritten in place as meshd's)",
		}
		if diff := cmp.Diff(want, dnsLines(p)); diff != "" {
			t.Errorf("plan (-want, +got):\n%s", diff)
		}
		lbs := map[string]model.LoadBalancer{}
		for name, o := range w.obs {
			lbs[name] = *o.LoadBalancer
		}
		if res := w.apply(p); res.Err() != nil {
			t.Fatal(res.Err())
		}
		for _, m := range w.members {
			wantText := texts[m.Name]
			for _, other := range w.members {
				if other.Name != m.Name {
					blk := runbookBlock(zone(other.Name), w.ips[other.Name])
					wantText = strings.Replace(wantText, blk, corefile.Marker("tidb")+"\n"+blk, 1)
				}
			}
			if diff := cmp.Diff(wantText, w.world.Corefile(m.Name)); diff != "" {
				t.Errorf("%s's Corefile: only a marker above each adopted block may change (-want, +got):\n%s", m.Name, diff)
			}
			o := w.obs[m.Name]
			if diff := cmp.Diff(lbs[m.Name], *o.LoadBalancer); diff != "" {
				t.Errorf("%s's load balancer changed (-before, +after):\n%s", m.Name, diff)
			}
			if !model.OwnedBy(o.Service.Spec.Labels, "tidb") || o.Service.Spec.Labels["team"] != "dba" {
				t.Errorf("%s's Service labels after adoption: %v", m.Name, o.Service.Spec.Labels)
			}
			if got := len(w.st.CorefileZones(m.Name)); got != 2 {
				t.Errorf("%s: the state records %d zones, want 2", m.Name, got)
			}
		}
		if next := w.planAdopt(true); next.HasChanges() || len(next.Conflicts) > 0 {
			t.Errorf("the plan after adoption is not empty:\n%s", strings.Join(dnsLines(next), "\n"))
		}
		// Once adopted, the blocks are meshd's: adopt = true is no longer needed for them.
		if next := w.planAdopt(false); next.HasChanges() || len(next.Conflicts) > 0 {
			t.Errorf("the plan after adoption, without adopt, is not empty:\n%s", strings.Join(dnsLines(next), "\n"))
		}
	})

	t.Run("block forwarding elsewhere", func(t *testing.T) {
		w := newDNSWorld()
		texts := w.byRunbook(map[string][]string{"a/b": {"10.9.9.9"}})
		p := w.planAdopt(true)
		got := dnsLinesWith(p, "corefile[a]")
		want := []string{
			"> corefile[a]: adopt the hand-written blocks for ns-c.svc.cluster.local (they forward to those clusters' load balancers; rewritten in place as meshd's)",
			"! corefile[a]: The Corefile of cluster a already serves zone ns-b.svc.cluster.local in a block meshd did not write",
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("corefile[a] (-want, +got):\n%s", diff)
		}
		for _, c := range p.Conflicts {
			if c.Address == "corefile[a]" && !strings.Contains(c.Detail, "adopt = true does not take it over: the block at line 21 forwards to 10.9.9.9, not to 10.2.0.10 10.2.1.10") {
				t.Errorf("the conflict does not say why the block is not adopted: %s", c.Detail)
			}
		}
		if res := w.apply(p); res.Err() != nil {
			t.Fatal(res.Err())
		}
		blk := runbookBlock(zone("b"), []string{"10.9.9.9"})
		if got := w.world.Corefile("a"); !strings.Contains(got, "\n\n"+blk) || !strings.Contains(texts["a"], "\n\n"+blk) {
			t.Errorf("a's block for ns-b forwarding elsewhere was touched:\n%s", got)
		}
		if next := w.planAdopt(true); next.HasChanges() || len(next.Conflicts) != 1 {
			t.Errorf("the next plan should hold only the conflict:\n%s", strings.Join(dnsLines(next), "\n"))
		}
	})

	t.Run("block changed since the plan", func(t *testing.T) {
		w := newDNSWorld()
		w.byRunbook(nil)
		p := w.planAdopt(true)
		// Someone points a's block for b elsewhere between plan and apply: the adoption is refused at apply.
		o := w.obs["a"]
		changed := strings.Replace(o.CoreDNS.Data["Corefile"], "forward . 10.2.0.10 10.2.1.10", "forward . 10.9.9.9", 1)
		o.CoreDNS = &model.ConfigMap{Data: map[string]string{"Corefile": changed}}
		w.obs["a"] = o
		res := w.apply(p)
		if err := res.Err(); err == nil || !strings.Contains(err.Error(), "the hand-written block for ns-b.svc.cluster.local changed since the plan") {
			t.Errorf("apply: %v; want the adoption of a's block refused", err)
		}
		if got := w.world.Corefile("a"); got != changed {
			t.Errorf("a's Corefile was written although its block changed since the plan:\n%s", got)
		}
		if zones := w.st.CorefileZones("a"); len(zones) != 0 {
			t.Errorf("the state records %v for a", zones)
		}
	})

	t.Run("another mesh's Service", func(t *testing.T) {
		w := newDNSWorld()
		w.byRunbook(nil)
		spec := runbookService()
		spec.Labels = plan.OwnerLabels("other")
		w.setService("b", spec, w.ips["b"])
		p := w.planAdopt(true)
		got := dnsLinesWith(p, "[b]")
		want := []string{
			"> corefile[b]: adopt the hand-written blocks for ns-a.svc.cluster.local, ns-c.svc.cluster.local (they forward to those clusters' load balancers; rewritten in place as meshd's)",
			"! dns_service[b]: Cluster b already has a Service kube-system/across-cluster-dns-tcp that meshd does not own",
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("cluster b (-want, +got):\n%s", diff)
		}
		// The others' blocks for b stay as they are: meshd does not know b's addresses as its own.
		for _, c := range []string{"a", "c"} {
			for _, ch := range p.Changes {
				if ch.Address == plan.CorefileAddress(c) {
					if adopted := ch.After.(plan.Corefile).Adopted; len(adopted) != 1 || adopted[0] == zone("b") {
						t.Errorf("corefile[%s] adopts %v; want only the block of the cluster that is not b", c, adopted)
					}
				}
			}
		}
	})
}

// dnsLinesWith are the lines of dnsLines(p) that contain part.
func dnsLinesWith(p *plan.Plan, part string) []string {
	var out []string
	for _, l := range dnsLines(p) {
		if strings.Contains(l, part) {
			out = append(out, l)
		}
	}
	return out
}
