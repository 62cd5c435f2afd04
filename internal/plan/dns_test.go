package plan_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/meshd-io/meshd/internal/apply"
	"github.com/meshd-io/meshd/internal/corefile"
	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/plan/plantest"
	"github.com/meshd-io/meshd/internal/planfile"
	"github.com/meshd-io/meshd/internal/planview"
	"github.com/meshd-io/meshd/internal/state"
)

// dnsWorld is the fixture's three clusters a, b and c with namespaces ns-a, ns-b and ns-c, on both sides: the
// AWS world and each cluster's DNS objects (world.DNS, also obs), where the load balancer of a cluster's DNS
// Service gets the addresses in ips (world.LoadBalancerAddresses).
type dnsWorld struct {
	world   *plantest.World
	members []model.Member
	st      *state.State
	obs     map[string]model.DNSObserved
	ips     map[string][]string
}

func newDNSWorld() *dnsWorld {
	world, members := fixture()
	for i := range members {
		members[i].KubeContext = "ctx-" + members[i].Name
		members[i].Namespace = "ns-" + members[i].Name
	}
	world.LoadBalancerAddresses = map[string][]string{"a": {"10.1.0.10", "10.1.1.10"}, "b": {"10.2.0.10", "10.2.1.10"}, "c": {"10.3.0.10"}}
	return &dnsWorld{world: world, members: members, st: state.New("tidb"), obs: world.DNS, ips: world.LoadBalancerAddresses}
}

// desired is what meshd wants of cluster's DNS Service: DesiredDNSService with the other clusters' blocks as
// its source ranges.
func (w *dnsWorld) desired(cluster string) model.ServiceSpec {
	spec := plan.DesiredDNSService("tidb")
	for _, m := range w.members {
		if m.Name == cluster {
			spec.SourceRanges = plan.DNSSourceRanges(m, w.members)
		}
	}
	return spec
}

// tooManyAddresses are 16 NLB addresses, one more than CoreDNS's forward accepts.
func tooManyAddresses() []string {
	var ips []string
	for i := range 16 {
		ips = append(ips, fmt.Sprintf("10.2.%d.10", i))
	}
	return ips
}

// unobservedWarning is the plan's warning for a cluster that could not be observed.
func unobservedWarning(cluster string) string {
	return fmt.Sprintf(`warning: Cluster %q could not be observed through kube context "ctx-%s": its DNS Service and Corefile `+
		`are left as they are, and the other clusters' Corefiles keep their blocks for it unchanged.`, cluster, cluster)
}

func zone(name string) string { return "ns-" + name + ".svc.cluster.local" }

// converge applies a full plan, so that every Service is ready, every Corefile has the other clusters'
// blocks, the backups are saved and the zones recorded (and the AWS side is meshed), and checks that the
// next plan has nothing left to do.
func (w *dnsWorld) converge(t *testing.T) *dnsWorld {
	t.Helper()
	if res := w.apply(w.plan(false)); res.Err() != nil {
		t.Fatalf("apply: %v", res.Err())
	}
	if p := w.plan(false); p.HasChanges() || len(p.Conflicts) > 0 {
		t.Fatalf("the plan after a full apply is not empty:\n%s", strings.Join(dnsLines(p), "\n"))
	}
	return w
}

// apply applies a plan to the world (its changes, as the daemon does; conflicts are left alone).
func (w *dnsWorld) apply(p *plan.Plan) *apply.Result {
	return apply.Run(context.Background(), p, w.st, apply.Options{Executors: w.world.Executors()})
}

// setService makes cluster's Service ready with the given spec and NLB addresses.
func (w *dnsWorld) setService(cluster string, spec model.ServiceSpec, ips []string) {
	region := ""
	for _, m := range w.members {
		if m.Name == cluster {
			region = m.Region
		}
	}
	host := fmt.Sprintf("k8s-kubesyst-acrossc-%s.elb.%s.amazonaws.com", cluster, region)
	o := w.obs[cluster]
	o.Service = &model.Service{Spec: spec, Hostname: host}
	o.LoadBalancer = &model.LoadBalancer{Name: "k8s-" + cluster, DNSName: host, State: model.LoadBalancerActive, Addresses: ips}
	w.obs[cluster] = o
}

// setCorefile merges the other clusters' blocks into base as an apply would, and records the zones.
func (w *dnsWorld) setCorefile(t *testing.T, cluster, base string) {
	t.Helper()
	var blocks []corefile.Block
	for _, m := range w.members {
		if m.Name != cluster {
			blocks = append(blocks, corefile.Block{Zone: zone(m.Name), Upstreams: w.ips[m.Name]})
		}
	}
	out, rep, err := corefile.Merge(base, "tidb", nil, blocks)
	if err != nil {
		t.Fatal(err)
	}
	o := w.obs[cluster]
	o.CoreDNS = &model.ConfigMap{Data: map[string]string{"Corefile": out}, Managers: o.CoreDNS.Managers}
	w.obs[cluster] = o
	w.st.SetCorefileZones(cluster, rep.Owned)
}

