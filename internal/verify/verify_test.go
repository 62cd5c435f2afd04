package verify

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/meshd-io/meshd/internal/model"
)

const meshMarker = "# meshd.io/mesh=tidb: managed by meshd, edits here are overwritten\n"

// world is a healthy two-cluster mesh: tidb-1 (10.1.0.0/16) and tidb-3 (10.3.0.0/16), peered by pcx-13, each
// with a main and a private route table, node groups allowing each other, default NACLs, and DNS.
func world() Input {
	a := model.Member{Name: "tidb-1", Region: "us-west-1", VPCID: "vpc-1", CIDRs: []string{"10.1.0.0/16"},
		RouteTableIDs: []string{"rtb-1main", "rtb-1priv"}, SecurityGroupID: "sg-1", Namespace: "pingcap-1"}
	b := model.Member{Name: "tidb-3", Region: "us-east-1", VPCID: "vpc-3", CIDRs: []string{"10.3.0.0/16"},
		RouteTableIDs: []string{"rtb-3main", "rtb-3priv"}, SecurityGroupID: "sg-3", Namespace: "pingcap-3"}
	o := model.NewObserved()
	o.VPCs["vpc-1"] = model.VPC{ID: "vpc-1", CIDRs: a.CIDRs}
	o.VPCs["vpc-3"] = model.VPC{ID: "vpc-3", CIDRs: b.CIDRs}
	o.Peerings["pcx-13"] = model.ObservedPeering{ID: "pcx-13", RequesterVPC: "vpc-1", RequesterRegion: "us-west-1",
		AccepterVPC: "vpc-3", AccepterRegion: "us-east-1", Status: model.PeeringActive}
	tables := func(m model.Member, other string, local string) {
		o.RouteTables[m.RouteTableIDs[0]] = &model.RouteTable{ID: m.RouteTableIDs[0], VPCID: m.VPCID, Main: true,
			Routes: []model.Route{{DestinationCIDR: local, Target: "local", State: "active"},
				{DestinationCIDR: "0.0.0.0/0", Target: "igw-" + m.Name, State: "active"},
				{DestinationCIDR: other, PeeringID: "pcx-13", State: "active"}}}
		o.RouteTables[m.RouteTableIDs[1]] = &model.RouteTable{ID: m.RouteTableIDs[1], VPCID: m.VPCID,
			SubnetIDs: []string{"subnet-" + m.Name + "-priv"},
			Routes: []model.Route{{DestinationCIDR: local, Target: "local", State: "active"},
				{DestinationCIDR: other, PeeringID: "pcx-13", State: "active"}}}
	}
	tables(a, "10.3.0.0/16", "10.1.0.0/16")
	tables(b, "10.1.0.0/16", "10.3.0.0/16")
	o.Rules["sg-1"] = []model.SecurityGroupRule{{ID: "sgr-1", GroupID: "sg-1", Protocol: "-1", CIDR: "10.3.0.0/16"}}
	o.Rules["sg-3"] = []model.SecurityGroupRule{{ID: "sgr-3", GroupID: "sg-3", Protocol: "-1", CIDR: "10.1.0.0/16"}}
	o.Egress = map[string][]model.SecurityGroupRule{
		"sg-1": {{ID: "sgr-1e", GroupID: "sg-1", Protocol: "-1", CIDR: "0.0.0.0/0"}},
		"sg-3": {{ID: "sgr-3e", GroupID: "sg-3", Protocol: "-1", CIDR: "0.0.0.0/0"}},
	}
	defaultEntries := []model.NACLEntry{
		{RuleNumber: 100, Egress: false, Protocol: "-1", CIDR: "0.0.0.0/0", Allow: true},
		{RuleNumber: 32767, Egress: false, Protocol: "-1", CIDR: "0.0.0.0/0"},
		{RuleNumber: 100, Egress: true, Protocol: "-1", CIDR: "0.0.0.0/0", Allow: true},
		{RuleNumber: 32767, Egress: true, Protocol: "-1", CIDR: "0.0.0.0/0"},
	}
	o.NACLs = map[string]model.NetworkACL{
		"acl-1": {ID: "acl-1", VPCID: "vpc-1", Default: true, SubnetIDs: []string{"subnet-tidb-1-priv", "subnet-tidb-1-pub"}, Entries: defaultEntries},
		"acl-3": {ID: "acl-3", VPCID: "vpc-3", Default: true, SubnetIDs: []string{"subnet-tidb-3-priv", "subnet-tidb-3-pub"}, Entries: defaultEntries},
	}
	corefileOf := func(zone, addr string) *model.ConfigMap {
		return &model.ConfigMap{Data: map[string]string{"Corefile": ".:53 {\n    errors\n}\n\n" + meshMarker +
			zone + ":53 {\n    forward . " + addr + " {\n        force_tcp\n    }\n}\n"}}
	}
	dns := map[string]model.DNSObserved{
		"tidb-1": {Service: &model.Service{Hostname: "nlb-1.elb"},
			LoadBalancer: &model.LoadBalancer{Name: "nlb-1", State: "active", Addresses: []string{"10.1.0.10", "10.1.1.10"}},
			CoreDNS:      corefileOf("pingcap-3.svc.cluster.local", "10.3.0.10 10.3.1.10")},
		"tidb-3": {Service: &model.Service{Hostname: "nlb-3.elb"},
			LoadBalancer: &model.LoadBalancer{Name: "nlb-3", State: "active", Addresses: []string{"10.3.0.10", "10.3.1.10"}},
			CoreDNS:      corefileOf("pingcap-1.svc.cluster.local", "10.1.1.10 10.1.0.10")},
	}
	return Input{Mesh: "tidb", Members: []model.Member{a, b}, Observed: o, DNS: dns,
		Probes: map[Pair]ProbeResult{{"tidb-1", "tidb-3"}: {OK: true}, {"tidb-3", "tidb-1"}: {OK: true}}}
}

