package plan_test

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/meshd-io/meshd/internal/corefile"
	"github.com/meshd-io/meshd/internal/model"
	"github.com/meshd-io/meshd/internal/plan"
	"github.com/meshd-io/meshd/internal/plan/plantest"
	"github.com/meshd-io/meshd/internal/planview"
	"github.com/meshd-io/meshd/internal/spec"
	"github.com/meshd-io/meshd/internal/state"
	"github.com/meshd-io/meshd/internal/verify"
)

// externalWorld is the fixture's AWS members a, b and c with an external member d (network = "external")
// whose DNS Service is exposed as dns gives.
type externalWorld struct {
	world   *plantest.World
	members []model.Member
	st      *state.State
}

const metalLBPool = "metallb.io/address-pool"

func newExternalWorld(dns *model.DNSExposure) *externalWorld {
	world, members := plantest.NewWorld("tidb", []plantest.Cluster{
		{Name: "a", Region: "us-west-1", CIDRs: []string{"10.1.0.0/16"}, RouteTables: 2},
		{Name: "b", Region: "us-west-2", CIDRs: []string{"10.2.0.0/16"}, RouteTables: 1},
		{Name: "c", Region: "us-east-1", CIDRs: []string{"10.3.0.0/16"}, RouteTables: 1},
		{Name: "d", External: true},
	})
	for i := range members {
		members[i].KubeContext = "ctx-" + members[i].Name
		members[i].Namespace = "ns-" + members[i].Name
		if members[i].External {
			members[i].DNS = dns
		}
	}
	world.LoadBalancerAddresses = map[string][]string{"a": {"10.1.0.10"}, "b": {"10.2.0.10"}, "c": {"10.3.0.10"}, "d": {"192.168.4.53"}}
	return &externalWorld{world: world, members: members, st: state.New("tidb")}
}

func (w *externalWorld) plan(members []model.Member) *plan.Plan {
	return plan.Compute(plan.Input{Mesh: "tidb", Members: members, Observed: w.world.Observed, State: w.st,
		DNS: w.world.DNSInput("namespace")})
}

func (w *externalWorld) apply(t *testing.T, p *plan.Plan) {
	t.Helper()
	mustApply(t, w.world, w.st, p)
}

// converge applies the members' plan and checks that the next one is empty.
func (w *externalWorld) converge(t *testing.T, members []model.Member) {
	t.Helper()
	w.apply(t, w.plan(members))
	if p := w.plan(members); p.HasChanges() || len(p.Conflicts) > 0 {
		t.Fatalf("the plan after apply is not empty:\n%s", strings.Join(dnsLines(p), "\n"))
	}
}

// forwards is the upstreams cluster's Corefile forwards zone to, nil without a meshd block for it.
func (w *externalWorld) forwards(t *testing.T, cluster, zone string) []string {
	t.Helper()
	text := w.world.Corefile(cluster)
	blocks, err := corefile.Blocks(text)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range blocks {
		if b.OwnedBy("tidb", nil) && b.Zones[0] == zone {
			return corefile.ForwardUpstreams(text, b)
		}
	}
	return nil
}