func (w *dnsWorld) plan(destroy bool) *plan.Plan {
	return plan.Compute(plan.Input{Mesh: "tidb", Members: w.members, Observed: w.world.Observed, State: w.st,
		Destroy: destroy, DNS: w.world.DNSInput("namespace")})
}

// unobserve makes a cluster unreadable, as an unreachable API server does: no observation at all.
func (w *dnsWorld) unobserve(cluster string) *dnsWorld {
	if w.world.Unobserved == nil {
		w.world.Unobserved = map[string]bool{}
	}
	w.world.Unobserved[cluster] = true
	return w
}

// revert puts EKS's default Corefile back in a cluster, as an add-on update does.
func (w *dnsWorld) revert(cluster string) *dnsWorld {
	w.world.RevertCorefile(cluster)
	return w
}

// dnsLines renders the DNS changes as "<action> <address>: <reason> [<- dependencies]", conflicts as
// "! <address>: <summary>", warnings as "warning: <text>".
func dnsLines(p *plan.Plan) []string {
	var out []string
	for _, c := range p.Changes {
		if c.Kind != plan.KindDNSService && c.Kind != plan.KindCorefile {
			continue
		}
		l := fmt.Sprintf("%s %s: %s", c.Action, c.Address, c.Reason)
		if len(c.DependsOn) > 0 {
			l += " <- " + strings.Join(c.DependsOn, ", ")
		}
		out = append(out, l)
	}
	for _, c := range p.Conflicts {
		out = append(out, fmt.Sprintf("! %s: %s", c.Address, c.Summary))
	}
	for _, wr := range p.Warnings {
		out = append(out, "warning: "+wr)
	}
	return out
}