func TestHealthyMeshPasses(t *testing.T) {
	wantAllOK(t, Verify(world()), Layers)
}

// wantAllOK checks that a two-member report has every layer of layers checked and passing.
func wantAllOK(t *testing.T, r Report, layers []Layer) {
	t.Helper()
	if !r.OK() || len(r.Failures()) != 0 {
		t.Fatalf("failures: %v", r.Failures())
	}
	if !slices.Equal(r.Layers, layers) {
		t.Errorf("layers %v, want %v", r.Layers, layers)
	}
	if len(r.Verdicts) != 2*len(layers) {
		t.Fatalf("%d verdicts, want %d", len(r.Verdicts), 2*len(layers))
	}
	for _, v := range r.Verdicts {
		if v.Status != OK {
			t.Errorf("%s -> %s %s: %s %v", v.From, v.To, v.Layer, v.Status, v.Causes)
		}
	}
}

// TestEachFailureNamesItsObject: one broken object at a time gives exactly the failure lines naming it, and
// every other layer still passes (or is skipped because the layer it needs failed).
func TestEachFailureNamesItsObject(t *testing.T) {
	for _, tc := range []struct {
		name    string
		break_  func(*Input)
		want    []string
		skipped []string // "from>to:layer" not checked because of the failure
	}{
		{"deleted route", func(in *Input) {
			rt := in.Observed.RouteTables["rtb-1priv"]
			rt.Routes = rt.Routes[:1]
		}, []string{"tidb-1 -> tidb-3 routes: rtb-1priv has no route to 10.3.0.0/16 (want pcx-13)"}, nil},
		{"blackhole route", func(in *Input) {
			in.Observed.RouteTables["rtb-1priv"].Routes[1].State = "blackhole"
		}, []string{"tidb-1 -> tidb-3 routes: rtb-1priv's route to 10.3.0.0/16 through pcx-13 is a blackhole (want pcx-13, active)"}, nil},
		{"route through another target", func(in *Input) {
			in.Observed.RouteTables["rtb-3main"].Routes[2] = model.Route{DestinationCIDR: "10.1.0.0/16", Target: "tgw-9", State: "active"}
		}, []string{"tidb-3 -> tidb-1 routes: rtb-3main routes 10.1.0.0/16 to tgw-9 (want pcx-13)"}, nil},
		{"more specific route elsewhere", func(in *Input) {
			rt := in.Observed.RouteTables["rtb-1main"]
			rt.Routes = append(rt.Routes, model.Route{DestinationCIDR: "10.3.1.0/24", Target: "igw-tidb-1", State: "active"})
		}, []string{"tidb-1 -> tidb-3 routes: rtb-1main sends 10.3.1.0/24, part of 10.3.0.0/16, to igw-tidb-1 (want pcx-13)"}, nil},
		{"revoked ingress rule", func(in *Input) {
			in.Observed.Rules["sg-3"] = nil
		}, []string{"tidb-1 -> tidb-3 sg: sg-3 (tidb-3's nodes) allows no ingress of all traffic from 10.1.0.0/16"}, nil},
		{"no egress", func(in *Input) {
			in.Observed.Egress["sg-1"] = []model.SecurityGroupRule{{ID: "x", Protocol: "6", FromPort: 443, ToPort: 443, CIDR: "0.0.0.0/0"}}
		}, []string{"tidb-1 -> tidb-3 sg: sg-1 (tidb-1's nodes) allows no egress of all traffic to 10.3.0.0/16"}, nil},
		{"NACL egress deny", func(in *Input) {
			acl := in.Observed.NACLs["acl-1"]
			acl.Entries = append([]model.NACLEntry{{RuleNumber: 90, Egress: true, Protocol: "-1", CIDR: "10.3.0.0/16"}}, acl.Entries...)
			in.Observed.NACLs["acl-1"] = acl
		}, []string{"tidb-1 -> tidb-3 nacl: acl-1 (tidb-1's subnets) egress to 10.3.0.0/16: rule 90 denies 10.3.0.0/16"}, nil},
		{"NACL ingress deny", func(in *Input) {
			acl := in.Observed.NACLs["acl-3"]
			acl.Entries = append([]model.NACLEntry{{RuleNumber: 50, Protocol: "6", CIDR: "10.1.2.0/24"}}, acl.Entries...)
			in.Observed.NACLs["acl-3"] = acl
		}, []string{
			"tidb-1 -> tidb-3 nacl: acl-3 (tidb-3's subnets) ingress from 10.1.0.0/16: rule 50 denies 10.1.2.0/24",
			"tidb-3 -> tidb-1 nacl: acl-3 (tidb-3's subnets) ingress of return traffic from 10.1.0.0/16: rule 50 denies 10.1.2.0/24",
		}, nil},
		{"rejected peering", func(in *Input) {
			p := in.Observed.Peerings["pcx-13"]
			p.Status = model.PeeringRejected
			in.Observed.Peerings["pcx-13"] = p
		}, []string{
			"tidb-1 -> tidb-3 peering: pcx-13 between vpc-1 and vpc-3 is rejected (want active)",
			"tidb-3 -> tidb-1 peering: pcx-13 between vpc-3 and vpc-1 is rejected (want active)",
		}, []string{"tidb-1>tidb-3:routes", "tidb-3>tidb-1:routes"}},
		{"rejected request after a deleted peering", func(in *Input) {
			p := in.Observed.Peerings["pcx-13"]
			p.Status = model.PeeringDeleted
			in.Observed.Peerings["pcx-13"] = p
			p.ID, p.Status = "pcx-00", model.PeeringRejected
			in.Observed.Peerings["pcx-00"] = p
		}, []string{
			"tidb-1 -> tidb-3 peering: pcx-00 between vpc-1 and vpc-3 is rejected (want active)",
			"tidb-3 -> tidb-1 peering: pcx-00 between vpc-3 and vpc-1 is rejected (want active)",
		}, []string{"tidb-1>tidb-3:routes", "tidb-3>tidb-1:routes"}},
		{"pending peering", func(in *Input) {
			p := in.Observed.Peerings["pcx-13"]
			p.Status = model.PeeringPending
			in.Observed.Peerings["pcx-13"] = p
		}, []string{
			"tidb-1 -> tidb-3 peering: pcx-13 is pending-acceptance: accept it in us-east-1 (want active)",
			"tidb-3 -> tidb-1 peering: pcx-13 is pending-acceptance: accept it in us-east-1 (want active)",
		}, []string{"tidb-1>tidb-3:routes", "tidb-3>tidb-1:routes"}},
		{"reverted Corefile", func(in *Input) {
			in.DNS["tidb-1"].CoreDNS.Data["Corefile"] = ".:53 {\n    errors\n}\n"
		}, []string{"tidb-1 -> tidb-3 dns: tidb-1's Corefile (kube-system/coredns) has no meshd block for pingcap-3.svc.cluster.local (want forward to 10.3.0.10 10.3.1.10)"}, nil},
		{"Corefile forwards to old addresses", func(in *Input) {
			in.DNS["tidb-1"].CoreDNS.Data["Corefile"] = meshMarker + "pingcap-3.svc.cluster.local:53 {\n    forward . 10.3.0.99\n}\n"
		}, []string{"tidb-1 -> tidb-3 dns: tidb-1's Corefile (kube-system/coredns) forwards pingcap-3.svc.cluster.local to 10.3.0.99 (want 10.3.0.10 10.3.1.10, tidb-3's load balancer)"}, nil},
		{"Corefile does not parse", func(in *Input) {
			in.DNS["tidb-1"].CoreDNS.Data["Corefile"] = ".:53 {\n    errors\n"
		}, []string{"tidb-1 -> tidb-3 dns: tidb-1's Corefile (kube-system/coredns) does not parse: "}, nil},
		{"DNS Service without hostname", func(in *Input) {
			o := in.DNS["tidb-3"]
			o.Service = &model.Service{}
			o.LoadBalancer = nil
			in.DNS["tidb-3"] = o
		}, []string{"tidb-1 -> tidb-3 dns: tidb-3's Service kube-system/across-cluster-dns-tcp has no load-balancer hostname (status.loadBalancer.ingress)"}, nil},
		{"NLB not active", func(in *Input) {
			in.DNS["tidb-3"].LoadBalancer.State = "provisioning"
		}, []string{"tidb-1 -> tidb-3 dns: tidb-3's load balancer nlb-3 is provisioning (want active)"}, nil},
		{"probe failed", func(in *Input) {
			in.Probes[Pair{"tidb-3", "tidb-1"}] = ProbeResult{Message: "probe pod default/meshd-probe-x: connect 10.1.1.5:80: refused"}
		}, []string{"tidb-3 -> tidb-1 probe: probe pod default/meshd-probe-x: connect 10.1.1.5:80: refused"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := world()
			tc.break_(&in)
			r := Verify(in)
			got := r.Failures()
			if len(got) != len(tc.want) {
				t.Fatalf("failures:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
			for i := range got {
				if got[i] != tc.want[i] && !(strings.HasSuffix(tc.want[i], ": ") && strings.HasPrefix(got[i], tc.want[i])) {
					t.Errorf("failure %d:\n got %s\nwant %s", i, got[i], tc.want[i])
				}
			}
			failed := map[string]bool{}
			for _, v := range r.Verdicts {
				key := v.From + ">" + v.To + ":" + string(v.Layer)
				switch v.Status {
				case Fail:
					failed[key] = true
				case Skipped:
					if !slices.Contains(tc.skipped, key) {
						t.Errorf("%s skipped: %v", key, v.Causes)
					}
				}
			}
			if r.OK() {
				t.Error("report OK despite failures")
			}
			if len(failed) > 2 {
				t.Errorf("more verdicts failed than the object explains: %v", failed)
			}
		})
	}
}

// TestDefaultNACLCoversUnassociatedSubnets: a subnet without an explicit route-table association uses the
// main table, and its ACL is checked when the member's tables include the main one.
func TestDefaultNACLCoversUnassociatedSubnets(t *testing.T) {
	in := world()
	in.Observed.NACLs["acl-1"] = model.NetworkACL{ID: "acl-1", VPCID: "vpc-1", Default: true, SubnetIDs: []string{"subnet-tidb-1-pub"},
		Entries: []model.NACLEntry{{RuleNumber: 32767, Egress: true, Protocol: "-1", CIDR: "0.0.0.0/0"},
			{RuleNumber: 100, Protocol: "-1", CIDR: "0.0.0.0/0", Allow: true}}}
	in.Observed.NACLs["acl-1b"] = model.NetworkACL{ID: "acl-1b", VPCID: "vpc-1", SubnetIDs: []string{"subnet-tidb-1-priv"},
		Entries: in.Observed.NACLs["acl-3"].Entries}
	got := Verify(in).Failures()
	want := []string{"tidb-1 -> tidb-3 nacl: acl-1 (tidb-1's subnets) egress to 10.3.0.0/16: no rule allows it; the default rule * denies"}
	if !slices.Equal(got, want) {
		t.Errorf("failures:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Without the main table, the public subnet's ACL is none of tidb-1's business.
	in.Members[0].RouteTableIDs = []string{"rtb-1priv"}
	if got := Verify(in).Failures(); len(got) != 0 {
		t.Errorf("failures without the main table: %v", got)
	}
}

func TestUnobservedLayersAreSkipped(t *testing.T) {
	in := world()
	in.DNS, in.Probes, in.Observed.NACLs = nil, nil, nil
	r := Verify(in)
	if !r.OK() {
		t.Fatalf("failures: %v", r.Failures())
	}
	for _, l := range []Layer{LayerDNS, LayerProbe, LayerNACL} {
		if v := r.Get("tidb-1", "tidb-3", l); v.Status != Skipped {
			t.Errorf("%s: %s, want skipped", l, v.Status)
		}
	}
}

// TestRender: the matrix has the topology's layers as columns (TRANSIT_GATEWAY in place of PEERING for a
// transit_gateway mesh), then the failures; --json carries the same verdicts and the layers.
func TestRender(t *testing.T) {
	peering := world()
	peering.Observed.RouteTables["rtb-1priv"].Routes = peering.Observed.RouteTables["rtb-1priv"].Routes[:1]
	gateway := tgwWorld(false)
	delete(gateway.Observed.TGWAttachments, "tgw-attach-3")
	for _, tc := range []struct {
		name   string
		in     Input
		layers []Layer
		want   string
	}{
		{"peering", peering, Layers, `FROM     TO       PEERING   ROUTES   SG   NACL   DNS   PROBE
tidb-1   tidb-3   ok        FAIL     ok   ok     ok    -
tidb-3   tidb-1   ok        ok       ok   ok     ok    -

1 failure(s):
  tidb-1 -> tidb-3 routes: rtb-1priv has no route to 10.3.0.0/16 (want pcx-13)
`},
		{"transit gateway", gateway, GatewayLayers, `FROM     TO       TRANSIT_GATEWAY   ROUTES   SG   NACL   DNS   PROBE
tidb-1   tidb-3   FAIL              ok       ok   ok     ok    -
tidb-3   tidb-1   FAIL              ok       ok   ok     ok    -

2 failure(s):
  tidb-1 -> tidb-3 transit_gateway: VPC vpc-3 (tidb-3) has no attachment to tgw-1
  tidb-3 -> tidb-1 transit_gateway: VPC vpc-3 (tidb-3) has no attachment to tgw-1
`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.in.Probes = nil
			r := Verify(tc.in)
			var b bytes.Buffer
			if err := RenderHuman(&b, r); err != nil {
				t.Fatal(err)
			}
			if b.String() != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", b.String(), tc.want)
			}
			b.Reset()
			if err := RenderJSON(&b, r); err != nil {
				t.Fatal(err)
			}
			var doc struct {
				OK       bool
				Layers   []Layer
				Verdicts []Verdict
				Failures []string
			}
			if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
				t.Fatal(err)
			}
			if doc.OK || !slices.Equal(doc.Layers, tc.layers) || len(doc.Verdicts) != 12 || len(doc.Failures) != len(r.Failures()) {
				t.Errorf("json: %s", b.String())
			}
		})
	}
}

// TestFrontendGroupNamed: the DNS layer names a frontend security group of a member's NLB that does not
// admit the other member's blocks on 53/TCP, and passes once a rule does; an NLB without groups passes.
func TestFrontendGroupNamed(t *testing.T) {
	in := world()
	a := in.Members[0]
	a.CIDRs = []string{"10.1.0.0/16", "10.10.0.0/16"}
	in.Members[0] = a
	lb := *in.DNS["tidb-3"].LoadBalancer
	lb.Name, lb.SecurityGroups = "k8s-kubesyst-acrossc-0123456789", []string{"sg-0abc"}
	o := in.DNS["tidb-3"]
	o.LoadBalancer = &lb // changes to lb below are what verify sees
	in.DNS["tidb-3"] = o
	// (The other layers fail for a's second block, which this test does not route: only the DNS layer counts.)
	dnsFailures := func(in Input) []string {
		return slices.DeleteFunc(Verify(in).Failures(), func(f string) bool { return !strings.Contains(f, " dns: ") })
	}
	// What LBC v2.6+ makes for an internal NLB without source ranges: its own VPC's block only.
	in.LoadBalancerRules = map[string][]model.SecurityGroupRule{
		"sg-0abc": {{ID: "sgr-a", GroupID: "sg-0abc", Protocol: "tcp", FromPort: 53, ToPort: 53, CIDR: "10.3.0.0/16"}},
	}
	want := []string{
		"tidb-1 -> tidb-3 dns: sg-0abc (frontend of NLB k8s-kubesyst-acrossc-0123456789) does not admit 10.1.0.0/16 on 53/TCP",
		"tidb-1 -> tidb-3 dns: sg-0abc (frontend of NLB k8s-kubesyst-acrossc-0123456789) does not admit 10.10.0.0/16 on 53/TCP",
	}
	if got := dnsFailures(in); !slices.Equal(got, want) {
		t.Errorf("failures:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// A rule for the wrong port, or UDP only, does not count; a second group of the NLB admitting one block does.
	lb.SecurityGroups = []string{"sg-0abc", "sg-0def"}
	in.LoadBalancerRules["sg-0abc"] = append(in.LoadBalancerRules["sg-0abc"],
		model.SecurityGroupRule{ID: "sgr-b", GroupID: "sg-0abc", Protocol: "tcp", FromPort: 80, ToPort: 80, CIDR: "10.1.0.0/16"},
		model.SecurityGroupRule{ID: "sgr-c", GroupID: "sg-0abc", Protocol: "udp", FromPort: 53, ToPort: 53, CIDR: "10.1.0.0/16"})
	in.LoadBalancerRules["sg-0def"] = []model.SecurityGroupRule{{ID: "sgr-d", GroupID: "sg-0def", Protocol: "6", FromPort: 0, ToPort: 1024, CIDR: "10.0.0.0/8"}}
	in.LoadBalancerRules["sg-0abc"] = in.LoadBalancerRules["sg-0abc"][1:]
	if got := dnsFailures(in); len(got) != 0 {
		t.Errorf("sg-0def admits 10.0.0.0/8 on 0-1024/TCP, yet: %v", got)
	}
	in.LoadBalancerRules["sg-0def"] = nil
	want = []string{
		"tidb-1 -> tidb-3 dns: sg-0abc, sg-0def (frontend groups of NLB k8s-kubesyst-acrossc-0123456789) do not admit 10.1.0.0/16 on 53/TCP",
		"tidb-1 -> tidb-3 dns: sg-0abc, sg-0def (frontend groups of NLB k8s-kubesyst-acrossc-0123456789) do not admit 10.10.0.0/16 on 53/TCP",
	}
	if got := dnsFailures(in); !slices.Equal(got, want) {
		t.Errorf("failures:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// Fixed: the group admits both blocks (meshd's source ranges, once the controller applied them).
	in.LoadBalancerRules["sg-0def"] = []model.SecurityGroupRule{
		{ID: "sgr-e", GroupID: "sg-0def", Protocol: "tcp", FromPort: 53, ToPort: 53, CIDR: "10.1.0.0/16"},
		{ID: "sgr-f", GroupID: "sg-0def", Protocol: "-1", CIDR: "10.10.0.0/16"},
	}
	if got := dnsFailures(in); len(got) != 0 {
		t.Errorf("after the fix: %v", got)
	}

	// An NLB without security groups (an older controller) has nothing to check; nor has a verify that did
	// not read the rules.
	lb.SecurityGroups = nil
	in.LoadBalancerRules = map[string][]model.SecurityGroupRule{}
	if got := dnsFailures(in); len(got) != 0 {
		t.Errorf("an NLB without security groups: %v", got)
	}
	lb.SecurityGroups = []string{"sg-0abc"}
	in.LoadBalancerRules = nil
	if got := dnsFailures(in); len(got) != 0 {
		t.Errorf("rules not observed: %v", got)
	}
}