func TestExternalMemberGetsNoNetwork(t *testing.T) {
	w := newExternalWorld(&model.DNSExposure{ServiceType: spec.ServiceTypeLoadBalancer, Annotations: map[string]string{metalLBPool: "dns"}})
	p := w.plan(w.members)
	for _, c := range p.Changes {
		if c.Kind == plan.KindPeering || c.Kind == plan.KindRoute || c.Kind == plan.KindSGRule {
			if strings.Contains(c.Address, "d") && !strings.Contains(c.Address, "rtb-") {
				t.Errorf("network change for the external member: %s", c.Address)
			}
		}
	}
	if got := count(p, plan.KindPeering); got != 3 {
		t.Errorf("%d peerings, want 3 (a-b, a-c, b-c only)", got)
	}
	if diff := cmp.Diff([]string{"d"}, p.UnmanagedNetworks); diff != "" {
		t.Errorf("UnmanagedNetworks (-want +got):\n%s", diff)
	}
	var out bytes.Buffer
	if err := planview.RenderHuman(&out, p); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), "the network of d is external"); n != 1 {
		t.Errorf("the plan says %d times that d's network is external, want once:\n%s", n, out.String())
	}

	svc := change(t, p, plan.DNSServiceAddress("d")).After.(plan.DNSService)
	wantAnnotations := map[string]string{metalLBPool: "dns", spec.AnnotationOwnedKeys: metalLBPool}
	if diff := cmp.Diff(wantAnnotations, svc.Spec.Annotations); diff != "" {
		t.Errorf("d's Service annotations (-want +got): no NLB annotations on an external member\n%s", diff)
	}
	if svc.Spec.Type != "LoadBalancer" || !svc.External {
		t.Errorf("d's Service: type %q, external %v", svc.Spec.Type, svc.External)
	}

	w.converge(t, w.members)
	for _, from := range []string{"a", "b", "c"} {
		if got := w.forwards(t, from, zone("d")); !cmp.Equal(got, []string{"192.168.4.53"}) {
			t.Errorf("%s forwards %s to %v, want d's MetalLB address", from, zone("d"), got)
		}
	}
	for _, to := range []string{"a", "b", "c"} {
		if got := w.forwards(t, "d", zone(to)); len(got) != 1 || !strings.HasPrefix(got[0], "10.") {
			t.Errorf("d forwards %s to %v, want %s's NLB", zone(to), got, to)
		}
	}

	// MetalLB moves the Service to another address: the Corefiles follow.
	w.world.SetServiceIPs("d", "192.168.4.54")
	p = w.plan(w.members)
	if got := count(p, plan.KindCorefile); got != 3 {
		t.Errorf("%d Corefile changes after d's address moved, want 3:\n%s", got, strings.Join(dnsLines(p), "\n"))
	}
	w.converge(t, w.members)
	if got := w.forwards(t, "a", zone("d")); !cmp.Equal(got, []string{"192.168.4.54"}) {
		t.Errorf("a forwards %s to %v after the move, want 192.168.4.54", zone("d"), got)
	}
}

func TestExternalMemberNodePort(t *testing.T) {
	w := newExternalWorld(&model.DNSExposure{ServiceType: spec.ServiceTypeNodePort, NodeAddresses: []string{"192.168.4.12", "192.168.4.11"}})
	svc := change(t, w.plan(w.members), plan.DNSServiceAddress("d")).After.(plan.DNSService)
	if svc.Spec.Type != "NodePort" || svc.Spec.Annotations != nil {
		t.Errorf("d's Service: type %q, annotations %v; want NodePort without annotations", svc.Spec.Type, svc.Spec.Annotations)
	}
	w.converge(t, w.members)
	want := []string{"192.168.4.11:30053", "192.168.4.12:30053"}
	if got := w.forwards(t, "b", zone("d")); !cmp.Equal(got, want) {
		t.Errorf("b forwards %s to %v, want %v", zone("d"), got, want)
	}
}

// An annotation removed from dns { service_annotations } is removed from the Service; one another party
// set stays.
func TestExternalMemberAnnotationRemoved(t *testing.T) {
	w := newExternalWorld(&model.DNSExposure{ServiceType: spec.ServiceTypeLoadBalancer,
		Annotations: map[string]string{metalLBPool: "dns", "metallb.io/loadBalancerIPs": "192.168.4.53"}})
	w.converge(t, w.members)
	o := w.world.DNS["d"]
	o.Service.Spec.Annotations["someone.else/note"] = "kept"
	w.world.DNS["d"] = o

	for i := range w.members {
		if w.members[i].External {
			w.members[i].DNS = &model.DNSExposure{ServiceType: spec.ServiceTypeLoadBalancer, Annotations: map[string]string{metalLBPool: "dns"}}
		}
	}
	p := w.plan(w.members)
	ch := change(t, p, plan.DNSServiceAddress("d"))
	if ch.Action != plan.Update || !strings.Contains(ch.Reason, "annotations") {
		t.Fatalf("dns_service[d]: %s %q, want an update of its annotations", ch.Action, ch.Reason)
	}
	w.converge(t, w.members)
	want := map[string]string{metalLBPool: "dns", spec.AnnotationOwnedKeys: metalLBPool, "someone.else/note": "kept"}
	if diff := cmp.Diff(want, w.world.DNS["d"].Service.Spec.Annotations); diff != "" {
		t.Errorf("d's annotations (-want +got):\n%s", diff)
	}
}