func TestComputeDNS(t *testing.T) {
	cases := map[string]struct {
		reason string
		world  func(t *testing.T) *dnsWorld
		remove string // a cluster taken out of the spec
		// destroy plans the removal of everything.
		destroy bool
		want    []string
		// failed are the changes that fail or are skipped when the plan is applied.
		failed []string
		// next is what the plan after applying the first one still shows, for a case that does not
		// converge (a conflict, an unobserved cluster, a load balancer that never comes); nil: it converges,
		// the next plan has no changes.
		next []string
	}{
		"create from empty": {
			reason: "Every Service is created; every Corefile waits for the OTHER clusters' NLB addresses.",
			world:  func(*testing.T) *dnsWorld { return newDNSWorld() },
			want: []string{
				"+ dns_service[a]: DNS Service missing",
				"+ dns_service[b]: DNS Service missing",
				"+ dns_service[c]: DNS Service missing",
				"~ corefile[a]: add blocks for ns-b.svc.cluster.local, ns-c.svc.cluster.local <- dns_service[b], dns_service[c]",
				"~ corefile[b]: add blocks for ns-a.svc.cluster.local, ns-c.svc.cluster.local <- dns_service[a], dns_service[c]",
				"~ corefile[c]: add blocks for ns-a.svc.cluster.local, ns-b.svc.cluster.local <- dns_service[a], dns_service[b]",
			},
		},
		"converged": {
			reason: "A converged mesh plans nothing, and server-set fields of the Service are no difference.",
			world: func(t *testing.T) *dnsWorld {
				w := newDNSWorld().converge(t)
				spec := w.desired("b")
				spec.Annotations["kubectl.kubernetes.io/last-applied-configuration"] = "{}"
				spec.Labels["team"] = "dba"
				slices.Reverse(spec.SourceRanges) // as a set: the order the API server returns is no difference
				spec.SourceRanges = append(spec.SourceRanges, spec.SourceRanges[0])
				w.setService("b", spec, []string{"10.2.1.10", "10.2.0.10"})
				return w
			},
		},
		"corefile reverted": {
			reason: "A Corefile put back to the original by hand shows as an update that restores meshd's blocks.",
			world: func(t *testing.T) *dnsWorld {
				w := newDNSWorld().converge(t)
				w.obs["a"].CoreDNS.Data["Corefile"] = corefile.EKSDefault
				return w
			},
			want: []string{"~ corefile[a]: restore blocks removed outside meshd for ns-b.svc.cluster.local, ns-c.svc.cluster.local"},
		},
		"NLB addresses changed": {
			reason: "New addresses of b's NLB update the blocks for b in the other Corefiles, without waiting.",
			world: func(t *testing.T) *dnsWorld {
				w := newDNSWorld().converge(t)
				w.setService("b", w.desired("b"), []string{"10.2.0.99", "10.2.1.10"})
				return w
			},
			want: []string{
				"~ corefile[a]: update blocks for ns-b.svc.cluster.local",
				"~ corefile[c]: update blocks for ns-b.svc.cluster.local",
			},
		},
		"load balancer not ready": {
			reason: "An owned Service without an active NLB is an update that waits for it; the others' Corefiles wait too.",
			world: func(t *testing.T) *dnsWorld {
				w := newDNSWorld().converge(t)
				w.obs["c"].LoadBalancer.State = "provisioning"
				return w
			},
			want: []string{
				"~ dns_service[c]: waiting for its load balancer: NLB k8s-c is provisioning",
				"~ corefile[a]: update blocks for ns-c.svc.cluster.local <- dns_service[c]",
				"~ corefile[b]: update blocks for ns-c.svc.cluster.local <- dns_service[c]",
			},
		},
		"service deleted out of band": {
			reason: "A DNS Service someone deleted is created again, and the others' blocks for it wait for its new load balancer.",
			world: func(t *testing.T) *dnsWorld {
				w := newDNSWorld().converge(t)
				w.world.DeleteService("b")
				return w
			},
			want: []string{
				"+ dns_service[b]: DNS Service missing",
				"~ corefile[a]: update blocks for ns-b.svc.cluster.local <- dns_service[b]",
				"~ corefile[c]: update blocks for ns-b.svc.cluster.local <- dns_service[b]",
			},
		},
		"load balancer never comes": {
			reason: "A load balancer that never becomes ready fails its Service's change, the Corefiles waiting for it are skipped, and the next plan waits again.",
			world: func(t *testing.T) *dnsWorld {
				w := newDNSWorld().converge(t)
				w.obs["c"].LoadBalancer.State = "provisioning"
				w.world.StuckLoadBalancers = map[string]bool{"c": true}
				return w
			},
			want: []string{
				"~ dns_service[c]: waiting for its load balancer: NLB k8s-c is provisioning",
				"~ corefile[a]: update blocks for ns-c.svc.cluster.local <- dns_service[c]",
				"~ corefile[b]: update blocks for ns-c.svc.cluster.local <- dns_service[c]",
			},
			failed: []string{"corefile[a]", "corefile[b]", "dns_service[c]"},
			next: []string{
				"~ dns_service[c]: waiting for its load balancer: NLB k8s-c is provisioning",
				"~ corefile[a]: update blocks for ns-c.svc.cluster.local <- dns_service[c]",
				"~ corefile[b]: update blocks for ns-c.svc.cluster.local <- dns_service[c]",
			},
		},
		"service spec differs": {
			reason: "A changed selector of meshd's Service is put back; the NLB is ready, so the Corefiles stay.",
			world: func(t *testing.T) *dnsWorld {
				w := newDNSWorld().converge(t)
				spec := w.desired("a")
				spec.Selector = map[string]string{"app": "other"}
				w.setService("a", spec, w.ips["a"])
				return w
			},
			want: []string{"~ dns_service[a]: the Service's selector differs from meshd's"},
		},
		"user block for a desired zone": {
			reason: "A user's block serving b's zone in a's Corefile is a conflict, never replaced.",
			world: func(t *testing.T) *dnsWorld {
				w := newDNSWorld().converge(t)
				w.st.SetCorefileZones("a", nil)
				w.obs["a"].CoreDNS.Data["Corefile"] = corefile.EKSDefault + "\n# the DBA team's\nns-b.svc.cluster.local:53 {\n    forward . 10.9.9.9\n}\n"
				return w
			},
			want: []string{
				"~ corefile[a]: add blocks for ns-c.svc.cluster.local",
				"! corefile[a]: The Corefile of cluster a already serves zone ns-b.svc.cluster.local in a block meshd did not write",
			},
			next: []string{
				"! corefile[a]: The Corefile of cluster a already serves zone ns-b.svc.cluster.local in a block meshd did not write",
			},
		},
		"service not owned": {
			reason: "A Service of that name without meshd's labels is a conflict; nothing is planned for b's zone, the other blocks are.",
			world: func(t *testing.T) *dnsWorld {
				w := newDNSWorld()
				spec := plan.DesiredDNSService("tidb")
				spec.Labels = map[string]string{"app": "mine"}
				w.setService("b", spec, w.ips["b"])
				return w
			},
			want: []string{
				"+ dns_service[a]: DNS Service missing",
				"+ dns_service[c]: DNS Service missing",
				"~ corefile[a]: add blocks for ns-c.svc.cluster.local <- dns_service[c]",
				"~ corefile[b]: add blocks for ns-a.svc.cluster.local, ns-c.svc.cluster.local <- dns_service[a], dns_service[c]",
				"~ corefile[c]: add blocks for ns-a.svc.cluster.local <- dns_service[a]",
				"! dns_service[b]: Cluster b already has a Service kube-system/across-cluster-dns-tcp that meshd does not own",
			},
			next: []string{
				"! dns_service[b]: Cluster b already has a Service kube-system/across-cluster-dns-tcp that meshd does not own",
			},
		},
		"destroy": {
			reason:  "Destroy cuts meshd's blocks (and the backups) before the Services they forward to go.",
			world:   func(t *testing.T) *dnsWorld { return newDNSWorld().converge(t) },
			destroy: true,
			want: []string{
				"~ corefile[a]: destroy: remove meshd's blocks and the backup",
				"~ corefile[b]: destroy: remove meshd's blocks and the backup",
				"~ corefile[c]: destroy: remove meshd's blocks and the backup",
				"- dns_service[a]: destroy <- corefile[b], corefile[c]",
				"- dns_service[b]: destroy <- corefile[a], corefile[c]",
				"- dns_service[c]: destroy <- corefile[a], corefile[b]",
			},
		},
		"cluster left the mesh": {
			reason: "A cluster taken out of the spec loses its Service and blocks; the others drop its block first.",
			world:  func(t *testing.T) *dnsWorld { return newDNSWorld().converge(t) },
			remove: "c",
			want: []string{
				// c's blocks leave a's and b's source ranges.
				"~ dns_service[a]: the Service's source ranges differ from meshd's",
				"~ dns_service[b]: the Service's source ranges differ from meshd's",
				"~ corefile[a]: remove blocks for ns-c.svc.cluster.local",
				"~ corefile[b]: remove blocks for ns-c.svc.cluster.local",
				"~ corefile[c]: cluster left the mesh: remove meshd's blocks and the backup",
				"- dns_service[c]: cluster left the mesh <- corefile[a], corefile[b]",
			},
		},
		"cluster left the mesh while another is unreachable": {
			reason: "The Service of a cluster that left stays while an unobserved Corefile may still forward to it.",
			world:  func(t *testing.T) *dnsWorld { return newDNSWorld().converge(t).unobserve("b") },
			remove: "c",
			want: []string{
				"~ dns_service[a]: the Service's source ranges differ from meshd's",
				"~ corefile[a]: remove blocks for ns-c.svc.cluster.local",
				"~ corefile[c]: cluster left the mesh: remove meshd's blocks and the backup",
				unobservedWarning("b"),
				"warning: The DNS Service of cluster c is kept: the Corefile of b may still forward to it and is not corrected in this plan (see the conflicts and warnings). It is deleted once no Corefile forwards to it.",
			},
			next: []string{
				// The state keeps c as a former member (Plan.Retain), so each later plan still finds c's
				// Service, and deletes it once b can be read again.
				unobservedWarning("b"),
				"warning: The DNS Service of cluster c is kept: the Corefile of b may still forward to it and is not corrected in this plan (see the conflicts and warnings). It is deleted once no Corefile forwards to it.",
			},
		},
		"cluster left the mesh, a Corefile held back": {
			reason: "The Service of a cluster that left stays while a Corefile that cannot be corrected still forwards to it.",
			world: func(t *testing.T) *dnsWorld {
				w := newDNSWorld().converge(t)
				// A user's block right after meshd's block for c, on the same line as its closing brace: cutting
				// c's block would change how the user's text reads, so the Corefile of a is not corrected.
				text := w.obs["a"].CoreDNS.Data["Corefile"]
				w.obs["a"].CoreDNS.Data["Corefile"] = strings.TrimSuffix(text, "}\n") + "}#x user.example {\n}\n"
				return w
			},
			remove: "c",
			want: []string{
				"~ dns_service[a]: the Service's source ranges differ from meshd's",
				"~ dns_service[b]: the Service's source ranges differ from meshd's",
				"~ corefile[b]: remove blocks for ns-c.svc.cluster.local",
				"~ corefile[c]: cluster left the mesh: remove meshd's blocks and the backup",
				"! corefile[a]: Cannot update meshd's blocks in the Corefile of cluster a",
				"warning: The DNS Service of cluster c is kept: the Corefile of a may still forward to it and is not corrected in this plan (see the conflicts and warnings). It is deleted once no Corefile forwards to it.",
			},
			next: []string{
				// As above: the state keeps c (Plan.Retain), so its Service is still found, and kept.
				"! corefile[a]: Cannot update meshd's blocks in the Corefile of cluster a",
				"warning: The DNS Service of cluster c is kept: the Corefile of a may still forward to it and is not corrected in this plan (see the conflicts and warnings). It is deleted once no Corefile forwards to it.",
			},
		},
		"EKS add-on manages CoreDNS": {
			reason: "A Corefile whose managedFields show the eks manager gets a warning that an add-on update may revert it.",
			world: func(t *testing.T) *dnsWorld {
				w := newDNSWorld().converge(t)
				w.obs["b"].CoreDNS.Managers = []string{"eks", "kubectl"}
				return w
			},
			want: []string{`warning: The Corefile of cluster b is managed by the EKS CoreDNS add-on (field manager "eks"): an add-on update may revert it, removing meshd's blocks. meshd (the daemon) restores them on its next run; meshctl apply does the same.`},
		},
		"more than 15 addresses": {
			reason: "An NLB with more addresses than CoreDNS's forward accepts is refused, and no Corefile gets its block; the other blocks are planned.",
			world: func(t *testing.T) *dnsWorld {
				w := newDNSWorld()
				w.setService("b", w.desired("b"), tooManyAddresses())
				return w
			},
			want: []string{
				"+ dns_service[a]: DNS Service missing",
				"+ dns_service[c]: DNS Service missing",
				"~ corefile[a]: add blocks for ns-c.svc.cluster.local <- dns_service[c]",
				"~ corefile[b]: add blocks for ns-a.svc.cluster.local, ns-c.svc.cluster.local <- dns_service[a], dns_service[c]",
				"~ corefile[c]: add blocks for ns-a.svc.cluster.local <- dns_service[a]",
				"! dns_service[b]: The DNS load balancer of cluster b has 16 addresses; CoreDNS forwards to at most 15",
			},
			next: []string{
				"! dns_service[b]: The DNS load balancer of cluster b has 16 addresses; CoreDNS forwards to at most 15",
			},
		},
		"conflict keeps the current block": {
			reason: "When b's NLB is refused after the mesh converged, a's block for b keeps its addresses; a reverted Corefile gets its other blocks back.",
			world: func(t *testing.T) *dnsWorld {
				w := newDNSWorld().converge(t)
				w.setService("b", w.desired("b"), tooManyAddresses())
				return w.revert("a")
			},
			want: []string{
				"~ corefile[a]: restore blocks removed outside meshd for ns-c.svc.cluster.local",
				"! dns_service[b]: The DNS load balancer of cluster b has 16 addresses; CoreDNS forwards to at most 15",
			},
			next: []string{
				"! dns_service[b]: The DNS load balancer of cluster b has 16 addresses; CoreDNS forwards to at most 15",
			},
		},
		"cluster not observed": {
			reason: "An unreachable cluster is left alone and the others keep their blocks for it; a's lost block for it comes back with the addresses b's block has.",
			world: func(t *testing.T) *dnsWorld {
				return newDNSWorld().converge(t).unobserve("c").revert("a")
			},
			want: []string{
				"~ corefile[a]: restore blocks removed outside meshd for ns-b.svc.cluster.local, ns-c.svc.cluster.local",
				unobservedWarning("c"),
			},
			next: []string{unobservedWarning("c")},
		},
		"cluster not observed, its blocks disagree": {
			reason: "A block for an unobserved cluster is added back only with addresses the other Corefiles agree on.",
			world: func(t *testing.T) *dnsWorld {
				w := newDNSWorld().converge(t).unobserve("c").revert("a")
				// A second copy of meshd's block for c in b's Corefile, forwarding elsewhere.
				text := w.obs["b"].CoreDNS.Data["Corefile"]
				w.obs["b"].CoreDNS.Data["Corefile"] = text + "\n" + corefile.Marker("tidb") + "\n" +
					zone("c") + ":53 {\n    forward . 10.3.9.9\n}\n"
				return w
			},
			want: []string{
				"~ corefile[a]: restore blocks removed outside meshd for ns-b.svc.cluster.local",
				"~ corefile[b]: rewrite meshd's blocks",
				unobservedWarning("c"),
			},
			next: []string{
				// b's extra copy is gone, so the blocks for c agree now and a gets its block back.
				"~ corefile[a]: add blocks for ns-c.svc.cluster.local",
				unobservedWarning("c"),
			},
		},
		"cluster not observed, converged": {
			reason: "With the rest converged, an unreachable cluster changes nothing: b's and a's blocks for c stay.",
			world: func(t *testing.T) *dnsWorld {
				return newDNSWorld().converge(t).unobserve("c")
			},
			want: []string{
				unobservedWarning("c"),
			},
			next: []string{unobservedWarning("c")},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			w := tc.world(t)
			if tc.remove != "" {
				w.st.Members = map[string]model.Member{}
				for _, m := range w.members {
					w.st.Members[m.Name] = m
				}
				w.members = slices.DeleteFunc(w.members, func(m model.Member) bool { return m.Name == tc.remove })
			}
			p := w.plan(tc.destroy)
			if diff := cmp.Diff(tc.want, dnsLines(p)); diff != "" {
				t.Errorf("%s\nplan (-want, +got):\n%s", tc.reason, diff)
			}
			var unobserved []string
			for _, m := range w.members {
				if w.world.Unobserved[m.Name] {
					unobserved = append(unobserved, m.Name)
				}
			}
			if !slices.Equal(p.Unobserved, unobserved) {
				t.Errorf("plan.Unobserved = %v, want %v", p.Unobserved, unobserved)
			}

			// Apply the plan (its changes, as the daemon does) and plan again: it converges, unless the
			// case says what is still left.
			res := w.apply(p)
			var failed []string
			for addr := range res.Failed {
				failed = append(failed, addr)
			}
			for addr := range res.Skipped {
				failed = append(failed, addr)
			}
			slices.Sort(failed)
			if diff := cmp.Diff(tc.failed, failed); diff != "" {
				t.Errorf("%s\nchanges that did not apply (-want, +got):\n%s\n%v", tc.reason, diff, res.Err())
			}
			next := w.plan(tc.destroy)
			if tc.next == nil {
				if len(p.Conflicts) > 0 || len(p.Unobserved) > 0 || len(tc.failed) > 0 {
					t.Fatalf("the case does not converge (conflicts, unobserved clusters or failed changes): say what the next plan shows:\n%q", dnsLines(next))
				}
				if next.HasChanges() || len(next.Conflicts) > 0 {
					t.Errorf("%s\nplan after apply is not empty:\n%s", tc.reason, strings.Join(dnsLines(next), "\n"))
				}
				return
			}
			if diff := cmp.Diff(tc.next, dnsLines(next)); diff != "" {
				t.Errorf("%s\nplan after apply (-want, +got):\n%s", tc.reason, diff)
			}
		})
	}
}

// TestCorefileRevertedByTheAddOn: after the mesh converged, an update of the EKS CoreDNS add-on puts a's
// original Corefile back. The next plan is exactly one corefile change that restores meshd's blocks, and
// applying it writes the converged Corefile again, byte for byte, without touching the backup.
func TestCorefileRevertedByTheAddOn(t *testing.T) {
	w := newDNSWorld().converge(t)
	converged := w.world.Corefile("a")
	backup := w.obs["a"].Backup
	w.revert("a")
	if got := w.world.Corefile("a"); got != w.world.OriginalCorefile("a") {
		t.Fatalf("reverted Corefile:\n%s\nwant the original:\n%s", got, w.world.OriginalCorefile("a"))
	}

	p := w.plan(false)
	var changes []plan.Change
	for _, c := range p.Changes {
		if c.Action.IsChange() {
			changes = append(changes, c)
		}
	}
	if len(changes) != 1 || len(p.Conflicts) > 0 {
		t.Fatalf("plan after the revert, want one corefile change:\n%s", strings.Join(dnsLines(p), "\n"))
	}
	ch := changes[0]
	if ch.Kind != plan.KindCorefile || ch.Address != "corefile[a]" || ch.Action != plan.Update {
		t.Errorf("change %s %s, want ~ corefile[a]", ch.Action, ch.Address)
	}
	want := []plan.CorefileBlock{{Zone: zone("b"), Upstreams: w.ips["b"]}, {Zone: zone("c"), Upstreams: w.ips["c"]}}
	if diff := cmp.Diff(want, ch.After.(plan.Corefile).Blocks); diff != "" {
		t.Errorf("restored blocks (-want, +got):\n%s", diff)
	}
	if ch.Reason != "restore blocks removed outside meshd for ns-b.svc.cluster.local, ns-c.svc.cluster.local" {
		t.Errorf("reason %q", ch.Reason)
	}

	if err := w.apply(p).Err(); err != nil {
		t.Fatalf("apply: %v", err)
	}
	if got := w.world.Corefile("a"); got != converged {
		t.Errorf("Corefile after the restore:\n%s\nwant the converged one:\n%s", got, converged)
	}
	if diff := cmp.Diff(backup, w.obs["a"].Backup); diff != "" {
		t.Errorf("backup after the restore (-want, +got):\n%s", diff)
	}
	if next := w.plan(false); next.HasChanges() || len(next.Conflicts) > 0 {
		t.Errorf("plan after the restore is not empty:\n%s", strings.Join(dnsLines(next), "\n"))
	}
}