// Removing the external member takes its DNS Service and its blocks away: every Corefile is as it was
// before it joined, byte for byte.
func TestExternalMemberRemoved(t *testing.T) {
	w := newExternalWorld(&model.DNSExposure{ServiceType: spec.ServiceTypeLoadBalancer})
	aws := w.members[:3]
	w.converge(t, aws)
	before := map[string]string{}
	for _, m := range w.members {
		before[m.Name] = w.world.Corefile(m.Name)
	}
	w.converge(t, w.members)
	if w.world.Corefile("a") == before["a"] {
		t.Fatal("a's Corefile did not change when d joined")
	}
	w.converge(t, aws)
	for name, text := range before {
		if got := w.world.Corefile(name); got != text {
			t.Errorf("%s's Corefile after d left differs from before it joined:\n%s", name, cmp.Diff(text, got))
		}
	}
	if w.world.DNS["d"].Service != nil {
		t.Error("d's DNS Service is still there")
	}
}

func TestVerifyExternalPair(t *testing.T) {
	w := newExternalWorld(&model.DNSExposure{ServiceType: spec.ServiceTypeLoadBalancer})
	w.converge(t, w.members)
	in := w.world.DNSInput("namespace")
	r := verify.Verify(verify.Input{Mesh: "tidb", Members: w.members, Observed: w.world.Observed, DNS: in.Clusters,
		ForwardBy: "namespace", OwnedZones: w.st.Corefiles})
	for _, pair := range [][2]string{{"a", "d"}, {"d", "b"}} {
		for _, l := range []verify.Layer{verify.LayerPeering, verify.LayerRoutes, verify.LayerSG, verify.LayerNACL} {
			if v := r.Get(pair[0], pair[1], l); v.Status != verify.Unmanaged {
				t.Errorf("%s -> %s %s: %s %v, want unmanaged", pair[0], pair[1], l, v.Status, v.Causes)
			}
		}
		if v := r.Get(pair[0], pair[1], verify.LayerDNS); v.Status != verify.OK {
			t.Errorf("%s -> %s dns: %s %v, want ok", pair[0], pair[1], v.Status, v.Causes)
		}
	}
	if v := r.Get("a", "b", verify.LayerPeering); v.Status == verify.Unmanaged {
		t.Errorf("a -> b peering is %s: only pairs with an external member are unmanaged", v.Status)
	}
	var out bytes.Buffer
	if err := verify.RenderHuman(&out, r); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "network not managed") {
		t.Errorf("the matrix does not say network not managed:\n%s", out.String())
	}

	// The Corefile of a loses its block for d: the DNS layer of a -> d fails, naming d's address.
	w.world.RevertCorefile("a")
	in = w.world.DNSInput("namespace")
	r = verify.Verify(verify.Input{Mesh: "tidb", Members: w.members, Observed: w.world.Observed, DNS: in.Clusters,
		ForwardBy: "namespace", OwnedZones: w.st.Corefiles})
	if v := r.Get("a", "d", verify.LayerDNS); v.Status != verify.Fail || !strings.Contains(strings.Join(v.Causes, " "), "192.168.4.53") {
		t.Errorf("a -> d dns after the revert: %s %v, want a failure naming 192.168.4.53", v.Status, v.Causes)
	}
}

func count(p *plan.Plan, kind plan.Kind) int {
	n := 0
	for _, c := range p.Changes {
		if c.Kind == kind && c.Action != plan.Keep {
			n++
		}
	}
	return n
}

func change(t *testing.T, p *plan.Plan, address string) plan.Change {
	t.Helper()
	for _, c := range p.Changes {
		if c.Address == address {
			return c
		}
	}
	t.Fatalf("no change %s in the plan:\n%s", address, strings.Join(dnsLines(p), "\n"))
	return plan.Change{}
}

// An AWS member's dns block adds annotations to the internal-NLB ones.
func TestAWSMemberExtraAnnotations(t *testing.T) {
	w := newExternalWorld(nil)
	const subnets = "service.beta.kubernetes.io/aws-load-balancer-subnets"
	w.members[0].DNS = &model.DNSExposure{ServiceType: spec.ServiceTypeLoadBalancer, Annotations: map[string]string{subnets: "subnet-1"}}
	got := change(t, w.plan(w.members[:3]), plan.DNSServiceAddress("a")).After.(plan.DNSService).Spec.Annotations
	want := spec.NLBAnnotations()
	want[subnets], want[spec.AnnotationOwnedKeys] = "subnet-1", subnets
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("a's Service annotations (-want +got):\n%s", diff)
	}
}