// TestClusterLeavesTheMesh: c taken out of the members of a converged mesh ends with its Service (and load
// balancer) and backup deleted, its Corefile equal to the original byte for byte, no zone recorded for it,
// and the Corefiles of a and b what a mesh of a and b alone writes; the plan after that is empty.
func TestClusterLeavesTheMesh(t *testing.T) {
	w := newDNSWorld().converge(t)
	w.members = slices.DeleteFunc(w.members, func(m model.Member) bool { return m.Name == "c" })
	if err := w.apply(w.plan(false)).Err(); err != nil {
		t.Fatalf("apply: %v", err)
	}

	c := w.obs["c"]
	if c.Service != nil || c.LoadBalancer != nil || c.Backup != nil {
		t.Errorf("cluster c keeps meshd's objects: service %v, load balancer %v, backup %v", c.Service, c.LoadBalancer, c.Backup)
	}
	if got, want := w.world.Corefile("c"), w.world.OriginalCorefile("c"); got != want {
		t.Errorf("Corefile of c:\n%q\nwant the original:\n%q", got, want)
	}
	if zones := w.st.CorefileZones("c"); zones != nil {
		t.Errorf("the state records zones %v for c", zones)
	}
	if _, ok := w.st.Members["c"]; ok {
		t.Error("the state still lists c as a member")
	}
	for _, name := range []string{"a", "b"} {
		other := map[string]string{"a": "b", "b": "a"}[name]
		want, _, err := corefile.Merge(w.world.OriginalCorefile(name), "tidb", nil,
			[]corefile.Block{{Zone: zone(other), Upstreams: w.ips[other]}})
		if err != nil {
			t.Fatal(err)
		}
		if got := w.world.Corefile(name); got != want {
			t.Errorf("Corefile of %s:\n%q\nwant the one of a mesh of a and b:\n%q", name, got, want)
		}
		if zones := w.st.CorefileZones(name); !slices.Equal(zones, []string{zone(other)}) {
			t.Errorf("zones recorded for %s: %v, want %v", name, zones, []string{zone(other)})
		}
	}
	if next := w.plan(false); next.HasChanges() || len(next.Conflicts) > 0 {
		t.Errorf("plan after the removal is not empty:\n%s", strings.Join(dnsLines(next), "\n"))
	}
}

// TestComputeDNSContent checks what the changes carry: the blocks a Corefile update writes, the merged text
// when every address is known, and the placeholders otherwise.
func TestComputeDNSContent(t *testing.T) {
	w := newDNSWorld()
	p := w.plan(false)
	got := p.Find("corefile[a]").After.(plan.Corefile)
	want := plan.Corefile{Cluster: "a", KubeContext: "ctx-a", Backup: true, Site: plan.DefaultCorefileSite, Blocks: []plan.CorefileBlock{
		{Zone: zone("b"), Pending: "dns_service[b]"}, {Zone: zone("c"), Pending: "dns_service[c]"}}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("corefile[a] from empty (-want, +got):\n%s", diff)
	}
	svc := p.Find("dns_service[b]").After.(plan.DNSService)
	wantSpec := plan.DesiredDNSService("tidb")
	wantSpec.SourceRanges = []string{"10.1.0.0/16", "10.3.0.0/16", "10.30.0.0/16"} // a's and c's VPC blocks, not b's own
	if diff := cmp.Diff(plan.DNSService{Cluster: "b", Region: "us-west-2", KubeContext: "ctx-b", Spec: wantSpec}, svc); diff != "" {
		t.Errorf("dns_service[b] (-want, +got):\n%s", diff)
	}

	// Addresses changed: the update writes exactly what an apply from empty would have written.
	w = newDNSWorld().converge(t)
	w.ips["b"] = []string{"10.2.0.99", "10.2.1.10"}
	w.setService("b", w.desired("b"), w.ips["b"])
	ch := newDNSWorld().converge(t)
	ch.ips = w.ips
	ch.setCorefile(t, "a", corefile.EKSDefault)
	p = w.plan(false)
	after := p.Find("corefile[a]").After.(plan.Corefile)
	if after.Text != ch.obs["a"].CoreDNS.Data["Corefile"] {
		t.Errorf("corefile[a] after the address change:\n%s\nwant:\n%s", after.Text, ch.obs["a"].CoreDNS.Data["Corefile"])
	}
	before := p.Find("corefile[a]").Before.(plan.Corefile)
	if diff := cmp.Diff([]plan.CorefileBlock{{Zone: zone("b"), Upstreams: []string{"10.2.0.10", "10.2.1.10"}},
		{Zone: zone("c"), Upstreams: []string{"10.3.0.10"}}}, before.Blocks); diff != "" {
		t.Errorf("observed blocks (-want, +got):\n%s", diff)
	}

	// Destroy leaves the Corefile as it was before meshd.
	p = newDNSWorld().converge(t).plan(true)
	if got := p.Find("corefile[b]").After.(plan.Corefile); got.Text != corefile.EKSDefault || !got.DeleteBackup {
		t.Errorf("destroy of corefile[b]: delete backup %v, text:\n%s", got.DeleteBackup, got.Text)
	}
}