// A member that becomes external loses what meshd made for its network: the peerings, routes and rules
// toward it are deleted, the rest of the mesh stays.
func TestMemberBecomesExternal(t *testing.T) {
	e := converged(t)
	for i := range e.members {
		if e.members[i].Name == "c" {
			e.members[i] = model.Member{Name: "c", External: true}
		}
	}
	p := e.plan(false)
	for _, ch := range p.Changes {
		towardC := strings.Contains(ch.Address, "c") || strings.Contains(ch.Address, ":10.3.") || strings.Contains(ch.Address, ":10.30.")
		if ch.Action != plan.Delete || !towardC {
			t.Errorf("unexpected change: %s %s (%s)", ch.Action, ch.Address, ch.Reason)
		}
	}
	if got := count(p, plan.KindPeering); got != 2 {
		t.Errorf("%d peering deletes, want 2 (a-c, b-c)", got)
	}
	e.apply(t, p)
	if p := e.plan(false); p.HasChanges() {
		t.Errorf("the plan after apply is not empty: %v", p.Changes)
	}
	if got := count(e.plan(true), plan.KindPeering); got != 1 {
		t.Errorf("destroy deletes %d peerings, want a-b only", got)
	}
}

// Its DNS Service then takes the external settings: the NLB annotations go, and the other Corefiles forward
// to the address its load balancer publishes.
func TestMemberBecomesExternalDNS(t *testing.T) {
	w := newDNSWorld().converge(t)
	w.ips["c"] = []string{"192.168.3.53"}
	for i := range w.members {
		if w.members[i].Name == "c" {
			w.members[i] = model.Member{Name: "c", External: true, KubeContext: "ctx-c", Namespace: "ns-c",
				DNS: &model.DNSExposure{ServiceType: spec.ServiceTypeLoadBalancer}}
		}
	}
	// MetalLB now serves the Service: it publishes an address, not a hostname.
	o := w.obs["c"]
	o.Service.Hostname, o.LoadBalancer = "", nil
	w.obs["c"] = o
	p := w.plan(false)
	if ch := change(t, p, plan.DNSServiceAddress("c")); ch.Action != plan.Update || !strings.Contains(ch.Reason, "annotations") {
		t.Fatalf("dns_service[c]: %s %q, want an update of its annotations", ch.Action, ch.Reason)
	}
	w.converge(t)
	if got := w.obs["c"].Service.Spec.Annotations; len(got) != 0 {
		t.Errorf("c's Service keeps annotations %v; the NLB ones go", got)
	}
	text := w.world.Corefile("a")
	if !strings.Contains(text, "forward . 192.168.3.53 {") {
		t.Errorf("a's Corefile does not forward c's zone to its MetalLB address:\n%s", text)
	}
}

// An AWS load-balancer annotation someone put on an external member's Service is theirs: left alone.
func TestExternalMemberKeepsOthersNLBAnnotations(t *testing.T) {
	w := newExternalWorld(&model.DNSExposure{ServiceType: spec.ServiceTypeLoadBalancer})
	w.converge(t, w.members)
	o := w.world.DNS["d"]
	o.Service.Spec.Annotations = map[string]string{spec.AnnotationLBInternal: "true"}
	w.world.DNS["d"] = o
	if p := w.plan(w.members); p.HasChanges() {
		t.Errorf("the plan changes something for a user's annotation:\n%s", strings.Join(dnsLines(p), "\n"))
	}
}

// A load balancer that publishes a hostname only (an AWS one in front of a cluster outside meshd's AWS
// mesh) cannot be forwarded to: a conflict, the others' blocks for it stay as they are.
func TestExternalMemberHostnameOnly(t *testing.T) {
	w := newExternalWorld(&model.DNSExposure{ServiceType: spec.ServiceTypeLoadBalancer})
	w.converge(t, w.members)
	o := w.world.DNS["d"]
	o.Service.IPs, o.Service.Hostname = nil, "internal-dns-1234.elb.us-east-1.amazonaws.com"
	w.world.DNS["d"] = o
	p := w.plan(w.members)
	if len(p.Conflicts) != 1 || !strings.Contains(p.Conflicts[0].Summary, "publishes a hostname") {
		t.Fatalf("conflicts %+v, want one about the hostname", p.Conflicts)
	}
	if p.HasChanges() {
		t.Errorf("the plan changes something:\n%s", strings.Join(dnsLines(p), "\n"))
	}
}