// TestDNSPlanRoundTrip: a saved plan with DNS changes decodes to the same plan, and renders.
func TestDNSPlanRoundTrip(t *testing.T) {
	for _, destroy := range []bool{false, true} {
		w := newDNSWorld()
		if destroy {
			w.converge(t)
		}
		p := w.plan(destroy)
		var buf bytes.Buffer
		if err := planview.RenderJSON(&buf, p); err != nil {
			t.Fatal(err)
		}
		// Whole Corefiles (which may hold other people's credentials) never go into a plan file.
		if strings.Contains(buf.String(), "lameduck") {
			t.Errorf("destroy=%v: the plan JSON holds a Corefile's text", destroy)
		}
		got, err := planfile.Decode(&buf)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(p, got, cmpopts.IgnoreFields(plan.Corefile{}, "Text")); diff != "" {
			t.Errorf("destroy=%v: round trip (-want, +got):\n%s", destroy, diff)
		}
		var human bytes.Buffer
		if err := planview.RenderHuman(&human, got); err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"dns_service[a]", "corefile[c]"} {
			if !strings.Contains(human.String(), want) {
				t.Errorf("human plan lacks %s:\n%s", want, human.String())
			}
		}
		if !destroy && !strings.Contains(human.String(), `ns-b.svc.cluster.local = dns_service[b].id (known after apply)`) {
			t.Errorf("human plan does not show the pending addresses:\n%s", human.String())
		}
	}
}

// TestCorefileSecretsStayOut: a Corefile that holds credentials (route53 keys, a tsig secret) and does not
// parse, or parses with a user's block for a desired zone, is a conflict whose details name the line and
// never a token of the Corefile: not in the plan's text, its JSON, or a saved plan read back and rendered,
// for a plan and for destroy.
func TestCorefileSecretsStayOut(t *testing.T) {
	secrets := []string{"AKIAEXAMPLESECRET", "wJalrXUtnFEMI/K7MDENG", "c2VjcmV0VFNJR1NFQ1JFVA=="}
	creds := "    route53 example.org. {\n        aws_access_key AKIAEXAMPLESECRET wJalrXUtnFEMI/K7MDENG\n    }\n" +
		"    tsig {\n        secret example.key. c2VjcmV0VFNJR1NFQ1JFVA==\n    }\n"
	for name, tc := range map[string]struct {
		text    string
		detail  string // in the conflict's details
		destroy bool
	}{
		"unclosed block": {text: corefile.EKSDefault + "\nexample.org:53 {\n" + creds + "    credentials wJalrXUtnFEMI/K7MDENG\n",
			detail: "Corefile:"},
		"unclosed route53 block": {text: corefile.EKSDefault + "\nexample.org:53 {\n    errors\n    route53 example.org. {\n        aws_access_key AKIAEXAMPLESECRET wJalrXUtnFEMI/K7MDENG\n",
			detail: "(in the route53 directive)"},
		"unclosed tsig block, destroy": {text: corefile.EKSDefault + "\nexample.org:53 {\n    tsig {\n        secret example.key. c2VjcmV0VFNJR1NFQ1JFVA==\n",
			detail: "(in the tsig directive)", destroy: true},
		"user's block for a desired zone": {text: corefile.EKSDefault + "\n" + zone("b") + ":53 {\n" + creds + "    forward . 10.9.9.9\n}\n",
			detail: "Line "},
	} {
		t.Run(name, func(t *testing.T) {
			w := newDNSWorld()
			if tc.destroy {
				w.converge(t)
			}
			w.obs["a"].CoreDNS.Data["Corefile"] = tc.text
			p := w.plan(tc.destroy)
			i := slices.IndexFunc(p.Conflicts, func(c plan.Conflict) bool { return c.Address == "corefile[a]" })
			if i < 0 {
				t.Fatalf("no conflict for corefile[a]:\n%s", strings.Join(dnsLines(p), "\n"))
			}
			if d := p.Conflicts[i].Detail; !strings.Contains(d, tc.detail) {
				t.Errorf("conflict details %q do not hold %q", d, tc.detail)
			}
			var human, js bytes.Buffer
			if err := planview.RenderHuman(&human, p); err != nil {
				t.Fatal(err)
			}
			if err := planview.RenderJSON(&js, p); err != nil {
				t.Fatal(err)
			}
			saved, err := planfile.Decode(bytes.NewReader(js.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			var again bytes.Buffer
			if err := planview.RenderHuman(&again, saved); err != nil {
				t.Fatal(err)
			}
			for what, out := range map[string]string{"RenderHuman": human.String(), "RenderJSON": js.String(), "the saved plan": again.String()} {
				if !strings.Contains(out, "corefile[a]") {
					t.Errorf("%s does not show the conflict:\n%s", what, out)
				}
				for _, s := range secrets {
					if strings.Contains(out, s) {
						t.Errorf("%s holds %q:\n%s", what, s, out)
					}
				}
			}
		})
	}
}
